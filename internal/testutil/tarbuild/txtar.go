package tarbuild

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Txtar is a parsed txtar archive (the golang.org/x/tools/txtar format:
// a comment, then files introduced by "-- name --" lines), what format's
// test cases of tar entries are written in.
type Txtar struct {
	Comment []byte
	Files   []TxtarFile
}

// TxtarFile is one file of a Txtar.
type TxtarFile struct {
	Name string
	Data []byte
}

// ParseTxtar parses data in the txtar format.
func ParseTxtar(data []byte) *Txtar {
	a := new(Txtar)
	var name string
	a.Comment, name, data = findFileMarker(data)
	for name != "" {
		f := TxtarFile{Name: name}
		f.Data, name, data = findFileMarker(data)
		a.Files = append(a.Files, f)
	}
	return a
}

var newlineMarker = []byte("\n-- ")

func findFileMarker(data []byte) (before []byte, name string, after []byte) {
	var i int
	for {
		if name, after = isMarker(data[i:]); name != "" {
			return data[:i], name, after
		}
		j := bytes.Index(data[i:], newlineMarker)
		if j < 0 {
			return fixNL(data), "", nil
		}
		i += j + 1
	}
}

func isMarker(data []byte) (name string, after []byte) {
	if !bytes.HasPrefix(data, []byte("-- ")) {
		return "", nil
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		data, after = data[:i], data[i+1:]
	}
	if !(bytes.HasSuffix(data, []byte(" --")) && len(data) >= 6) {
		return "", nil
	}
	return strings.TrimSpace(string(data[3 : len(data)-3])), after
}

func fixNL(data []byte) []byte {
	if len(data) == 0 || data[len(data)-1] == '\n' {
		return data
	}
	return append(bytes.Clone(data), '\n')
}

// Keys parses a txtar comment of "key=value" lines (blank lines and lines
// starting with # are skipped). A key may repeat; its values are kept in
// order. Every key must be in allowed: readTest's rule that an unknown key
// is an error, not a silently ignored typo.
func Keys(comment []byte, allowed ...string) (map[string][]string, error) {
	ok := map[string]bool{}
	for _, k := range allowed {
		ok[k] = true
	}
	keys := map[string][]string{}
	for _, line := range strings.Split(string(comment), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, found := strings.Cut(line, "=")
		if !found {
			return nil, fmt.Errorf("line %q is not key=value", line)
		}
		if !ok[k] {
			names := append([]string(nil), allowed...)
			sort.Strings(names)
			return nil, fmt.Errorf("unknown key %q (known: %s)", k, strings.Join(names, ", "))
		}
		keys[k] = append(keys[k], v)
	}
	return keys, nil
}

// Fields splits a txtar file name into space-separated fields; a field,
// or the value after a field's first '=', may be a Go-quoted string, which
// is unquoted (so names can hold NUL, invalid UTF-8 or spaces).
func Fields(s string) ([]string, error) {
	var out []string
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			return out, nil
		}
		prefix := ""
		if i := strings.IndexAny(s, "= \""); i >= 0 && s[i] == '=' {
			prefix, s = s[:i+1], s[i+1:]
		}
		if strings.HasPrefix(s, `"`) {
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				return nil, fmt.Errorf("field %q: %v", s, err)
			}
			u, _ := strconv.Unquote(q)
			out = append(out, prefix+u)
			s = s[len(q):]
			continue
		}
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			i = len(s)
		}
		out = append(out, prefix+s[:i])
		s = s[i:]
	}
}
