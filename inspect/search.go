package inspect

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
)

// MaxSearchContext bounds the context bytes shown around a match.
const MaxSearchContext = 4096

// maxMatches bounds the matches one search reports.
const maxMatches = 10000

// searchOverlap is how far chunks overlap for regular expressions: longer
// matches that straddle a chunk boundary may be missed.
const searchOverlap = 4096

// Match is one memory search hit.
type Match struct {
	PID uint32 `json:"pid"`
	// Addr is the address of the match.
	Addr uint64 `json:"address"`
	// Match is the matched bytes.
	Match string `json:"match"`
	// Before and After are up to the requested context bytes around it,
	// within the same run of stored pages.
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

// SearchOptions configure Search. Exactly one of String and Regexp is set.
type SearchOptions struct {
	// String searches a literal.
	String string
	// Regexp searches a regular expression (Go syntax).
	Regexp string
	// Context is how many bytes to show before and after a match, at most
	// MaxSearchContext.
	Context int
	// PID restricts the search to one process; 0 means every process.
	PID uint32
}

// Search searches the stored memory of the archive's processes, and the
// memory they hold in parent when the parents were loaded
// ([LoadOptions.Parents]). The archive must have been loaded with Pages.
func (a *Archive) Search(opts SearchOptions) ([]Match, error) {
	if (opts.String == "") == (opts.Regexp == "") {
		return nil, errors.New("search memory: give a string or a regular expression")
	}
	if opts.Context < 0 || opts.Context > MaxSearchContext {
		return nil, fmt.Errorf("search memory: context %d outside 0..%d", opts.Context, MaxSearchContext)
	}
	var re *regexp.Regexp
	ov := len(opts.String)
	if opts.Regexp != "" {
		var err error
		if re, err = regexp.Compile(opts.Regexp); err != nil {
			return nil, fmt.Errorf("search memory: %w", err)
		}
		ov = searchOverlap
	}
	roots, err := a.Tree()
	if err != nil {
		return nil, err
	}
	var out []Match
	var ferr error
	Walk(roots, func(p *Process, _ int) {
		if ferr != nil || p.State == "zombie" || (opts.PID != 0 && p.PID != opts.PID) {
			return
		}
		m, err := a.memory(p.PID)
		if err != nil {
			ferr = err
			return
		}
		defer m.Close()
		if m.f == nil {
			ferr = errors.New("search memory: pages not loaded")
			return
		}
		const chunk = 1 << 20
		ctx := int64(opts.Context)
		for _, r := range m.ranges {
			if !m.readable(r) {
				continue // not stored, or in a parent not given (see MemoryUsage)
			}
			n := int64(r.pages) * PageSize
			for start := int64(0); start < n; start += chunk {
				// Read [start-ctx, start+chunk+ov+ctx) clipped to the range.
				lo := max(0, start-ctx)
				hi := min(n, start+chunk+int64(ov)+ctx)
				buf := make([]byte, hi-lo)
				if err := m.readRun(r, buf, lo); err != nil {
					ferr = fmt.Errorf("search memory: %w", err)
					return
				}
				var locs [][]int
				if re != nil {
					locs = re.FindAllIndex(buf, -1)
				} else {
					for i := 0; ; {
						j := bytes.Index(buf[i:], []byte(opts.String))
						if j < 0 {
							break
						}
						locs = append(locs, []int{i + j, i + j + len(opts.String)})
						i += j + 1
					}
				}
				for _, l := range locs {
					pos := lo + int64(l[0])
					if pos < start || pos >= start+chunk || l[1] == l[0] {
						continue // another chunk reports it
					}
					mt := Match{PID: p.PID, Addr: r.addr + uint64(pos), Match: string(buf[l[0]:l[1]])}
					b0 := max(0, int64(l[0])-ctx)
					a1 := min(int64(len(buf)), int64(l[1])+ctx)
					mt.Before, mt.After = string(buf[b0:l[0]]), string(buf[l[1]:a1])
					out = append(out, mt)
					if len(out) >= maxMatches {
						return
					}
				}
			}
		}
	})
	return out, ferr
}
