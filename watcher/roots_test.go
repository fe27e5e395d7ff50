package watcher

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// rootAt is the test root settings for dir.
func rootAt(dir string, mode Mode) Root {
	return Root{Path: dir, Recursive: true, Settle: testSettle, Mode: mode, PollInterval: testPoll,
		IncompleteAfter: testIncomplete}
}

func TestSetRootsAddsAndRemovesWhileRunning(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode Mode) {
		h := startWatcher(t, mode)
		added := filepath.Join(h.outer, "added")
		writeFile(t, filepath.Join(added, "there-before.mp4"), validMP4(10))
		a, b := rootAt(h.root, mode), rootAt(added, mode)
		if err := h.w.SetRoots([]Root{a, b}); err != nil {
			t.Fatal(err)
		}
		// A new root is scanned at once and reports its health and existing files.
		h.waitFor(func(e Event) bool { return e.Kind == Health && e.Root == added && e.Healthy },
			"health of the added root")
		e := h.waitFor(func(e Event) bool { return e.Kind == Ready && e.Root == added }, "ready in added root")
		if e.Rel != "there-before.mp4" {
			t.Fatalf("added root reported %+v", e)
		}
		writeFile(t, filepath.Join(added, "new.mp4"), validMP4(11))
		h.waitFor(func(e Event) bool { return e.Kind == Ready && e.Root == added && e.Rel == "new.mp4" },
			"a file dropped into the added root")

		// A removed root reports nothing more; the kept one goes on.
		writeFile(t, h.path("settling.mp4"), validMP4(12))
		h.waitCond(func() bool { return h.w.Pending() >= 1 }, "the file to be settling")
		if err := h.w.SetRoots([]Root{b}); err != nil {
			t.Fatal(err)
		}
		h.waitCond(func() bool { return h.w.Pending() == 0 }, "the removed root's files to be forgotten")
		writeFile(t, h.path("after-removal.mp4"), validMP4(13))
		writeFile(t, filepath.Join(added, "marker.mp4"), validMP4(14))
		h.waitFor(func(e Event) bool { return e.Kind == Ready && e.Rel == "marker.mp4" }, "marker")
		h.noMore(isKindRel(Ready, "after-removal.mp4"), 3*testSettle)
	})
}

func TestSetRootsChangesApplyToFilesNotReady(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode Mode) {
		h := startWatcher(t, mode, func(r *Root) { r.Include = []string{"*.mp4"}; r.Settle = time.Hour })
		writeFile(t, h.path("clip.mov"), validMP4(10))
		writeFile(t, h.path("waiting.mp4"), validMP4(11))
		h.waitCond(func() bool { return h.w.Pending() == 1 }, "waiting.mp4 to be settling (1h window)")

		// A shorter window applies to the settling file; a wider include finds clip.mov.
		r := rootAt(h.root, mode)
		r.Include = []string{"*.mp4", "*.mov"}
		if err := h.w.SetRoots([]Root{r}); err != nil {
			t.Fatal(err)
		}
		h.waitKind(Ready, "waiting.mp4")
		h.waitKind(Ready, "clip.mov")

		// A new exclude drops a settling file without an event; the mode can change too.
		r.Settle = time.Hour
		if err := h.w.SetRoots([]Root{r}); err != nil {
			t.Fatal(err)
		}
		writeFile(t, h.path("draft_cut.mp4"), validMP4(12))
		h.waitCond(func() bool { return h.w.Pending() == 1 }, "draft_cut.mp4 to be settling")
		r.Exclude, r.Settle = []string{"draft_*"}, testSettle
		r.Mode = ModePoll
		if mode == ModePoll {
			r.Mode = ModeEvents
		}
		if err := h.w.SetRoots([]Root{r}); err != nil {
			t.Fatal(err)
		}
		h.waitCond(func() bool { return h.w.Pending() == 0 }, "the excluded file to be dropped")
		writeFile(t, h.path("after.mp4"), validMP4(13))
		h.waitKind(Ready, "after.mp4") // found in the new mode
		h.noMore(isKindRel(Ready, "draft_cut.mp4"), 3*testSettle)
		if n := h.count(Ready, "waiting.mp4") + h.count(Ready, "clip.mov"); n != 2 {
			t.Fatalf("files reported ready again after a settings change: %d events", n)
		}
	})
}

func TestSetRootsBeforeRunAndAfterStop(t *testing.T) {
	dir := t.TempDir()
	first, second := filepath.Join(dir, "first"), filepath.Join(dir, "second")
	writeFile(t, filepath.Join(second, "x.mp4"), validMP4(10))
	os.MkdirAll(first, 0o755)
	w, err := New(Options{Roots: []Root{rootAt(first, ModePoll)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SetRoots([]Root{{Path: "relative"}}); err == nil {
		t.Fatal("SetRoots accepted a relative root")
	}
	if err := w.SetRoots([]Root{rootAt(second, ModePoll)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	for e := range w.Events() {
		if e.Kind == Ready {
			if e.Root != second {
				t.Fatalf("event from the replaced root: %+v", e)
			}
			break
		}
	}
	cancel()
	for range w.Events() {
	}
	<-done
	if err := w.SetRoots([]Root{rootAt(first, ModePoll)}); !errors.Is(err, ErrStopped) {
		t.Fatalf("SetRoots after Run: %v, want ErrStopped", err)
	}
}
