package watcher

import (
	"fmt"
	"path"
	"strings"
)

// glob matches slash-separated relative paths. A "**" segment matches zero or
// more whole segments; other segments use path.Match syntax. Simple segments
// (literal, "x*", "*x") skip path.Match: filters run for every scanned file.
type glob struct {
	segs []segment
	fold bool // case-insensitive: callers pass lower-cased names
	base bool // pattern has no "/": it is matched against every path component
	last bool // pattern is "**/<segment>": only the last path component matters
}

type segKind int

const (
	segGeneral segKind = iota
	segAnyPath         // **
	segExact
	segPrefix
	segSuffix
	segAny // *
)

type segment struct {
	kind segKind
	lit  string // literal part, or the whole pattern for segGeneral
}

func validGlob(p string) error {
	if p == "" {
		return fmt.Errorf("empty glob")
	}
	for _, s := range strings.Split(p, "/") {
		if s == "**" {
			continue
		}
		if _, err := path.Match(s, ""); err != nil {
			return fmt.Errorf("glob %q: %w", p, err)
		}
	}
	return nil
}

func newGlob(p string, fold bool) glob {
	if fold {
		p = strings.ToLower(p)
	}
	p = strings.TrimPrefix(p, "/")
	g := glob{fold: fold, base: !strings.Contains(p, "/")}
	for _, s := range strings.Split(p, "/") {
		g.segs = append(g.segs, compileSegment(s))
	}
	g.last = len(g.segs) == 2 && g.segs[0].kind == segAnyPath && g.segs[1].kind != segAnyPath
	return g
}

func compileSegment(s string) segment {
	switch {
	case s == "**":
		return segment{kind: segAnyPath}
	case s == "*":
		return segment{kind: segAny}
	case strings.ContainsAny(s, `?[\`):
		return segment{kind: segGeneral, lit: s}
	}
	stars := strings.Count(s, "*")
	switch {
	case stars == 0:
		return segment{kind: segExact, lit: s}
	case stars == 1 && strings.HasSuffix(s, "*"):
		return segment{kind: segPrefix, lit: s[:len(s)-1]}
	case stars == 1 && strings.HasPrefix(s, "*"):
		return segment{kind: segSuffix, lit: s[1:]}
	}
	return segment{kind: segGeneral, lit: s}
}

func (s segment) match(name string) bool {
	switch s.kind {
	case segExact:
		return name == s.lit
	case segPrefix:
		return strings.HasPrefix(name, s.lit)
	case segSuffix:
		return strings.HasSuffix(name, s.lit)
	case segAny:
		return true
	}
	ok, _ := path.Match(s.lit, name)
	return ok
}

// matchPath matches the whole relative path (lower is rel lower-cased).
func (g glob) matchPath(rel string) bool { return g.matchPathPre(rel, "") }

func (g glob) matchPathPre(rel, lower string) bool {
	if g.fold {
		if lower == "" {
			lower = strings.ToLower(rel)
		}
		rel = lower
	}
	if g.last { // the default includes: no split, no allocation per scanned file
		return g.segs[1].match(rel[strings.LastIndexByte(rel, '/')+1:])
	}
	return matchSegs(g.segs, strings.Split(rel, "/"))
}

// matchName matches a single path component (for base-name patterns).
func (g glob) matchName(name, lower string) bool {
	if g.fold {
		name = lower
	}
	return g.segs[0].match(name)
}

func matchSegs(pat []segment, name []string) bool {
	for len(pat) > 0 {
		if pat[0].kind == segAnyPath {
			rest := pat[1:]
			if len(rest) == 0 {
				return true
			}
			for i := 0; i <= len(name); i++ {
				if matchSegs(rest, name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 || !pat[0].match(name[0]) {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}
