package pipeline_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

func TestCancelRunThenRetryResumesIt(t *testing.T) {
	h := newHarness(t, harnessOpts{fake: func(o *mosaictest.Options) { o.ManualRuns = true }})
	src := video("cancel me")
	h.drop("c.mp4", src)
	j := h.waitJob("c.mp4", func(j store.Job) bool { return j.Step == store.StepRunStarted })
	// A copy read before the daemon's last write: the record is made on a fresh read.
	stale := j
	stale.UpdatedAt = stale.UpdatedAt.Add(-time.Hour)
	what, err := pipeline.CancelRun(context.Background(), h.st, h.client, &stale, time.Now())
	if err != nil || !strings.Contains(what, "cancelled run") {
		t.Fatalf("cancel: %q %v", what, err)
	}
	j = h.waitClosed("c.mp4")
	if j.Status != store.StatusFailed || !strings.Contains(j.LastError, "cancel") || h.fake.Stats().Cancels != 1 {
		t.Fatalf("after cancel: %s %q, %d cancels", j.Status, j.LastError, h.fake.Stats().Cancels)
	}
	if _, err := pipeline.CancelRun(context.Background(), h.st, h.client, &j, time.Now()); err == nil {
		t.Fatal("a closed job was cancelled again")
	}
	if _, err := pipeline.PrepareRetry(&j, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := h.st.Reopen(context.Background(), &j, "retry"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the resume", func() bool { return h.fake.Stats().Resumes == 1 })
	if err := h.fake.FinishRun(j.RunID, mosaictest.OutcomeCompleted); err != nil {
		t.Fatal(err)
	}
	if j := h.waitClosed("c.mp4"); j.Status != store.StatusDone || h.runsFor(src) != 1 {
		t.Fatalf("after the resume: %s %s, %d runs", j.Status, j.LastError, h.runsFor(src))
	}
	h.checkOutputs(h.folder.AgentID, src, "c.mp4")
}

func TestSourceChangeDuringTheRun(t *testing.T) {
	for _, c := range []struct {
		policy, change string
	}{{"cancel", "deleted"}, {"cancel", "replaced"}, {"finish", "deleted"}} {
		t.Run(c.policy+"/"+c.change, func(t *testing.T) {
			h := newHarness(t, harnessOpts{
				fake:   func(o *mosaictest.Options) { o.ManualRuns = true },
				folder: func(f *pipeline.Folder) { f.OnSourceChange = c.policy },
			})
			src := video("changes " + c.policy + c.change)
			h.drop("s.mp4", src)
			j := h.waitJob("s.mp4", func(j store.Job) bool { return j.Step == store.StepRunStarted })
			path := filepath.Join(h.folder.Input, "s.mp4")
			if c.change == "deleted" {
				os.Remove(path)
			} else {
				os.WriteFile(path, video("the new version"), 0o644)
			}
			if c.policy == "finish" {
				h.fake.FinishRun(j.RunID, mosaictest.OutcomeCompleted)
				if got := h.waitClosed("s.mp4"); got.Status != store.StatusDone || h.fake.Stats().Cancels != 0 {
					t.Fatalf("finish: %s %s, %d cancels", got.Status, got.LastError, h.fake.Stats().Cancels)
				}
				h.checkOutputs(h.folder.AgentID, src, "s.mp4")
				return
			}
			got, _ := h.st.Get(context.Background(), j.ID)
			waitUntil(t, "the cancel", func() bool {
				got, _ = h.st.Get(context.Background(), j.ID)
				return !got.Status.Open()
			})
			if got.Status != store.StatusSkipped || !strings.Contains(got.Note, c.change) || h.fake.Stats().Cancels != 1 {
				t.Fatalf("cancel: %s %q, %d cancels", got.Status, got.Note, h.fake.Stats().Cancels)
			}
			if entries, _ := os.ReadDir(h.folder.Output); len(entries) != 0 {
				t.Fatalf("outputs written for a cancelled run: %v", entries)
			}
		})
	}
}
