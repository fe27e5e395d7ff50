package pipeline_test

import (
	"os"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// retry reopens a skipped job: a file skipped while its share was away is not lost.
func TestRetryReopensASkippedJob(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.stop()
	src := video("came back")
	f := h.dropOnly("back.mp4", src)
	h.start(nil)
	hidden := f.Path + ".away"
	if err := os.Rename(f.Path, hidden); err != nil {
		t.Fatal(err)
	}
	if err := h.p.FileReady(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	j := h.waitClosed("back.mp4")
	if j.Status != store.StatusSkipped {
		t.Fatalf("got %s %q", j.Status, j.Note)
	}
	if err := os.Rename(hidden, f.Path); err != nil {
		t.Fatal(err)
	}
	what, err := pipeline.PrepareRetry(&j, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.st.Reopen(t.Context(), &j, "retry: "+what); err != nil {
		t.Fatal(err)
	}
	if j := h.waitClosed("back.mp4"); j.Status != store.StatusDone {
		t.Fatalf("after retry: %s %s %s", j.Status, j.LastError, j.Note)
	}
	if n := h.runsFor(src); n != 1 {
		t.Fatalf("%d runs", n)
	}
}
