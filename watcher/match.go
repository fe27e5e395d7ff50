package watcher

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Match is the watcher's decision about one path of a root and the rule that made it, so
// `explain` and `plan` say exactly what the watcher does instead of guessing.
type Match struct {
	Candidate bool   // watched until it is ready, then reported
	Reason    string // one of the Reason* names
	// Rule is the deciding pattern or setting as a person reads it: `include "**/*.mp4"`,
	// `exclude "**/proxies/**"`, `built-in "*.part"`, `recursive: false`.
	Rule string
	// On is the folder (slash-separated, relative to the root) the rule matched, when it
	// matched a folder above the file rather than the file itself.
	On string
}

func (m Match) String() string {
	s := m.Reason
	if m.Rule != "" {
		s += " (" + m.Rule + ")"
	}
	if m.On != "" {
		s += " on folder " + m.On
	}
	return s
}

// Matcher decides, for one root's settings, which paths are picked up: the same filter the
// watcher uses.
type Matcher struct{ f *filter }

// NewMatcher compiles r's include, exclude and recursion settings.
func NewMatcher(r Root) *Matcher { return &Matcher{f: newFilter(r)} }

// File decides a regular file at rel (slash-separated, relative to the root).
func (m *Matcher) File(rel string) Match {
	f := m.f
	if !f.recursive && strings.Contains(rel, "/") {
		return Match{Reason: ReasonNotRecursive, Rule: "recursive: false"}
	}
	lower := strings.ToLower(rel)
	if i := f.excludedBy(rel, lower, 0); i >= 0 {
		return m.excludedMatch(rel, i)
	}
	for i, g := range f.include {
		if g.matchPathPre(rel, lower) {
			return Match{Candidate: true, Reason: ReasonIncluded,
				Rule: fmt.Sprintf("include %q", f.includeSrc[i])}
		}
	}
	if f.defaultInc {
		return Match{Reason: ReasonNotVideo,
			Rule: "built-in include " + strings.Join(quoteAll(DefaultInclude), ", ")}
	}
	return Match{Reason: ReasonNotIncluded, Rule: "include " + strings.Join(quoteAll(f.includeSrc), ", ")}
}

// Dir decides whether the folder at rel is descended into.
func (m *Matcher) Dir(rel string) Match {
	f := m.f
	if !f.recursive {
		return Match{Reason: ReasonNotRecursive, Rule: "recursive: false"}
	}
	if i := f.excludedBy(rel, strings.ToLower(rel), 0); i >= 0 {
		return m.excludedMatch(rel, i)
	}
	return Match{Candidate: true, Reason: ReasonIncluded}
}

func (m *Matcher) excludedMatch(rel string, i int) Match {
	r := m.f.excludeRule[i]
	out := Match{Reason: r.reason, Rule: fmt.Sprintf("exclude %q", r.pattern)}
	if r.builtin {
		out.Rule = fmt.Sprintf("built-in %q", r.pattern)
	}
	// Name the folder when the pattern matched a parent, not the file itself.
	g := m.f.exclude[i]
	for dir := rel; ; {
		slash := strings.LastIndexByte(dir, '/')
		if slash < 0 {
			break
		}
		dir = dir[:slash]
		if g.matchesOwn(dir) && !g.matchesOwn(rel) {
			out.On = dir
		}
	}
	return out
}

// matchesOwn reports whether the glob matches rel itself (its last component, for base-name
// patterns), not one of its folders.
func (g glob) matchesOwn(rel string) bool {
	if g.base {
		name := rel[strings.LastIndexByte(rel, '/')+1:]
		return g.matchName(name, strings.ToLower(name))
	}
	return g.matchPathPre(rel, strings.ToLower(rel))
}

func quoteAll(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// Entry is one path Survey found below a root.
type Entry struct {
	Rel     string // slash-separated, relative to the root
	Dir     bool   // a folder that is not descended into (Match says why)
	Size    int64
	ModTime time.Time
	Match   Match
}

// Survey lists r once, the way a scan of the watcher sees it, without watching anything: every
// candidate file, every other file with the reason it is ignored, and every folder that is not
// descended into. Symbolic links are reported, never followed. fn may return fs.SkipAll to stop.
// `plan` and the first-watch backlog use it.
func Survey(ctx context.Context, r Root, fn func(Entry) error) error {
	m := NewMatcher(r)
	root := filepath.Clean(r.Path)
	start := root
	if !strings.HasSuffix(start, string(filepath.Separator)) {
		start += string(filepath.Separator) // a root that is itself a symlink is followed, as by scans
	}
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if filepath.Clean(p) == root {
				return err
			}
			return nil // vanished or unreadable below the root: the watcher skips it too
		}
		rel, relErr := filepath.Rel(root, p)
		if relErr != nil || rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			return fn(Entry{Rel: rel, Match: Match{Reason: ReasonSymlink, Rule: "never followed"}})
		case d.IsDir():
			if dm := m.Dir(rel); !dm.Candidate {
				if err := fn(Entry{Rel: rel, Dir: true, Match: dm}); err != nil {
					return err
				}
				return fs.SkipDir
			}
			return nil
		case !d.Type().IsRegular():
			return fn(Entry{Rel: rel, Match: Match{Reason: ReasonNotRegular}})
		}
		e := Entry{Rel: rel, Match: m.File(rel)}
		if fi, err := d.Info(); err == nil {
			e.Size, e.ModTime = fi.Size(), fi.ModTime()
		} else {
			return nil // gone since the listing
		}
		return fn(e)
	})
	if errors.Is(err, fs.SkipAll) {
		return nil
	}
	return err
}

// Readiness is one look at a file, with the checks the watcher makes before reporting it ready.
type Readiness struct {
	Size    int64
	ModTime time.Time
	FileID  string
	// Verdict is why the file cannot be ready as it is now ("" = it opens and, for MP4/MOV/M4V,
	// its boxes tile the file and include moov): "empty file", "mp4 has no moov box", ...
	Verdict string
}

// Inspect looks at the file at abs (rel is its path in the root, which decides the container
// check) the way a settle check does. It does not wait: stability over the settle window needs
// two looks, which only the running watcher makes.
func Inspect(abs, rel string) (Readiness, error) {
	fi, err := os.Lstat(abs)
	if err != nil {
		return Readiness{}, err
	}
	if !fi.Mode().IsRegular() {
		return Readiness{}, fmt.Errorf("%s is not a regular file", abs)
	}
	o := observation{rel: rel, size: fi.Size(), mtime: fi.ModTime(), id: fileIdentity(abs, fi)}
	probe(abs, &o)
	if !o.probed { // changed while being looked at
		o.verdict = "the file changed while it was checked (still being written?)"
	}
	return Readiness{Size: o.size, ModTime: o.mtime, FileID: o.id.String(), Verdict: o.verdict}, nil
}
