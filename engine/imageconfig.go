package engine

import (
	"context"
	"fmt"
	"strings"

	"go.podman.io/image/v5/image"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/storage"
)

// imageProcess is the process an image's config describes (the OCI and
// Docker configs' "config" object).
type imageProcess struct {
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	User       string
}

// imageProcessOf reads the process of the store's image img from its
// config, or returns nil for an image without one (ckpt image import's).
func imageProcessOf(ctx context.Context, s storage.Store, img *storage.Image) (*imageProcess, error) {
	if _, err := s.ImageBigData(img.ID, storage.ImageDigestBigDataKey); err != nil {
		return nil, nil
	}
	ref, err := istorage.Transport.NewStoreReference(s, nil, img.ID)
	if err != nil {
		return nil, err
	}
	src, err := ref.NewImageSource(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("open image %s: %w", shortImageID(img.ID), err)
	}
	i, err := image.FromSource(ctx, nil, src)
	if err != nil {
		_ = src.Close()
		return nil, fmt.Errorf("read image %s: %w", shortImageID(img.ID), err)
	}
	defer i.Close()
	cfg, err := i.OCIConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the config of image %s: %w", shortImageID(img.ID), err)
	}
	c := cfg.Config
	return &imageProcess{Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir, User: c.User}, nil
}

// withImageProcess returns o with what it leaves unset taken from the
// image's process p, as podman does: the image's entrypoint unless
// o gives one (which also drops the image's command), its command unless o
// gives one, its working directory and user unless o gives them, and its
// environment with o's variables replacing those of the same name.
func withImageProcess(o *RunOptions, p *imageProcess) *RunOptions {
	if p == nil {
		return o
	}
	c := *o
	if len(o.Entrypoint) == 0 {
		c.Entrypoint = p.Entrypoint
		if len(o.Command) == 0 {
			c.Command = p.Cmd
		}
	}
	if c.WorkDir == "" {
		c.WorkDir = p.WorkingDir
	}
	if c.User == "" {
		c.User = p.User
	}
	c.Env = mergeEnv(p.Env, o.Env)
	return &c
}

// mergeEnv returns base with the K=V of over replacing those of the same
// K, and over's other variables appended.
func mergeEnv(base, over []string) []string {
	if len(base) == 0 {
		return over
	}
	out := make([]string, 0, len(base)+len(over))
	idx := map[string]int{}
	for _, kv := range append(append([]string{}, base...), over...) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}
