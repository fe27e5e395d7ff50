//go:build unix

package pipeline_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// swapForLink renames the folder at path away and puts a symlink to target in its place, as
// anyone who can write to its parent folder can.
func swapForLink(t *testing.T, path, target string) (away string) {
	t.Helper()
	away = path + "-away"
	if err := os.Rename(path, away); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	return away
}

// swapBack undoes swapForLink.
func swapBack(t *testing.T, path, away string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(away, path); err != nil {
		t.Fatal(err)
	}
}

// The input folder itself (not a folder inside it) is replaced by a link to another user's
// folder while the daemon runs. The watcher follows a root that is a link, so it reports the
// files over there; the pipeline must not read or upload them: they are not in the input
// folder that was configured and checked at start.
func TestInputFolderSwappedForALinkIsNeverRead(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.drop("first.mov", video("before the swap")) // the places are prepared once this is done
	if j := h.waitClosed("first.mov"); j.Status != store.StatusDone {
		t.Fatalf("first file: %s %q", j.Status, j.LastError)
	}

	victimDir := filepath.Join(filepath.Dir(h.folder.Input), "victim")
	if err := os.MkdirAll(victimDir, 0o700); err != nil {
		t.Fatal(err)
	}
	secret := video("another user's private video")
	if err := os.WriteFile(filepath.Join(victimDir, "clip.mov"), secret, 0o600); err != nil {
		t.Fatal(err)
	}
	away := swapForLink(t, h.folder.Input, victimDir)
	f := h.fileOf("clip.mov") // what the watcher reports through the link
	if err := h.p.FileReady(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the input folder to be degraded or the job to close", func() bool {
		if _, ok := h.p.Degraded()[h.folder.Input]; ok {
			return true
		}
		jobs, _ := h.st.JobsAt(t.Context(), h.folder.Input, "clip.mov")
		return len(jobs) > 0 && !jobs[0].Status.Open()
	})
	if n := h.runsFor(secret); n != 0 || h.fake.Stats().StoragePosts != 1 {
		t.Fatalf("the file behind the swapped-in link was uploaded (%d run(s), %d upload(s) in all)",
			n, h.fake.Stats().StoragePosts)
	}
	if why := h.p.Degraded()[h.folder.Input]; !strings.Contains(why, "link") {
		t.Fatalf("degraded reason %q: want it to say the folder was replaced by a link", why)
	}

	// The folder put back: work resumes by itself; the job made for the other folder's file
	// finds no such file here and touches nothing.
	swapBack(t, h.folder.Input, away)
	waitUntil(t, "the folder to be back", func() bool { return len(h.p.Degraded()) == 0 })
	h.waitClosed("clip.mov")
	if n := h.runsFor(secret); n != 0 {
		t.Fatalf("the other user's file was uploaded after all (%d run(s))", n)
	}
	if got, err := os.ReadFile(filepath.Join(victimDir, "clip.mov")); err != nil || string(got) != string(secret) {
		t.Fatalf("the other user's file was touched (%v)", err)
	}
}

// The output folder is replaced by a link to somewhere else (here: another folder the daemon
// can write to) while a run is going: nothing is written there; once the folder is put back the
// outputs land in it.
func TestOutputFolderSwappedForALinkIsNeverWrittenThrough(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.drop("first.mov", video("before the swap"))
	if j := h.waitClosed("first.mov"); j.Status != store.StatusDone {
		t.Fatalf("first file: %s %q", j.Status, j.LastError)
	}
	elsewhere := filepath.Join(filepath.Dir(h.folder.Output), "elsewhere")
	if err := os.MkdirAll(elsewhere, 0o755); err != nil {
		t.Fatal(err)
	}
	away := swapForLink(t, h.folder.Output, elsewhere)
	src := video("after the swap")
	h.drop("clip.mov", src)
	waitUntil(t, "the folder to be degraded or the job to close", func() bool {
		if _, ok := h.p.Degraded()[h.folder.Input]; ok {
			return true
		}
		jobs, _ := h.st.JobsAt(t.Context(), h.folder.Input, "clip.mov")
		return len(jobs) > 0 && !jobs[0].Status.Open()
	})
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Fatalf("%d file(s) written through the swapped-in link, e.g. %s", len(entries), entries[0].Name())
	}
	swapBack(t, h.folder.Output, away)
	if j := h.waitClosed("clip.mov"); j.Status != store.StatusDone {
		t.Fatalf("after the folder came back: %s %q", j.Status, j.LastError)
	}
	h.checkOutputs(h.folder.AgentID, src, "clip.mp4")
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Fatalf("%d file(s) written through the swapped-in link", len(entries))
	}
}

// The move_to folder is replaced by a link while a run is going: the source is not moved
// through it; once the folder is put back, the source is moved there.
func TestMoveToSwappedForALinkIsNeverMovedInto(t *testing.T) {
	var moveTo string
	h := newHarness(t, harnessOpts{
		fake: func(o *mosaictest.Options) { o.ManualRuns = true },
		folder: func(f *pipeline.Folder) {
			moveTo = filepath.Join(filepath.Dir(f.Input), "done")
			f.AfterSuccess, f.AfterSuccessMoveTo = "move", moveTo
		},
	})
	src := video("move me")
	h.drop("clip.mov", src)
	j := h.waitJob("clip.mov", func(j store.Job) bool { return j.Step == store.StepRunStarted })
	elsewhere := filepath.Join(filepath.Dir(moveTo), "elsewhere")
	if err := os.MkdirAll(elsewhere, 0o755); err != nil {
		t.Fatal(err)
	}
	away := swapForLink(t, moveTo, elsewhere)
	if err := h.fake.FinishRun(j.RunID, mosaictest.OutcomeCompleted); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the folder to be degraded or the job to close", func() bool {
		if _, ok := h.p.Degraded()[h.folder.Input]; ok {
			return true
		}
		jobs, _ := h.st.JobsAt(t.Context(), h.folder.Input, "clip.mov")
		return len(jobs) > 0 && !jobs[0].Status.Open()
	})
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Fatalf("the source was moved through the swapped-in link into %s", elsewhere)
	}
	swapBack(t, moveTo, away)
	if j := h.waitClosed("clip.mov"); j.Status != store.StatusDone {
		t.Fatalf("after the folder came back: %s %q", j.Status, j.LastError)
	}
	if got, err := os.ReadFile(filepath.Join(moveTo, "clip.mov")); err != nil || !bytes.Equal(got, src) {
		t.Fatalf("the source is not in move_to (%v)", err)
	}
}
