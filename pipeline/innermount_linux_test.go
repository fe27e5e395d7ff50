package pipeline_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// A share mounted inside the input folder (one per camera, say) is unmounted during an upload.
// The file is away with its share, not gone: it is waited for, and completes with one run once
// the share is back, as for an unmounted input folder (issue 11, reproduction 3).
func TestInnerMountUnmountedDuringUploadCompletesAfterRemount(t *testing.T) {
	var cam string
	h := newHarness(t, harnessOpts{
		folder: func(f *pipeline.Folder) {
			cam = filepath.Join(f.Input, "cam")
			mountTmpfs(t, cam)
		},
		options: func(o *pipeline.Options) { o.Recheck = 50 * time.Millisecond },
	})
	h.fake.InjectFault(mosaictest.RouteStorage, mosaictest.Fault{Kind: mosaictest.FaultSlow, Delay: 500 * time.Millisecond, Count: 1})
	src := video("inner mount")
	f := h.drop("cam/clip.mov", src)
	waitUntil(t, "the upload to start", func() bool {
		for _, pr := range h.p.Progress() {
			if pr.Phase == "uploading" {
				return true
			}
		}
		return false
	})
	mustUnmount(t, cam) // lazily: the upload holds the file open
	j := h.waitJob("cam/clip.mov", func(j store.Job) bool {
		return !j.Status.Open() || historyHas(t, h.st, j.ID, "not mounted now")
	})
	if !j.Status.Open() {
		t.Fatalf("job closed as %s (%q) while the share holding its file was away", j.Status, j.Note)
	}

	mountTmpfs(t, cam)
	if err := os.WriteFile(f.Path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(f.Path, f.ModTime, f.ModTime); err != nil {
		t.Fatal(err)
	}
	j = h.waitClosed("cam/clip.mov")
	if j.Status != store.StatusDone {
		t.Fatalf("status %s: %s %s", j.Status, j.LastError, j.Note)
	}
	if n := h.runsFor(src); n != 1 {
		t.Fatalf("%d runs, want 1", n)
	}
	h.checkOutputs(h.folder.AgentID, src, "cam/clip.mp4")
}

// A file deleted from a share mounted inside the input folder (the share still there) is
// skipped as before: only a share that is away is waited for.
func TestFileDeletedFromAnInnerMountIsSkipped(t *testing.T) {
	var cam string
	h := newHarness(t, harnessOpts{
		folder: func(f *pipeline.Folder) {
			cam = filepath.Join(f.Input, "cam")
			mountTmpfs(t, cam)
		},
	})
	h.stop()
	f := h.dropOnly("cam/gone.mov", video("deleted"))
	if err := os.Remove(f.Path); err != nil {
		t.Fatal(err)
	}
	h.start(nil)
	if err := h.p.FileReady(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	if j := h.waitClosed("cam/gone.mov"); j.Status != store.StatusSkipped {
		t.Fatalf("status %s %q, want skipped", j.Status, j.Note)
	}
}

// The input share itself was remounted (a new device) and a pending file was deleted meanwhile:
// that is not a share inside the input gone away, and the job is skipped, not left waiting.
func TestFileDeletedAcrossAnInputRemountIsSkipped(t *testing.T) {
	var in string
	h := newHarness(t, harnessOpts{folder: func(f *pipeline.Folder) {
		in = f.Input
		mountTmpfs(t, in)
	}})
	h.stop()
	if err := os.MkdirAll(filepath.Join(in, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := h.dropOnly("sub/gone.mov", video("deleted across a remount"))
	mustUnmount(t, in)
	mountTmpfs(t, filepath.Join(filepath.Dir(in), "decoy")) // takes the freed device number
	mountTmpfs(t, in)
	if err := os.MkdirAll(filepath.Join(in, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "sub", "other.mov"), video("still here"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.start(nil)
	if err := h.p.FileReady(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	if j := h.waitClosed("sub/gone.mov"); j.Status != store.StatusSkipped {
		t.Fatalf("status %s %q, want skipped", j.Status, j.Note)
	}
}
