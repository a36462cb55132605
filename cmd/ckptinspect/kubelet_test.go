package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

// The kubelet's checkpoint archives in testdata/kubelet (README there): a
// real containerd 2.1 CRI archive and a CRI-O-layout one built from real
// CRIU images, both of container counter in pod shop/web.
const (
	kubeContainerd = "../../testdata/kubelet/containerd-counter.tar.zst"
	kubeCRIO       = "../../testdata/kubelet/crio-counter.tar.zst"
)

// TestKubeletArchives runs every reading command on the kubelet archives:
// each succeeds and names the container, its pod and namespace, and the
// engine.
func TestKubeletArchives(t *testing.T) {
	for _, a := range []struct{ path, engine string }{{kubeContainerd, "containerd"}, {kubeCRIO, "CRI-O"}} {
		tests := []struct {
			args []string
			want []string // regexps stdout must match
		}{
			{[]string{"show", a.path}, []string{`(?m)^FILE\s+CONTAINER\s+POD\s+IMAGE`, `(?m)\scounter\s+shop/web\s.*\s` + regexp.QuoteMeta(a.engine) + `\s+legacy\s`}},
			{[]string{"show", "--json", a.path}, []string{`"name": "counter"`, `"pod": "web"`, `"namespace": "shop"`, `"engine": "` + a.engine + `"`}},
			{[]string{"inspect", "--all", a.path}, []string{`(?m)^counter \(` + regexp.QuoteMeta(a.engine) + `, legacy\)`, `Pod: shop/web`, `Process tree`}},
			{[]string{"verify", a.path}, []string{`: ok \(legacy\)`}},
			{[]string{"memparse", a.path}, []string{`(?m)^Container counter of pod shop/web \(` + regexp.QuoteMeta(a.engine) + `\)$`, `(?m)^1\s+counter\s`}},
			{[]string{"memparse", "--json", a.path}, []string{`"pod": "web"`, `"namespace": "shop"`, `"container": "counter"`}},
			{[]string{"memparse", "-s", "counter", a.path}, []string{`pid 1 at 0x`}},
		}
		for _, tt := range tests {
			var stdout, stderr bytes.Buffer
			if got := run(context.Background(), tt.args, &stdout, &stderr); got != 0 {
				t.Errorf("run(%q) = %d, want 0\nstdout:\n%s\nstderr:\n%s", tt.args, got, stdout.String(), stderr.String())
				continue
			}
			for _, re := range tt.want {
				if !regexp.MustCompile(re).MatchString(stdout.String()) {
					t.Errorf("run(%q) stdout does not match %s:\n%s", tt.args, re, stdout.String())
				}
			}
		}
	}
	// The two archives differ (IDs, images); diff says how, exit 1.
	var stdout, stderr bytes.Buffer
	if got := run(context.Background(), []string{"diff", kubeContainerd, kubeCRIO}, &stdout, &stderr); got != 1 ||
		!strings.Contains(stdout.String(), "info.engine: containerd -> CRI-O") {
		t.Errorf("diff of the containerd and CRI-O archives = %d, stdout:\n%s\nstderr:\n%s", got, stdout.String(), stderr.String())
	}
}
