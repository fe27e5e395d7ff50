package pipeline_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// otherFolder is a second folder next to h's, with its own input and output.
func (h *harness) otherFolder(name string) pipeline.Folder {
	h.t.Helper()
	base := filepath.Dir(h.folder.Input)
	f := pipeline.Folder{Name: name, Input: filepath.Join(base, name+"-in"), Output: filepath.Join(base, name+"-out"),
		AgentID: h.folder.AgentID}
	for _, d := range []string{f.Input, f.Output} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			h.t.Fatal(err)
		}
	}
	return f
}

// waitEnded waits until the newest job at rel has ended (not open, not waiting).
func (h *harness) waitEnded(rel string) store.Job {
	h.t.Helper()
	return h.waitJob(rel, func(j store.Job) bool { return !j.Status.Open() && j.Status != store.StatusWaiting })
}

func TestRemovedFolderFinishesStartedRunsAndHoldsTheRest(t *testing.T) {
	h := newHarness(t, harnessOpts{fake: func(o *mosaictest.Options) { o.ManualRuns = true }})
	ctx := context.Background()
	src := video("running when removed")
	h.drop("running.mp4", src)
	running := h.waitJob("running.mp4", func(j store.Job) bool { return j.Step == store.StepRunStarted })

	other := h.otherFolder("other")
	if err := h.p.SetFolders(ctx, []pipeline.Folder{other}); err != nil {
		t.Fatal(err)
	}
	// The removed folder takes no new files...
	late := h.dropOnly("late.mp4", video("late"))
	if err := h.p.FileReady(ctx, late); err != nil {
		t.Fatalf("a file of a removed folder must be left alone, not fail: %v", err)
	}
	if jobs, _ := h.st.JobsAt(ctx, h.folder.Input, "late.mp4"); len(jobs) != 0 {
		t.Fatalf("a removed folder took a new file: %+v", jobs)
	}
	// ...a job of it that has not started a run waits...
	queued := h.dropOnly("queued.mp4", video("queued"))
	if _, _, err := h.st.AddJob(ctx, store.NewJob{Folder: queued.Folder, RelPath: queued.Rel, Size: queued.Size,
		ModTime: queued.ModTime, AgentID: h.folder.AgentID}, time.Now()); err != nil {
		t.Fatal(err)
	}
	j := h.waitJob("queued.mp4", func(j store.Job) bool { return j.Status == store.StatusWaiting })
	if j.LastError != pipeline.WaitFolderRemoved || j.Step != store.StepFound {
		t.Fatalf("queued job of a removed folder: %s at %s: %q", j.Status, j.Step, j.LastError)
	}
	// ...and the billed run is followed to its outputs.
	if err := h.fake.FinishRun(running.RunID, mosaictest.OutcomeCompleted); err != nil {
		t.Fatal(err)
	}
	if j := h.waitClosed("running.mp4"); j.Status != store.StatusDone {
		t.Fatalf("run of a removed folder: %s (%s)", j.Status, j.LastError)
	}
	h.checkOutputs(h.folder.AgentID, src, "running.mp4")

	// The folder comes back: its waiting job resumes.
	if err := h.p.SetFolders(ctx, []pipeline.Folder{other, h.folder}); err != nil {
		t.Fatal(err)
	}
	j = h.waitJob("queued.mp4", func(j store.Job) bool { return j.Step == store.StepRunStarted })
	if err := h.fake.FinishRun(j.RunID, mosaictest.OutcomeCompleted); err != nil {
		t.Fatal(err)
	}
	if j := h.waitClosed("queued.mp4"); j.Status != store.StatusDone {
		t.Fatalf("resumed job: %s (%s)", j.Status, j.LastError)
	}
}

func TestDailyRunLimitHoldsStartsUntilTheWindowFrees(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := newHarness(t, harnessOpts{options: func(o *pipeline.Options) { o.MaxRunsPerDay = 3; o.Now = clock }})
	srcs := map[string][]byte{}
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		srcs[name] = video("budget " + name)
		h.drop(name+".mp4", srcs[name])
	}
	var waiting []store.Job
	waitUntil(t, "3 runs done and 2 waiting", func() bool {
		done := 0
		waiting = waiting[:0]
		for name := range srcs {
			jobs, _ := h.st.JobsAt(context.Background(), h.folder.Input, name+".mp4")
			if len(jobs) == 1 && jobs[0].Status == store.StatusDone {
				done++
			}
			if len(jobs) == 1 && jobs[0].Status == store.StatusWaiting {
				waiting = append(waiting, jobs[0])
			}
		}
		return done == 3 && len(waiting) == 2
	})
	for _, j := range waiting {
		if !strings.HasPrefix(j.LastError, pipeline.WaitDailyLimit) || !strings.Contains(j.LastError, "3 runs") ||
			j.Step != store.StepFinalized {
			t.Fatalf("waiting job: %s at %s: %q", j.Status, j.Step, j.LastError)
		}
	}
	global, _ := h.p.RunBudgets()
	if !global.Reached() || global.Used != 3 || global.Next.IsZero() {
		t.Fatalf("budget = %+v", global)
	}
	if st := h.fake.Stats(); st.RunsCreated != 3 {
		t.Fatalf("%d runs created, want 3", st.RunsCreated)
	}
	// A day later the window is free: the two waiting files run.
	mu.Lock()
	now = now.Add(pipeline.BudgetWindow + time.Minute)
	mu.Unlock()
	h.p.SetMaxRunsPerDay(3) // wakes the limit's loop instead of waiting for its timer
	for _, j := range waiting {
		if got := h.waitEnded(j.RelPath); got.Status != store.StatusDone {
			t.Fatalf("%s after the window freed: %s (%s)", j.RelPath, got.Status, got.LastError)
		}
	}
	if st := h.fake.Stats(); st.RunsCreated != 5 {
		t.Fatalf("%d runs created, want 5", st.RunsCreated)
	}
}

func TestFolderAgentChangeAppliesToRunsNotStarted(t *testing.T) {
	h := newHarness(t, harnessOpts{
		agents: []mosaictest.AgentSpec{{Name: "old"}, {Name: "new"}},
		folder: func(f *pipeline.Folder) { f.MaxRunsPerDay = 1 },
	})
	ctx := context.Background()
	first, second := video("first"), video("second")
	h.drop("first.mp4", first)
	h.waitClosed("first.mp4")
	h.drop("second.mp4", second)
	j := h.waitJob("second.mp4", func(j store.Job) bool { return j.Status == store.StatusWaiting })
	if !strings.Contains(j.LastError, "of this folder") {
		t.Fatalf("folder limit reason: %q", j.LastError)
	}
	changed := h.folder
	changed.AgentID, changed.MaxRunsPerDay = h.fake.AgentIDs()[1], 2
	if err := h.p.SetFolders(ctx, []pipeline.Folder{changed}); err != nil {
		t.Fatal(err)
	}
	if got := h.waitEnded("second.mp4"); got.Status != store.StatusDone || got.AgentID != changed.AgentID {
		t.Fatalf("second: %s with agent %s (%s)", got.Status, got.AgentID, got.LastError)
	}
	stats := h.fake.Stats().RunsByContent
	if stats[mosaictest.RunKey{ContentSHA256: sha(second), AgentID: changed.AgentID}] != 1 ||
		stats[mosaictest.RunKey{ContentSHA256: sha(second), AgentID: h.folder.AgentID}] != 0 ||
		stats[mosaictest.RunKey{ContentSHA256: sha(first), AgentID: h.folder.AgentID}] != 1 {
		t.Fatalf("runs by content and agent: %v", stats)
	}
}

func TestHeldFileWaitsUntilResumed(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	src := video("held")
	f := h.dropOnly("held.mp4", src)
	f.Hold = pipeline.WaitApproval + ": 51 of 120 videos already in the folder"
	if err := h.p.FileReady(ctx, f); err != nil {
		t.Fatal(err)
	}
	j := h.waitJob("held.mp4", func(j store.Job) bool { return j.Status == store.StatusWaiting })
	if j.LastError != f.Hold {
		t.Fatalf("held job reason %q", j.LastError)
	}
	if n, err := pipeline.ResumeWaiting(ctx, h.st, h.folder.Input, pipeline.WaitDailyLimit, 0, time.Now(), "x"); err != nil || n != 0 {
		t.Fatalf("resume by another reason: %d, %v", n, err)
	}
	n, err := pipeline.ResumeWaiting(ctx, h.st, h.folder.Input, pipeline.WaitApproval, 0, time.Now(), "approved")
	if err != nil || n != 1 {
		t.Fatalf("ResumeWaiting = %d, %v", n, err)
	}
	if got := h.waitEnded("held.mp4"); got.Status != store.StatusDone || h.runsFor(src) != 1 {
		t.Fatalf("approved job: %s, %d runs", got.Status, h.runsFor(src))
	}
}
