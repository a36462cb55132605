package testutil

import "testing"

// fakeTB records Fatalf and Skipf instead of stopping the test.
type fakeTB struct {
	testing.TB
	fatal, skip bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Fatalf(string, ...any) { f.fatal = true }
func (f *fakeTB) Skipf(string, ...any)  { f.skip = true }

func TestMissing(t *testing.T) {
	for _, ci := range []string{"true", ""} {
		t.Setenv("CI", ci)
		f := &fakeTB{}
		Missing(f, "x")
		if f.fatal != (ci == "true") || f.skip != (ci != "true") {
			t.Errorf("CI=%q: Missing() fatal=%v skip=%v, want fatal only in CI", ci, f.fatal, f.skip)
		}
	}
}

func TestRequireTool(t *testing.T) {
	t.Setenv("CI", "true")
	f := &fakeTB{}
	RequireTool(f, "ckpt-no-such-tool")
	if !f.fatal {
		t.Errorf("RequireTool(missing) under CI=true did not fail")
	}
	f = &fakeTB{}
	if p := RequireTool(f, "sh"); p == "" || f.fatal || f.skip {
		t.Errorf("RequireTool(sh) = %q, fatal=%v skip=%v", p, f.fatal, f.skip)
	}
}
