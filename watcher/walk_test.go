package watcher

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/fsnotify/fsnotify"
)

// TestWalkReportsEveryCandidateOnce walks a tree wider than one batch with the
// parallel walker and checks every candidate is reported exactly once, with
// the same size, mtime and identity a check's lstat sees (a mismatch would
// restart every file's settle window), and that excluded folders and symlinks
// are skipped and every allowed folder is watched.
func TestWalkReportsEveryCandidateOnce(t *testing.T) {
	root := t.TempDir()
	want := map[string]bool{}
	for d := range 40 {
		dir := filepath.Join(root, fmt.Sprintf("g%d", d%4), fmt.Sprintf("d%02d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range 15 {
			rel := fmt.Sprintf("g%d/d%02d/c%02d.mp4", d%4, d, f)
			writeFile(t, filepath.Join(root, filepath.FromSlash(rel)), validMP4(f))
			want[rel] = true
		}
		writeFile(t, filepath.Join(dir, "notes.txt"), []byte("x"))
	}
	writeFile(t, filepath.Join(root, "top.MP4"), validMP4(3))
	want["top.MP4"] = true
	writeFile(t, filepath.Join(root, ".hidden", "h.mp4"), validMP4(3))
	writeFile(t, filepath.Join(root, "@eaDir", "e.mp4"), validMP4(3))
	symlink(t, filepath.Join(root, "g0"), filepath.Join(root, "link"))
	symlink(t, filepath.Join(root, "top.MP4"), filepath.Join(root, "link.mp4"))

	for _, watch := range []bool{false, true} {
		t.Run(fmt.Sprintf("watch=%v", watch), func(t *testing.T) {
			w, err := New(Options{Roots: []Root{{Path: root, Recursive: true}}})
			if err != nil {
				t.Fatal(err)
			}
			r := w.roots[0]
			if watch {
				if err := r.watches.ensure(func(*fsnotify.Watcher) {}); err != nil {
					t.Fatal(err)
				}
				defer r.watches.shutdown()
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var got []observation
			var mu sync.Mutex
			drained := make(chan struct{})
			go func() {
				defer close(drained)
				for res := range w.results {
					mu.Lock()
					got = append(got, res.obs...)
					mu.Unlock()
				}
			}()
			n, err := w.walk(ctx, r, r.clean, watch, 7)
			close(w.results)
			<-drained
			if err != nil {
				t.Fatal(err)
			}
			if n != len(want) || len(got) != len(want) {
				t.Fatalf("walk reported %d (sent %d), want %d", n, len(got), len(want))
			}
			seen := map[string]bool{}
			for _, o := range got {
				if !want[o.rel] || seen[o.rel] {
					t.Fatalf("unexpected or repeated %q", o.rel)
				}
				seen[o.rel] = true
				abs := r.abs(o.rel)
				fi, err := os.Lstat(abs)
				if err != nil {
					t.Fatal(err)
				}
				if o.size != fi.Size() || !o.mtime.Equal(fi.ModTime()) || o.id != fileIdentity(abs, fi) || o.at.IsZero() {
					t.Fatalf("%s: scan saw size %d mtime %v id %v at %v; lstat says %d %v %v",
						o.rel, o.size, o.mtime, o.id, o.at, fi.Size(), fi.ModTime(), fileIdentity(abs, fi))
				}
			}
			if watch {
				r.watches.mu.Lock()
				dirs := len(r.watches.dirs)
				_, hidden := r.watches.dirs[filepath.Join(root, ".hidden")]
				r.watches.mu.Unlock()
				if want := 1 + 4 + 40; dirs != want || hidden {
					t.Fatalf("watched %d folders (hidden one: %v), want %d", dirs, hidden, want)
				}
			}
		})
	}
}

// TestWalkUnreadableRootFails: a start folder that cannot be listed fails
// the walk (the scan is then incomplete, not "every file vanished").
func TestWalkUnreadableRootFails(t *testing.T) {
	root := filepath.Join(t.TempDir(), "missing")
	w, err := New(Options{Roots: []Root{{Path: root, Recursive: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.walk(context.Background(), w.roots[0], w.roots[0].clean, false, 1); err == nil {
		t.Fatal("walk of a missing root succeeded")
	}
}

// TestWalkStopsOnCancel: cancelling mid-walk ends every walker goroutine.
func TestWalkStopsOnCancel(t *testing.T) {
	root := t.TempDir()
	for d := range 20 {
		for f := range 60 {
			writeFile(t, filepath.Join(root, fmt.Sprintf("d%02d", d), fmt.Sprintf("c%02d.mp4", f)), validMP4(1))
		}
	}
	base := runtime.NumGoroutine()
	w, err := New(Options{Roots: []Root{{Path: root, Recursive: true}}})
	if err != nil {
		t.Fatal(err)
	}
	w.results = make(chan result) // unbuffered: the walk cannot finish unseen
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := w.walk(ctx, w.roots[0], w.roots[0].clean, false, 1)
		done <- err
	}()
	<-w.results // one batch arrived; nobody takes the next
	cancel()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("walk returned %v, want context canceled", err)
	}
	goroutinesSettle(t, base)
}

func TestGlobLastSegmentFastPathAgrees(t *testing.T) {
	pats := []string{"**/*.mp4", "**/clip*", "**/a.mp4", "**/*", "**/[ab].mp4", "/**/*.mov"}
	rels := []string{"a.mp4", "x/a.mp4", "x/y/b.mp4", "clip1.mov", "x/clip.mp4", "a.mp4/x", "", "x/", "/a.mp4"}
	for _, p := range pats {
		for _, fold := range []bool{false, true} {
			g := newGlob(p, fold)
			if !g.last {
				t.Fatalf("%q should take the fast path", p)
			}
			for _, rel := range rels {
				slow := g
				slow.last = false
				if got, want := g.matchPath(rel), slow.matchPath(rel); got != want {
					t.Errorf("%q ~ %q: fast %v, general %v", p, rel, got, want)
				}
			}
		}
	}
}

func TestFilterFromParentAgrees(t *testing.T) {
	f := newFilter(Root{Recursive: true, Exclude: []string{"drafts/**", "*.bak.mp4", "x/y"}})
	for _, rel := range []string{"a.mp4", "x/y/z.MoV", "x/y", "drafts/a.mp4", "a/.hidden", "a/b/c.bak.mp4",
		"a/@eaDir", "ÀÉ/ñ.MP4", "a/Thumbs.db", "a/b/c.mkv"} {
		from := strings.LastIndexByte(rel, '/') + 1
		if parent := rel[:max(from-1, 0)]; parent != "" && !f.dirAllowed(parent) {
			continue // a walk never gets there
		}
		if got, want := f.fileAllowedIn(rel, from), f.fileAllowed(rel); got != want {
			t.Errorf("fileAllowedIn(%q) = %v, fileAllowed = %v", rel, got, want)
		}
		if got, want := f.dirAllowedIn(rel, from), f.dirAllowed(rel); got != want {
			t.Errorf("dirAllowedIn(%q) = %v, dirAllowed = %v", rel, got, want)
		}
	}
}
