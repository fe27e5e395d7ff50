package watcher

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// forModes runs a behaviour test in events and poll mode.
func forModes(t *testing.T, fn func(t *testing.T, mode Mode)) {
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			fn(t, m)
		})
	}
}

func TestStartScanReportsExistingFiles(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode Mode) {
		base := t.TempDir()
		root := filepath.Join(base, "in")
		writeFile(t, filepath.Join(root, "old.mp4"), validMP4(100))
		writeFile(t, filepath.Join(root, "sub", "deeper", "old.MKV"), []byte("matroska-ish"))
		h := startOn(t, root, base, mode)
		if e := h.waitKind(Health, ""); !e.Healthy {
			t.Fatalf("initial health %+v", e)
		}
		e := h.waitKind(Ready, "old.mp4")
		if e.Size != int64(len(validMP4(100))) || e.Path != filepath.Join(root, "old.mp4") || e.Root != root || e.FileID == "" {
			t.Fatalf("bad ready event %+v", e)
		}
		h.waitKind(Ready, "sub/deeper/old.MKV")
	})
}

func TestSlowWriterYieldsOneReadyAfterLastWrite(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode Mode) {
		const settle = 400 * time.Millisecond
		h := startWatcher(t, mode, func(r *Root) { r.Settle = settle })
		f, err := os.Create(h.path("slow.mkv"))
		if err != nil {
			t.Fatal(err)
		}
		chunk := make([]byte, 4096)
		var lastWrite time.Time
		for i := 0; i < 8; i++ { // ~1.2 s of writing, longer than the settle window
			if _, err := f.Write(chunk); err != nil {
				t.Fatal(err)
			}
			lastWrite = time.Now()
			time.Sleep(150 * time.Millisecond) // the writer's pace, not a wait for an outcome
		}
		f.Close()
		e := h.waitKind(Ready, "slow.mkv")
		got := time.Now()
		if e.Size != 8*4096 {
			t.Fatalf("ready with size %d, want %d", e.Size, 8*4096)
		}
		if got.Before(lastWrite.Add(settle)) {
			t.Fatalf("ready %v after the last write, before the settle window %v", got.Sub(lastWrite), settle)
		}
		h.quiesce(got)
		h.noMore(func(e Event) bool { return e.Kind != Health && e.Rel == "slow.mkv" && e.Kind != Ready }, 0)
		if n := h.count(Ready, "slow.mkv"); n != 1 {
			t.Fatalf("%d Ready events, want exactly 1", n)
		}
	})
}

func TestCopyAndMoveIntoFolder(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode Mode) {
		h := startWatcher(t, mode)
		src := filepath.Join(h.outer, "src.mp4")
		writeFile(t, src, validMP4(5000))
		// copy
		in, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(h.path("copied.mp4"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		out.Close()
		// move from outside the root
		if err := os.Rename(src, h.path("moved.mp4")); err != nil {
			t.Fatal(err)
		}
		h.waitKind(Ready, "copied.mp4")
		e := h.waitKind(Ready, "moved.mp4")
		if e.Size != int64(len(validMP4(5000))) {
			t.Fatalf("moved size %d", e.Size)
		}
	})
}

func TestMkdirPThenWrite(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode Mode) {
		h := startWatcher(t, mode)
		writeFile(t, h.path("a/b/c/clip.mov"), validMP4(64)) // MkdirAll + write at once
		h.waitKind(Ready, "a/b/c/clip.mov")
		// a later file in the new folder arrives through its watch (or the poll)
		writeFile(t, h.path("a/b/c/second.mov"), validMP4(64))
		h.waitKind(Ready, "a/b/c/second.mov")
	})
}

func TestAtomicSaveReportsTargetOnly(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode Mode) {
		h := startWatcher(t, mode)
		tmp := h.path("edit.mp4.tmp")
		writeFile(t, tmp, validMP4(300))
		if err := os.Rename(tmp, h.path("edit.mp4")); err != nil {
			t.Fatal(err)
		}
		e := h.waitKind(Ready, "edit.mp4")
		h.quiesce(time.Now())
		for _, ev := range h.snapshot() {
			if ev.Kind != Health && ev.Rel != "edit.mp4" {
				t.Fatalf("unexpected event %+v", ev)
			}
		}
		// save again over the finished target: a new version is Ready once
		writeFile(t, tmp, validMP4(400))
		if err := os.Rename(tmp, h.path("edit.mp4")); err != nil {
			t.Fatal(err)
		}
		e2 := h.waitFor(func(x Event) bool { return x.Kind == Ready && x.Rel == "edit.mp4" && x.Size != e.Size }, "second version")
		if e2.Size != int64(len(validMP4(400))) {
			t.Fatalf("second version size %d", e2.Size)
		}
	})
}

func TestRenameOfFinishedFile(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode Mode) {
		h := startWatcher(t, mode)
		writeFile(t, h.path("first.webm"), []byte("webm data"))
		h.waitKind(Ready, "first.webm")
		if err := os.Rename(h.path("first.webm"), h.path("second.webm")); err != nil {
			t.Fatal(err)
		}
		e := h.waitKind(Ready, "second.webm")
		if e.Size != int64(len("webm data")) {
			t.Fatalf("size %d", e.Size)
		}
		v := h.waitKind(Vanished, "first.webm")
		if !strings.Contains(v.Reason, "after") {
			t.Fatalf("vanished reason %q should say after ready", v.Reason)
		}
	})
}

func TestDeleteBeforeReady(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode Mode) {
		h := startWatcher(t, mode, func(r *Root) { r.Settle = 2 * time.Second })
		writeFile(t, h.path("gone.avi"), []byte("avi"))
		h.waitCond(func() bool { return h.w.Pending() == 1 }, "file seen")
		if err := os.Remove(h.path("gone.avi")); err != nil {
			t.Fatal(err)
		}
		v := h.waitKind(Vanished, "gone.avi")
		if !strings.Contains(v.Reason, "before") {
			t.Fatalf("reason %q", v.Reason)
		}
		h.waitCond(func() bool { return h.w.Pending() == 0 }, "pending 0")
		if n := h.count(Ready, "gone.avi"); n != 0 {
			t.Fatalf("%d Ready for a deleted file", n)
		}
	})
}

func TestMP4WithoutMoovIsIncompleteUntilMoovAppended(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode Mode) {
		h := startWatcher(t, mode)
		p := h.path("nomoov.mp4")
		writeFile(t, p, noMoovMP4(1000))
		e := h.waitKind(Incomplete, "nomoov.mp4")
		if e.Reason != "mp4 has no moov box yet" {
			t.Fatalf("reason %q", e.Reason)
		}
		if h.count(Ready, "nomoov.mp4") != 0 || h.w.Pending() != 1 {
			t.Fatalf("no-moov file became ready or stopped settling (pending %d)", h.w.Pending())
		}
		f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(box("moov", []byte("metadata"))); err != nil {
			t.Fatal(err)
		}
		f.Close()
		r := h.waitKind(Ready, "nomoov.mp4")
		if r.Size != int64(len(noMoovMP4(1000))+16) {
			t.Fatalf("size %d", r.Size)
		}
		if n := h.count(Incomplete, "nomoov.mp4"); n != 1 {
			t.Fatalf("%d Incomplete events, want 1", n)
		}
	})
}

func TestNonTilingMP4NotReady(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode Mode) {
		h := startWatcher(t, mode)
		data := append(validMP4(10), box("mdat", make([]byte, 100))[:50]...) // last box claims 108 bytes, 50 present
		writeFile(t, h.path("cut.m4v"), data)
		e := h.waitKind(Incomplete, "cut.m4v")
		if !strings.Contains(e.Reason, "past end of file") {
			t.Fatalf("reason %q", e.Reason)
		}
		if h.count(Ready, "cut.m4v") != 0 {
			t.Fatal("non-tiling mp4 reported ready")
		}
	})
}

func TestZeroByteFileNeverReady(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode Mode) {
		h := startWatcher(t, mode)
		writeFile(t, h.path("empty.mp4"), nil)
		e := h.waitKind(Incomplete, "empty.mp4")
		if e.Reason != "empty file" {
			t.Fatalf("reason %q", e.Reason)
		}
		writeFile(t, h.path("control.mp4"), validMP4(1))
		h.waitKind(Ready, "control.mp4")
		// One blocked recheck here; TestSettleEmptyFileIsIncompleteNeverReady covers hours of them.
		h.noMore(isKindRel(Ready, "empty.mp4"), 2*testSettle)
		if n := h.count(Incomplete, "empty.mp4"); n != 1 {
			t.Fatalf("%d Incomplete events, want 1", n)
		}
	})
}

func TestIgnoredNamesNeverReported(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode Mode) {
		h := startWatcher(t, mode, func(r *Root) { r.Exclude = []string{"skip/**"} })
		for _, rel := range []string{
			"movie.mp4.part", ".DS_Store", ".hidden.mp4", "clip.tmp", "notes.txt", "x.crdownload",
			"._movie.mp4", "@eaDir/thumb.mp4", ".hiddendir/in.mp4", "~$lock.mp4", "own.mp4.mosaic-partial",
			"#recycle/old.mp4", "skip/user-excluded.mp4",
		} {
			writeFile(t, h.path(rel), validMP4(10))
		}
		writeFile(t, h.path("control.MP4"), validMP4(10))
		start := time.Now()
		h.waitKind(Ready, "control.MP4")
		h.quiesce(start)
		h.noMore(func(e Event) bool { return e.Kind != Health && e.Rel != "control.MP4" }, testSettle)
	})
}

func TestSymlinkLoopAndEscapes(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode Mode) {
		base := t.TempDir()
		root := filepath.Join(base, "in")
		outside := filepath.Join(base, "outside")
		writeFile(t, filepath.Join(outside, "secret.mp4"), validMP4(5))
		writeFile(t, filepath.Join(root, "loop", "real.mp4"), validMP4(5))
		symlink(t, "..", filepath.Join(root, "loop", "parent"))
		symlink(t, outside, filepath.Join(root, "escape"))
		symlink(t, filepath.Join(outside, "secret.mp4"), filepath.Join(root, "link.mp4"))
		h := startOn(t, root, outside, mode)
		start := time.Now()
		h.waitKind(Ready, "loop/real.mp4")
		// a symlink created while watching is skipped too
		symlink(t, outside, filepath.Join(root, "loop", "later"))
		h.quiesce(start)
		h.noMore(func(e Event) bool { return e.Kind != Health && e.Rel != "loop/real.mp4" }, testSettle)
	})
}

func TestRootRemovedDegradesWithoutVanished(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode Mode) {
		h := startWatcher(t, mode)
		for _, rel := range []string{"a.mp4", "sub/b.mp4"} {
			writeFile(t, h.path(rel), validMP4(20))
			h.waitKind(Ready, rel)
		}
		writeFile(t, h.path("settling.mkv"), []byte("x")) // not ready yet when the root goes
		if err := os.RemoveAll(h.root); err != nil {
			t.Fatal(err)
		}
		e := h.waitFor(func(e Event) bool { return e.Kind == Health && !e.Healthy }, "unhealthy")
		if e.Reason == "" {
			t.Fatal("no reason for degraded root")
		}
		if err := os.MkdirAll(h.root, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, h.path("after.mp4"), validMP4(30))
		events := h.snapshot()
		h.waitFor(func(e Event) bool { return e.Kind == Health && e.Healthy && len(events) > 0 }, "healthy again")
		h.waitKind(Ready, "after.mp4")
		// One vanish grace here; TestSettleVanishedOnlyAfterGraceWithTheRootPresent covers the
		// rule with chosen times.
		h.noMore(func(e Event) bool { return e.Kind == Vanished }, 2*testSettle)
	})
}

func TestOverflowTriggersRescan(t *testing.T) {
	t.Parallel()
	h := startWatcher(t, ModeEvents)
	writeFile(t, h.path("seen.mp4"), validMP4(1))
	h.waitKind(Ready, "seen.mp4")
	h.w.dropEvents.Store(true)
	writeFile(t, h.path("lost.mp4"), validMP4(2))
	h.waitCond(func() bool { return h.w.droppedEvents.Load() > 0 }, "events dropped")
	h.w.dropEvents.Store(false)
	if h.w.Pending() != 0 || h.count(Ready, "lost.mp4") != 0 {
		t.Fatal("file found although its events were dropped")
	}
	select { // inject the overflow the kernel would report
	case h.w.hints <- hint{root: h.w.roots[0], err: fsnotify.ErrEventOverflow}:
	case <-time.After(waitLong):
		t.Fatal("cannot inject overflow")
	}
	h.waitKind(Ready, "lost.mp4")
}

func TestUnicodeSpacesAndLongPaths(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode Mode) {
		h := startWatcher(t, mode)
		nfc := "caf\u00e9 cr\u00e8me.mp4"   // precomposed
		nfd := "cafe\u0301 cre\u0300me.mp4" // decomposed
		spaced := "my holiday  video (final).mov"
		long := strings.Repeat("long folder name ", 4) // 68 chars
		longRel := strings.Join([]string{long + "1", long + "2", long + "3", long + "4"}, "/") + "/" + strings.Repeat("x", 100) + ".mkv"
		if len(h.path(longRel)) <= 255 {
			t.Fatalf("long path only %d chars", len(h.path(longRel)))
		}
		for _, rel := range []string{nfc, nfd, spaced, longRel} {
			writeFile(t, h.path(rel), validMP4(3))
		}
		for _, rel := range []string{nfc, nfd, spaced, longRel} {
			e := h.waitKind(Ready, rel)
			if e.Path != h.path(rel) {
				t.Fatalf("path %q, want %q", e.Path, h.path(rel))
			}
		}
	})
}

func TestNonRecursiveRoot(t *testing.T) {
	t.Parallel()
	h := startWatcher(t, ModeEvents, func(r *Root) { r.Recursive = false })
	writeFile(t, h.path("sub/deep.mp4"), validMP4(1))
	writeFile(t, h.path("top.mp4"), validMP4(1))
	start := time.Now()
	h.waitKind(Ready, "top.mp4")
	h.quiesce(start)
	h.noMore(hasPrefixRel("sub/"), testSettle)
}

func TestRunStopsEverything(t *testing.T) {
	base := runtimeGoroutines()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "sub", "x.mp4"), validMP4(1))
	w, err := New(Options{Roots: []Root{
		{Path: dir, Recursive: true, Settle: 50 * time.Millisecond, Mode: ModeEvents},
		{Path: filepath.Join(dir, "sub"), Recursive: true, Settle: 50 * time.Millisecond, Mode: ModePoll, PollInterval: 20 * time.Millisecond},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	ready := 0
	for e := range w.Events() {
		if e.Kind == Ready {
			ready++
		}
		if ready == 2 {
			break
		}
	}
	cancel()
	for range w.Events() { // drain until closed
	}
	if err := <-done; err != context.Canceled {
		t.Fatalf("Run: %v", err)
	}
	if err := w.Run(context.Background()); err == nil {
		t.Fatal("second Run should fail")
	}
	goroutinesSettle(t, base)
}

func TestRootGivenAsSymlink(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode Mode) {
		base := t.TempDir()
		real := filepath.Join(base, "real")
		writeFile(t, filepath.Join(real, "before.mp4"), validMP4(1))
		link := filepath.Join(base, "link")
		symlink(t, real, link)
		h := startOn(t, link, base, mode)
		if e := h.waitKind(Ready, "before.mp4"); e.Path != filepath.Join(link, "before.mp4") {
			t.Fatalf("path %q", e.Path)
		}
		writeFile(t, filepath.Join(real, "sub", "after.mp4"), validMP4(2))
		h.waitKind(Ready, "sub/after.mp4")
	})
}

// Reported states of files that went away are forgotten after a while: with after_success
// move or delete every processed file vanishes, and the memory must not grow with them.
func TestPastReadyIsPruned(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	root, outer := filepath.Join(base, "in"), filepath.Join(base, "outside")
	os.MkdirAll(root, 0o755)
	os.MkdirAll(outer, 0o755)
	h := startTweaked(t, root, outer, ModePoll, func(w *Watcher) { w.pastReadyTTL = time.Second })
	var rels []string
	for i := range 5 {
		rel := fmt.Sprintf("f%d.mp4", i)
		rels = append(rels, rel)
		writeFile(t, h.path(rel), validMP4(10+i))
	}
	for _, rel := range rels {
		h.waitKind(Ready, rel)
	}
	for _, rel := range rels {
		if err := os.Remove(h.path(rel)); err != nil {
			t.Fatal(err)
		}
	}
	for _, rel := range rels {
		h.waitKind(Vanished, rel)
	}
	if n := h.w.pastReadySize.Load(); n == 0 {
		t.Fatal("the vanished files' reported states were not kept at all")
	}
	h.waitCond(func() bool { return h.w.pastReadySize.Load() == 0 }, "pastReady to be pruned")
}
