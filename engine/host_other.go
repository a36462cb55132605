//go:build !linux

package engine

import (
	"errors"
	"fmt"
)

// The engine needs Linux (namespaces, cgroups, runc, CRIU); elsewhere the
// package builds but every container operation fails with ErrUnsupported.

func cgroupVersion() string { return "unsupported" }

func setSubreaper() error {
	return fmt.Errorf("%w: child subreaper: %w", ErrUnsupported, errors.ErrUnsupported)
}

func createNetns(string) error {
	return fmt.Errorf("%w: network namespaces: %w", ErrUnsupported, errors.ErrUnsupported)
}

func isNetns(string) bool { return false }

func removeNetns(string) error { return nil }

func isMounted(string) bool { return false }

func scriptable(string) bool { return false }
