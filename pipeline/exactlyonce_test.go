package pipeline_test

import (
	"context"
	"fmt"
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

// The reproductions of issue 10, against the strict fake: run listings do not name their
// input videos, so a lost run start can only be matched by time, by who started a run and
// by which runs are already ours.

// onFirstRunStart calls f once, when the first run start reaches the fake.
func onFirstRunStart(f func(agentID string)) func(*mosaictest.Options) {
	var once sync.Once
	return func(o *mosaictest.Options) {
		o.RunStartHook = func(agentID string) { once.Do(func() { f(agentID) }) }
	}
}

func (h *harness) sourceExists(rel string) bool {
	_, err := os.Stat(filepath.Join(h.folder.Input, filepath.FromSlash(rel)))
	return err == nil
}

// Reproduction 1: a colleague's dashboard run of the same agent, plus one lost start that
// created no run. It must not be adopted: our file gets its own output and only then is its
// source deleted.
func TestColleaguesDashboardRunIsNeverAdopted(t *testing.T) {
	var fake *mosaictest.Server
	var colleague string
	h := newHarness(t, harnessOpts{
		fake: onFirstRunStart(func(agentID string) {
			colleague, _ = fake.StartForeignRun(agentID, mosaictest.ForeignRun{TriggeredBy: map[string]any{"type": "dashboard", "user": "colleague"}})
		}),
		folder: func(f *pipeline.Folder) { f.AfterSuccess = "delete" },
	})
	fake = h.fake
	h.fake.InjectFault(mosaictest.RouteRunAgent, mosaictest.Fault{Kind: mosaictest.FaultLoseRequest, Count: 1})
	src := video("ours, not the colleague's")
	h.drop("ours.mov", src)
	j := h.waitClosed("ours.mov")
	if j.Status != store.StatusDone || j.RunID == colleague {
		t.Fatalf("status %s (%s), run %s (colleague's: %s)", j.Status, j.LastError, j.RunID, colleague)
	}
	h.checkOutputs(h.folder.AgentID, src, "ours.mp4")
	if n := h.runsFor(src); n != 1 {
		t.Fatalf("%d runs of our file, want 1", n)
	}
}

// Reproduction 2 and the clock acceptance: Mosaic's clock minutes away from ours, with lost
// answers (a run created, its answer lost) and lost requests (no run created).
func TestClockOffsetsNeverBillTwice(t *testing.T) {
	for _, offset := range []time.Duration{-10 * time.Minute, -3 * time.Minute, 3 * time.Minute, 10 * time.Minute} {
		t.Run(offset.String(), func(t *testing.T) {
			h := newHarness(t, harnessOpts{fake: func(o *mosaictest.Options) { o.ClockOffset = offset }})
			h.fake.InjectFault(mosaictest.RouteRunAgent, mosaictest.Fault{Kind: mosaictest.FaultLoseResponse, Count: 1})
			h.fake.InjectFault(mosaictest.RouteRunAgent, mosaictest.Fault{Kind: mosaictest.FaultLoseRequest, Count: 1})
			srcs := map[string][]byte{"a.mp4": video("clock a " + offset.String()), "b.mp4": video("clock b " + offset.String())}
			for rel, src := range srcs {
				h.drop(rel, src)
			}
			for rel, src := range srcs {
				if j := h.waitClosed(rel); j.Status != store.StatusDone {
					t.Fatalf("%s: %s %s", rel, j.Status, j.LastError)
				}
				if n := h.runsFor(src); n != 1 {
					t.Fatalf("%s: %d runs billed, want 1", rel, n)
				}
				h.checkOutputs(h.folder.AgentID, src, strings.TrimSuffix(rel, ".mp4")+".mp4")
			}
		})
	}
}

// Reproduction 3: while one start of an agent waits to learn whether it created a run, the
// agent's other files are started and finished.
func TestOneUnknownStartDoesNotStallTheAgent(t *testing.T) {
	h := newHarness(t, harnessOpts{options: func(o *pipeline.Options) { o.ReconcileAfter = time.Minute }})
	h.fake.InjectFault(mosaictest.RouteRunAgent, mosaictest.Fault{Kind: mosaictest.FaultLoseRequest, Count: 1})
	h.drop("first.mp4", video("first, lost"))
	first := h.waitJob("first.mp4", func(j store.Job) bool {
		return j.Step == store.StepStartingRun && h.fake.Stats().Requests["POST run_agent lost_request"] == 1
	})
	others := map[string][]byte{"second.mp4": video("second"), "third.mp4": video("third")}
	for rel, src := range others {
		h.drop(rel, src)
	}
	for rel, src := range others {
		if j := h.waitClosed(rel); j.Status != store.StatusDone || h.runsFor(src) != 1 {
			t.Fatalf("%s: %s %s, %d runs", rel, j.Status, j.LastError, h.runsFor(src))
		}
	}
	// The lost start is still waiting for reconcile_after: nothing was re-POSTed early.
	if got, _ := h.st.Get(context.Background(), first.ID); got.Step != store.StepStartingRun || !got.Status.Open() {
		t.Fatalf("the lost start was settled early: %s %s %s", got.Step, got.Status, got.LastError)
	}
	if n := h.fake.Stats().Requests["POST run_agent 200"]; n != 2 {
		t.Fatalf("%d answered run starts, want 2", n)
	}
}

// Reproduction 4: retrying a failed run resumes it instead of billing a new one.
func TestRetryResumesAFailedRun(t *testing.T) {
	h := newHarness(t, harnessOpts{agents: []mosaictest.AgentSpec{{Outcome: mosaictest.OutcomeFailed}}})
	src := video("resume me")
	h.drop("r.mp4", src)
	j := h.waitClosed("r.mp4")
	if j.Status != store.StatusFailed || j.RunID == "" {
		t.Fatalf("status %s run %q", j.Status, j.RunID)
	}
	firstRun := j.RunID
	what, err := pipeline.PrepareRetry(&j, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(what, "resum") {
		t.Errorf("retry says %q; want it to say it resumes the run", what)
	}
	if err := h.st.Reopen(context.Background(), &j, "retry"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the resume", func() bool { return h.fake.Stats().Resumes == 1 })
	j = h.waitClosed("r.mp4")
	if n := h.runsFor(src); n != 1 || j.RunID != firstRun {
		t.Fatalf("%d runs, run %s (first %s): retry must resume, not bill a new run", n, j.RunID, firstRun)
	}
}

// jumpClock runs at the speed of real time, and jumps when a test says so. The fake, the
// client and the pipeline share it.
type jumpClock struct {
	mu   sync.Mutex
	skip time.Duration
}

func (c *jumpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.skip)
}

func (c *jumpClock) Jump(d time.Duration) {
	c.mu.Lock()
	c.skip += d
	c.mu.Unlock()
}

// A run that appears 20 s after its start was answered 502/504 is adopted, not started again.
// The clocks jump the 20 s; reconcile_after is the default.
func TestLateRunIsAdoptedNotStartedAgain(t *testing.T) {
	for _, status := range []int{502, 504} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			clock := &jumpClock{}
			h := newHarness(t, harnessOpts{now: clock.Now, options: func(o *pipeline.Options) { o.ReconcileAfter = 2 * time.Minute }})
			h.fake.InjectFault(mosaictest.RouteRunAgent, mosaictest.Fault{Kind: mosaictest.FaultLateRun, Status: status, Delay: 20 * time.Second, Count: 1})
			src := video(fmt.Sprint("late ", status))
			h.drop("late.mp4", src)
			h.waitJob("late.mp4", func(j store.Job) bool { return j.RunStatus == pipeline.RunStartLost })
			if h.fake.Stats().LateRunsPending != 1 {
				t.Fatal("the late run is not pending")
			}
			clock.Jump(20 * time.Second)
			j := h.waitClosed("late.mp4")
			if j.Status != store.StatusDone {
				t.Fatalf("status %s: %s", j.Status, j.LastError)
			}
			req := h.fake.Stats().Requests
			if n := h.runsFor(src); n != 1 || req["POST run_agent 200"] != 0 || req[fmt.Sprintf("POST run_agent %d", status)] != 1 {
				t.Fatalf("%d runs, requests %v: the late run must be adopted, not started again", n, req)
			}
			h.checkOutputs(h.folder.AgentID, src, "late.mp4")
		})
	}
}

// Another client's API run of the same agent, started 90 s before ours, is outside the window.
func TestOtherClientsBackDatedRunIsOutsideTheWindow(t *testing.T) {
	var fake *mosaictest.Server
	var other string
	h := newHarness(t, harnessOpts{
		fake: onFirstRunStart(func(agentID string) {
			other, _ = fake.StartForeignRun(agentID, mosaictest.ForeignRun{BackDate: 90 * time.Second})
		}),
		folder: func(f *pipeline.Folder) { f.AfterSuccess = "delete" },
	})
	fake = h.fake
	h.fake.InjectFault(mosaictest.RouteRunAgent, mosaictest.Fault{Kind: mosaictest.FaultLoseRequest, Count: 1})
	src := video("ours, 90 s after theirs")
	h.drop("ours.mov", src)
	j := h.waitClosed("ours.mov")
	if j.Status != store.StatusDone || j.RunID == other || h.runsFor(src) != 1 {
		t.Fatalf("status %s (%s), run %s (other: %s), %d runs", j.Status, j.LastError, j.RunID, other, h.runsFor(src))
	}
	h.checkOutputs(h.folder.AgentID, src, "ours.mp4")
}

// Another client's API run stamped together with ours: which one is ours cannot be told, so a
// person decides, the source stays and nothing is written under our output name. The agent is
// shared from then on: a later lost answer, even with a single candidate, also waits for a
// person, and a retry needs an explicit new run.
func TestAmbiguousRunsGoToAPersonAndMarkTheAgentShared(t *testing.T) {
	var fake *mosaictest.Server
	h := newHarness(t, harnessOpts{
		fake: onFirstRunStart(func(agentID string) {
			fake.StartForeignRun(agentID, mosaictest.ForeignRun{}) //nolint:errcheck
		}),
		folder: func(f *pipeline.Folder) { f.AfterSuccess = "delete" },
	})
	fake = h.fake
	h.fake.InjectFault(mosaictest.RouteRunAgent, mosaictest.Fault{Kind: mosaictest.FaultLoseResponse, Count: 2})
	h.drop("first.mov", video("first"))
	j := h.waitClosed("first.mov")
	if j.Status != store.StatusAttention || strings.Count(j.RunMessage, ",") != 1 || !strings.Contains(j.LastError, "left alone") {
		t.Fatalf("first: %s %q %q; want attention naming both runs", j.Status, j.LastError, j.RunMessage)
	}
	shared, err := pipeline.LoadSharedAgent(context.Background(), h.st, h.folder.AgentID)
	if err != nil || shared == nil {
		t.Fatalf("the agent is not recorded as shared: %v", err)
	}
	h.drop("second.mov", video("second"))
	j2 := h.waitClosed("second.mov")
	if j2.Status != store.StatusAttention || !strings.Contains(j2.LastError, "also used by another client") || j2.RunMessage == "" {
		t.Fatalf("second: %s %q", j2.Status, j2.LastError)
	}
	for _, rel := range []string{"first.mov", "second.mov"} {
		if !h.sourceExists(rel) {
			t.Fatalf("%s: the source was touched on an inference", rel)
		}
	}
	if entries, _ := os.ReadDir(h.folder.Output); len(entries) != 0 {
		t.Fatalf("something was written under our output names: %v", entries)
	}
	// A plain retry would bill on a guess: it is refused; a new run is started on request.
	if _, err := pipeline.PrepareRetry(&j2, time.Now()); err == nil || !strings.Contains(err.Error(), "new run") {
		t.Fatalf("retry of an ambiguous start: %v; want a refusal that names the new-run option", err)
	}
	if _, err := pipeline.PrepareNewRun(&j2, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := h.st.Reopen(context.Background(), &j2, "retry --new-run"); err != nil {
		t.Fatal(err)
	}
	if j := h.waitClosed("second.mov"); j.Status != store.StatusDone {
		t.Fatalf("after a new run: %s %s", j.Status, j.LastError)
	}
}

// Many lost answers and lost requests on one agent, with starts in parallel: every file
// finishes with exactly one run.
func TestManyUnknownStartsOnOneAgent(t *testing.T) {
	h := newHarness(t, harnessOpts{options: func(o *pipeline.Options) {
		o.Limits.Starts, o.Limits.Uploads = 3, 3
		o.ReconcileAfter = 2 * time.Second
	}})
	h.fake.InjectFault(mosaictest.RouteRunAgent, mosaictest.Fault{Kind: mosaictest.FaultLoseResponse, Probability: 0.3})
	h.fake.InjectFault(mosaictest.RouteRunAgent, mosaictest.Fault{Kind: mosaictest.FaultLoseRequest, Probability: 0.1})
	h.fake.InjectFault(mosaictest.RouteRunAgent, mosaictest.Fault{Kind: mosaictest.FaultStatus, Status: 503, Probability: 0.1})
	h.fake.InjectFault(mosaictest.RouteListRuns, mosaictest.Fault{Kind: mosaictest.FaultStatus, Status: 500, Probability: 0.2})
	srcs := map[string][]byte{}
	for i := range 12 {
		rel := fmt.Sprintf("f%02d.mp4", i)
		srcs[rel] = video("many " + rel)
		h.drop(rel, srcs[rel])
	}
	for rel, src := range srcs {
		if j := h.waitClosed(rel); j.Status != store.StatusDone {
			t.Fatalf("%s: %s %s", rel, j.Status, j.LastError)
		}
		if n := h.runsFor(src); n != 1 {
			t.Fatalf("%s: %d runs", rel, n)
		}
	}
	if s, _ := pipeline.LoadSharedAgent(context.Background(), h.st, h.folder.AgentID); s != nil {
		t.Fatalf("our own runs made the agent look shared: %+v", s)
	}
}
