package pipeline_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// Reproduction 5: a copy of a processed file, at another path, gets that job's outputs at
// its own mirror path without a run; a copy of a file still in flight waits for it.
func TestCopiesGetTheOutputsWithoutARun(t *testing.T) {
	h := newHarness(t, harnessOpts{fake: func(o *mosaictest.Options) { o.ManualRuns = true }})
	src := video("copied around")
	h.drop("orig.mov", src)
	orig := h.waitJob("orig.mov", func(j store.Job) bool { return j.Step == store.StepRunStarted })
	h.drop("copy while running.mov", src)
	waiting := h.waitJob("copy while running.mov", func(j store.Job) bool { return j.ContentHash != "" })
	if err := h.fake.FinishRun(orig.RunID, mosaictest.OutcomeCompleted); err != nil {
		t.Fatal(err)
	}
	if j := h.waitClosed("orig.mov"); j.Status != store.StatusDone {
		t.Fatalf("orig: %s %s", j.Status, j.LastError)
	}
	h.drop("later/copy.mov", src)
	for _, rel := range []string{"copy while running.mov", "later/copy.mov"} {
		j := h.waitClosed(rel)
		if j.Status != store.StatusDone || !strings.Contains(j.Note, "outputs from job") {
			t.Fatalf("%s: %s note %q err %q", rel, j.Status, j.Note, j.LastError)
		}
	}
	for _, name := range []string{"orig.mp4", "copy while running.mp4", "later/copy.mp4"} {
		h.checkOutputs(h.folder.AgentID, src, name)
	}
	if n := h.runsFor(src); n != 1 {
		t.Fatalf("%d runs for one content", n)
	}
	if hist, _ := h.st.History(context.Background(), waiting.ID); len(hist) > 0 && strings.Contains(hist[len(hist)-1].Message, "active") {
		t.Fatalf("the copy's last word still says the original is active: %q", hist[len(hist)-1].Message)
	}
	a, _ := os.ReadFile(filepath.Join(h.folder.Output, "orig.mp4"))
	b, _ := os.ReadFile(filepath.Join(h.folder.Output, "later", "copy.mp4"))
	if !bytes.Equal(a, b) {
		t.Fatal("the copy's output differs from the original's")
	}
}

func TestCopyIsAHardLinkWhereTheFileSystemAllows(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	src := video("linked")
	h.drop("a.mov", src)
	h.waitClosed("a.mov")
	h.drop("b.mov", src)
	if j := h.waitClosed("b.mov"); j.Status != store.StatusDone {
		t.Fatalf("copy: %s %s", j.Status, j.LastError)
	}
	a, errA := os.Stat(filepath.Join(h.folder.Output, "a.mp4"))
	b, errB := os.Stat(filepath.Join(h.folder.Output, "b.mp4"))
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if !os.SameFile(a, b) {
		t.Skip("no hard links here: the output was copied (content checked above)") // e.g. some Windows file systems
	}
}

// The original's output was edited or removed: the copy downloads the original run's output
// again (no run), and the edited file is left as it is.
func TestCopyOfAChangedOutputIsDownloaded(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	src := video("edited later")
	h.drop("a.mov", src)
	h.waitClosed("a.mov")
	edited := filepath.Join(h.folder.Output, "a.mp4")
	if err := os.WriteFile(edited, []byte("an editor changed this"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.drop("b.mov", src)
	if j := h.waitClosed("b.mov"); j.Status != store.StatusDone || !strings.Contains(j.Note, "outputs from job") {
		t.Fatalf("copy: %s %q %s", j.Status, j.Note, j.LastError)
	}
	h.checkOutputs(h.folder.AgentID, src, "b.mp4")
	if got, _ := os.ReadFile(edited); string(got) != "an editor changed this" {
		t.Fatal("the edited output was touched")
	}
	if n := h.runsFor(src); n != 1 {
		t.Fatalf("%d runs", n)
	}
}

// Same content, but the folder now runs the agent with other parameters: that is a new run.
func TestCopyWithOtherRunParametersRunsAgain(t *testing.T) {
	h := newHarness(t, harnessOpts{agents: []mosaictest.AgentSpec{{Nodes: []string{"in-node", "edit-node"}}}})
	src := video("params")
	h.drop("a.mov", src)
	h.waitClosed("a.mov")
	h.stop()
	h.folder.UpdateParams = map[string]map[string]any{"edit-node": {"style": "punchy"}}
	h.start(nil)
	h.drop("b.mov", src)
	j := h.waitClosed("b.mov")
	if j.Status != store.StatusDone || strings.Contains(j.Note, "outputs from job") {
		t.Fatalf("b.mov: %s %q %s", j.Status, j.Note, j.LastError)
	}
	if n := h.runsFor(src); n != 2 {
		t.Fatalf("%d runs, want a second one for the new parameters", n)
	}
}

// A copy waits for an original that is still running; when the original fails, the copy is
// processed on its own.
func TestCopyOfAFailedOriginalRunsOnItsOwn(t *testing.T) {
	h := newHarness(t, harnessOpts{fake: func(o *mosaictest.Options) { o.ManualRuns = true }})
	src := video("fails first")
	h.drop("a.mov", src)
	orig := h.waitJob("a.mov", func(j store.Job) bool { return j.Step == store.StepRunStarted })
	h.drop("b.mov", src)
	h.waitJob("b.mov", func(j store.Job) bool { return j.CopyOf == orig.ID })
	if err := h.fake.FinishRun(orig.RunID, mosaictest.OutcomeFailed); err != nil {
		t.Fatal(err)
	}
	b := h.waitJob("b.mov", func(j store.Job) bool { return j.Step == store.StepRunStarted })
	if b.CopyOf != 0 || b.RunID == orig.RunID {
		t.Fatalf("b.mov: copy of %d, run %s", b.CopyOf, b.RunID)
	}
	if err := h.fake.FinishRun(b.RunID, mosaictest.OutcomeCompleted); err != nil {
		t.Fatal(err)
	}
	if j := h.waitClosed("b.mov"); j.Status != store.StatusDone {
		t.Fatalf("b.mov: %s %s", j.Status, j.LastError)
	}
	h.checkOutputs(h.folder.AgentID, src, "b.mp4")
}

// An editor replaces an output with a file of the same size (a re-encode, a trimmed version
// padded to size, or anything a hostile user puts there): a copy of its source must still get
// what Mosaic rendered, not the replacement.
func TestCopyOfAReplacedSameSizeOutputIsDownloaded(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	src := video("replaced, same size")
	h.drop("a.mov", src)
	if j := h.waitClosed("a.mov"); j.Status != store.StatusDone {
		t.Fatalf("original: %s %q", j.Status, j.LastError)
	}
	out := filepath.Join(h.folder.Output, "a.mp4")
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	forged := bytes.Repeat([]byte("x"), int(fi.Size()))
	tmp := filepath.Join(h.folder.Output, ".a.tmp")
	if err := os.WriteFile(tmp, forged, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	h.drop("b.mov", src)
	if j := h.waitClosed("b.mov"); j.Status != store.StatusDone {
		t.Fatalf("copy: %s %q %s", j.Status, j.Note, j.LastError)
	}
	h.checkOutputs(h.folder.AgentID, src, "b.mp4")
	if got, _ := os.ReadFile(out); !bytes.Equal(got, forged) {
		t.Fatal("the replaced output was touched")
	}
}
