package engine

import (
	"archive/tar"
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/format"
)

func TestParseCPUInfo(t *testing.T) {
	tests := []struct {
		name, in string
		want     format.CPU
	}{
		{"x86", "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)\nflags\t\t: sse2 fpu avx\n\nprocessor\t: 1\nvendor_id\t: Other\n",
			format.CPU{Vendor: "GenuineIntel", Model: "Intel(R) Xeon(R)", Flags: []string{"avx", "fpu", "sse2"}}},
		{"arm64", "processor\t: 0\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n",
			format.CPU{Vendor: "0x41", Model: "0xd0c", Flags: []string{"asimd", "fp"}}},
		{"empty", "", format.CPU{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseCPUInfo(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseCPUInfo() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestStripDotSlash(t *testing.T) {
	var src bytes.Buffer
	tw := tar.NewWriter(&src)
	for _, h := range []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./counter", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3},
		{Name: "./link", Typeflag: tar.TypeLink, Linkname: "./counter"},
		{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			_, _ = tw.Write([]byte("42\n"))
		}
	}
	tw.Close()
	tr := tar.NewReader(stripDotSlash(&src))
	var got []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, h.Name+">"+h.Linkname)
	}
	// Names are only normalized; "../escape" is left for rootfs.Apply to refuse.
	want := []string{".>", "counter>", "link>counter", "../escape>"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("stripDotSlash names = %v, want %v", got, want)
	}
}

func TestImportRecordCheck(t *testing.T) {
	ok := importRecord{Name: "a", Command: []string{"/bin/x"}, Env: []string{"A=1"}}
	if err := ok.check(); err != nil {
		t.Fatalf("check(valid) = %v", err)
	}
	for name, mod := range map[string]func(r *importRecord){
		"no command":    func(r *importRecord) { r.Command = nil },
		"bad name":      func(r *importRecord) { r.Name = "../x" },
		"bad id":        func(r *importRecord) { r.ID = "xyz" },
		"bad network":   func(r *importRecord) { r.Network = "/proc/1/ns/net" },
		"env without =": func(r *importRecord) { r.Env = []string{"NOEQ"} },
	} {
		r := ok
		mod(&r)
		if err := r.check(); err == nil {
			t.Errorf("check(%s) = nil, want an error", name)
		}
	}
}
