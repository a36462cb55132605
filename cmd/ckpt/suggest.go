package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/pflag"
)

// podmanCommands are podman commands that are spelled otherwise in ckpt.
var podmanCommands = map[string]string{
	"images": "image ls",
	"rmi":    "image rm",
	"import": "image import",
}

// commandHint is the " (did you mean ...?)" of an unknown command
// args[0], or "": the ckpt spelling of a podman command, `container X`
// for a command X, or the nearest command name.
func commandHint(args []string) string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	if alt, ok := podmanCommands[args[0]]; ok {
		return fmt.Sprintf(" (did you mean %q?)", alt)
	}
	if args[0] == "container" && len(args) > 1 {
		for _, n := range names {
			if n == args[1] {
				return fmt.Sprintf(" (did you mean %q?)", n)
			}
		}
	}
	return didYouMean(args[0], names, "")
}

// didYouMean is ` (did you mean "NAME"?)` for the candidate nearest to
// word, or with a prefix (a flag's "--") ` (did you mean --NAME?)`; "" if
// none is near.
func didYouMean(word string, candidates []string, prefix string) string {
	s := suggest(word, candidates)
	switch {
	case s == "":
		return ""
	case prefix == "":
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return fmt.Sprintf(" (did you mean %s%s?)", prefix, s)
}

// suggest returns the candidate that word, of 3 letters or more, begins,
// or else the one nearest to it within an edit distance of 2 (1 for words
// of 3 letters or less); "" if there is none. Ties go to the first.
func suggest(word string, candidates []string) string {
	w := strings.ToLower(word)
	for _, c := range candidates {
		if len(w) >= 3 && strings.HasPrefix(strings.ToLower(c), w) {
			return c
		}
	}
	maxd := 2
	if len(w) <= 3 {
		maxd = 1
	}
	best, bestd := "", maxd+1
	for _, c := range candidates {
		if d := editDistance(w, strings.ToLower(c)); d < bestd {
			best, bestd = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b: the
// insertions, deletions, substitutions and transpositions of adjacent
// runes that turn one into the other.
func editDistance(a, b string) int {
	s, t := []rune(a), []rune(b)
	// d[i][j] is the distance of s[:i] and t[:j].
	d := make([][]int, len(s)+1)
	for i := range d {
		d[i] = make([]int, len(t)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(s); i++ {
		for j := 1; j <= len(t); j++ {
			cost := 1
			if s[i-1] == t[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && s[i-1] == t[j-2] && s[i-2] == t[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(s)][len(t)]
}

// flagError is pflag's error err from parsing fs, with a hint for an
// unknown long flag: a global flag (in globals, nil for the global flag
// set itself) given after the command, or the nearest flag of fs.
func flagError(err error, fs, globals *pflag.FlagSet) string {
	var ne *pflag.NotExistError
	if !errors.As(err, &ne) || ne.GetSpecifiedShortnames() != "" {
		return err.Error()
	}
	name := ne.GetSpecifiedName()
	if globals != nil && globals.Lookup(name) != nil {
		return fmt.Sprintf("%v (--%s is a global flag: give it before the command)", err, name)
	}
	var names []string
	fs.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	return err.Error() + didYouMean(name, names, "--")
}
