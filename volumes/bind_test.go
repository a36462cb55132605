package volumes

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckBindSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	if err := CheckBindSources(nil); err != nil {
		t.Errorf("CheckBindSources(nil) = %v, want nil", err)
	}
	ok := []BindMount{
		{Source: dir, Destination: "/data", Options: []string{"ro", "rbind", "nosuid"}},
		{Source: file, Destination: "/etc/app.conf"},
	}
	if err := CheckBindSources(ok); err != nil {
		t.Errorf("CheckBindSources(existing) = %v, want nil", err)
	}

	err := CheckBindSources([]BindMount{
		{Source: missing, Destination: "/a"},
		{Source: dir, Destination: "/b"},
		{Source: missing + "2", Destination: "/c"},
	})
	if !errors.Is(err, ErrBindSource) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("CheckBindSources(missing) = %v, want ErrBindSource and fs.ErrNotExist", err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 {
		t.Fatalf("CheckBindSources(missing) = %q, want one line per missing source", err)
	}
	for i, m := range []string{missing, missing + "2"} {
		want := "bind mount source " + m + " (mounted at "
		if !strings.HasPrefix(lines[i], want) || !strings.Contains(lines[i], "does not exist on this host") {
			t.Errorf("line %d = %q, want %q... does not exist on this host", i, lines[i], want)
		}
	}
}

func TestBindMountValidate(t *testing.T) {
	tests := []struct {
		m  BindMount
		ok bool
	}{
		{BindMount{Source: "/srv", Destination: "/data"}, true},
		{BindMount{Source: "/srv", Destination: "/data", Options: []string{"rw", "z", "rprivate"}}, true},
		{BindMount{Source: "srv", Destination: "/data"}, false},
		{BindMount{Source: "", Destination: "/data"}, false},
		{BindMount{Source: "/srv/../etc", Destination: "/data"}, false},
		{BindMount{Source: "/srv/", Destination: "/data"}, false},
		{BindMount{Source: "/srv", Destination: "data"}, false},
		{BindMount{Source: "/srv", Destination: "/da\x00ta"}, false},
		{BindMount{Source: "/srv", Destination: "/data", Options: []string{"U"}}, false},
		{BindMount{Source: "/srv", Destination: "/data", Options: []string{""}}, false},
	}
	for _, tt := range tests {
		err := tt.m.Validate()
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, ErrInvalidMount) {
			t.Errorf("%+v.Validate() = %v, want ok=%v", tt.m, err, tt.ok)
		}
	}
	err := CheckBindSources([]BindMount{
		{Source: "/", Destination: "/x"},
		{Source: "/", Destination: "/x"},
		{Source: "relative", Destination: "/y"},
	})
	if !errors.Is(err, ErrInvalidMount) || strings.Count(err.Error(), "\n") != 1 {
		t.Errorf("CheckBindSources(duplicate, relative) = %v, want two ErrInvalidMount lines", err)
	}
}
