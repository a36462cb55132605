package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"go.podman.io/storage/pkg/reexec"
)

func main() {
	// containers/storage re-executes this binary for some layer operations.
	if reexec.Init() {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
