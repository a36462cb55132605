package rootfs

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	long := strings.Repeat("a", MaxNameLength)
	tests := []struct {
		name string
		want error
	}{
		{"etc/hosts", nil},
		{".", nil},
		{"a\\b", nil},
		{"\xff\xfe", nil},
		{"d/" + long, nil},
		{"", ErrInsecurePath},
		{"/etc", ErrInsecurePath},
		{"..", ErrInsecurePath},
		{"../x", ErrInsecurePath},
		{"a/../b", ErrInsecurePath},
		{"a//b", ErrInsecurePath},
		{"a/./b", ErrInsecurePath},
		{"./a", ErrInsecurePath},
		{"a/", ErrInsecurePath},
		{"a\x00b", ErrInsecurePath},
		{".wh.a", ErrInsecurePath},
		{"a/.wh..wh..opq", ErrInsecurePath},
		{"d/" + long + "a", ErrTooLarge},
		{strings.Repeat("a/", MaxPathLength/2) + "a", ErrTooLarge},
	}
	for _, tt := range tests {
		if err := checkName(tt.name); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("checkName(%.40q) = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestDeletedFilesFormat(t *testing.T) {
	changes := []Change{
		{"var/lib/x", Deleted}, {"etc/added", Added}, {"etc/deleted.txt", Deleted}, {"etc", Modified},
	}
	var buf bytes.Buffer
	if err := WriteDeleted(&buf, changes); err != nil {
		t.Fatalf("WriteDeleted() = %v", err)
	}
	// Podman's format: checkpointctl's WriteJSONFile (MarshalIndent, two
	// spaces), absolute-style paths.
	want := "[\n  \"/etc/deleted.txt\",\n  \"/var/lib/x\"\n]"
	if buf.String() != want {
		t.Errorf("WriteDeleted() = %q, want %q", buf.String(), want)
	}
	buf.Reset()
	if err := WriteDeleted(&buf, nil); err != nil || buf.String() != "[]" {
		t.Errorf("WriteDeleted(nil) = %q, %v; want []", buf.String(), err)
	}
}

func TestReadDeleted(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  error
	}{
		{`["/etc/a", "b"]`, []string{"/etc/a", "b"}, nil},
		{`[]`, []string{}, nil},
		{"[\"/a\"]\n", []string{"/a"}, nil},
		{`["/a"] ["/b"]`, nil, ErrFormat},
		{`{"a": 1}`, nil, ErrFormat},
		{`[1]`, nil, ErrFormat},
		{`["/a"`, nil, ErrFormat},
		{"[\"" + strings.Repeat("a", MaxDeletedFilesSize) + "\"]", nil, ErrTooLarge},
	}
	for _, tt := range tests {
		got, err := ReadDeleted(strings.NewReader(tt.in))
		if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("ReadDeleted(%.20q) = %v, want %v", tt.in, err, tt.err)
			continue
		}
		if tt.err == nil && strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("ReadDeleted(%.20q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCleanDeleted(t *testing.T) {
	for in, want := range map[string]string{"/etc/passwd": "etc/passwd", "etc/passwd": "etc/passwd", "/a\\b": "a\\b"} {
		if got, err := cleanDeleted(in); got != want || err != nil {
			t.Errorf("cleanDeleted(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "/", ".", "/.", "//etc", "/../x", "/etc/../x", "a\x00", "/.wh.x"} {
		if _, err := cleanDeleted(in); !errors.Is(err, ErrInsecurePath) {
			t.Errorf("cleanDeleted(%q) = %v, want ErrInsecurePath", in, err)
		}
	}
}

func TestChangeKindString(t *testing.T) {
	for k, want := range map[ChangeKind]string{Added: "A", Modified: "C", Deleted: "D", 0: "?"} {
		if got := k.String(); got != want {
			t.Errorf("ChangeKind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}

// TestReadDeletedMemory: a deleted list of a million paths is refused at
// MaxDeletedFiles without keeping them (it used to cost 84 MiB of RSS).
func TestReadDeletedMemory(t *testing.T) {
	var b strings.Builder
	b.WriteString("[")
	for i := range 1_000_000 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"/a"`)
	}
	b.WriteString("]")
	doc := b.String()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := ReadDeleted(strings.NewReader(doc))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ReadDeleted(a million paths) = %v, want ErrTooLarge", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 32<<20 {
		t.Errorf("ReadDeleted(a million paths) allocated %d bytes, want under 32 MiB", n)
	}
}
