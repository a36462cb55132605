package tarbuild

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestRawTarReadsBack(t *testing.T) {
	long := strings.Repeat("d/", 60) + "f"
	b := RawTar(
		Raw{Name: "a", Content: []byte("hello")},
		Raw{Name: long, Content: []byte("x")},
		Raw{Name: "l", Type: tar.TypeSymlink, Linkname: "../x"},
		Raw{Name: "big", Size: 8 << 30, SetSize: true},
	)
	tr := tar.NewReader(bytes.NewReader(b))
	var got []string
	var sizes []int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if len(got) == 4 {
				break // the 8 GiB entry has no data: tar reports the truncation at the next header
			}
			t.Fatalf("Next() = %v after %v", err, got)
		}
		got = append(got, h.Name+">"+h.Linkname)
		sizes = append(sizes, h.Size)
	}
	want := []string{"a>", long + ">", "l>../x", "big>"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("names = %q, want %q", got, want)
	}
	if sizes[3] != 8<<30 {
		t.Errorf("size = %d, want %d", sizes[3], int64(8<<30))
	}
}

func TestFields(t *testing.T) {
	got, err := Fields(`"a\x00b" type=symlink link="../x y" pax.k=v`)
	want := []string{"a\x00b", "type=symlink", "link=../x y", "pax.k=v"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Fields() = %q, %v, want %q", got, err, want)
	}
}

func TestKeys(t *testing.T) {
	k, err := Keys([]byte("# c\na=1\nb=2\na=3\n"), "a", "b")
	if err != nil || !reflect.DeepEqual(k["a"], []string{"1", "3"}) {
		t.Errorf("Keys() = %v, %v", k, err)
	}
	if _, err := Keys([]byte("c=1\n"), "a"); err == nil {
		t.Errorf("Keys(unknown key) = nil, want error")
	}
}

func TestParseTxtar(t *testing.T) {
	a := ParseTxtar([]byte("comment\n-- f1 --\none\n-- f2 --\ntwo"))
	if string(a.Comment) != "comment\n" || len(a.Files) != 2 || string(a.Files[1].Data) != "two\n" {
		t.Errorf("ParseTxtar() = %q", a)
	}
}
