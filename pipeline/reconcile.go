package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// Finding the run of a start whose answer was lost.
//
// Mosaic's run listings do not say which video a run is for, so a run is matched by time, by
// who started it and by elimination:
//   - runs started by a trigger or from the dashboard (triggered_by set) are never ours;
//   - runs some job already holds are not candidates;
//   - each unsettled start of the agent has a window, in Mosaic's clock, in which its run was
//     stamped: from just before the request to just after its answer (the prompt window), and,
//     when Mosaic may have gone on after a gateway gave up, until reconcile_after later;
//   - a run in one start's prompt window is that start's; otherwise it is the earliest start's
//     whose late window holds it. Starts of an agent are sent one at a time and a start waits
//     until the previous unanswered start's window has closed, so prompt windows never overlap.
//
// A run no unsettled start can explain was started by another API client: the agent is
// shared from then on (recorded in the store), and a shared agent's lost starts are never
// settled by inference but left to a person with the candidate run ids.

// startWindow is when the run of one unsettled start can have been stamped, in Mosaic's clock.
type startWindow struct {
	jobID     int64
	from, to  time.Time // the prompt window; to is zero while the request is in flight
	lateUntil time.Time // Mosaic may create the run later, until then (zero: it may not)
}

func (w startWindow) open() bool { return w.to.IsZero() }

func (w startWindow) prompt(at time.Time) bool {
	return !at.Before(w.from) && (w.open() || !at.After(w.to))
}

func (w startWindow) late(at time.Time) bool {
	return !w.open() && at.After(w.to) && !at.After(w.lateUntil)
}

// claim is who may have started one listed run.
type claim struct {
	run       mosaic.Run
	best      int64   // the start it is attributed to; 0 when none or contested
	contested bool    // the attribution waits for a start in flight, or prompt windows overlap
	claimants []int64 // every start that could explain it
}

// attribute decides, for each run, which unsettled start it belongs to (see above).
func attribute(runs []mosaic.Run, starts []startWindow) []claim {
	out := make([]claim, 0, len(runs))
	for _, r := range runs {
		c := claim{run: r}
		var prompt, late []startWindow
		for _, w := range starts {
			switch {
			case r.StartedAt.IsZero(): // cannot be placed in time: anyone's
				late = append(late, w)
			case w.prompt(r.StartedAt):
				prompt = append(prompt, w)
			case w.late(r.StartedAt):
				late = append(late, w)
			}
		}
		for _, w := range append(slices.Clone(prompt), late...) {
			c.claimants = append(c.claimants, w.jobID)
		}
		switch {
		case r.StartedAt.IsZero() && len(late) > 0:
			c.contested = true
		case len(prompt) > 1:
			c.contested = true
		case len(prompt) == 1 && prompt[0].open() && len(late) > 0:
			c.contested = true // the start in flight may answer with another run
		case len(prompt) == 1:
			c.best = prompt[0].jobID
		case len(late) > 0:
			first := slices.MinFunc(late, func(a, b startWindow) int { return a.from.Compare(b.from) })
			c.best = first.jobID
		}
		out = append(out, c)
	}
	return out
}

// windowOf is job o's start window as recorded (see crashedWindow for a start never answered).
func (p *Pipeline) windowOf(o *store.Job) startWindow {
	w := startWindow{jobID: o.ID, from: o.RunWindowFrom, to: o.RunWindowTo}
	switch o.RunStatus {
	case RunStartLost:
		w.lateUntil = w.to.Add(p.opts.ReconcileAfter)
	case RunStartError:
		// A run Mosaic made before its error answer exists now; the short late window only
		// catches one stamped just outside the prompt window.
		w.lateUntil = w.to.Add(p.errorSettle())
	default: // unanswered
		if o.Owner != "" && o.LeaseUntil.After(p.now()) {
			w.to = time.Time{} // in flight
		} else {
			w = p.crashedWindow(o)
		}
	}
	return w
}

// crashedWindow bounds the window of a start whose daemon died during the request: the request
// lasted at most runStartTimeout, and not beyond the death of the daemon that sent it, which was
// before this one started; Mosaic may have gone on with it.
func (p *Pipeline) crashedWindow(o *store.Job) startWindow {
	from, to := o.RunWindowFrom, o.RunWindowFrom.Add(runStartTimeout+2*p.windowMargin())
	if from.IsZero() {
		// Left by a version that recorded only this machine's time, when Mosaic's was unknown.
		at := p.api.ServerTime(o.RunStartAt)
		from, to = at.Add(-reconcileUnknownClock), at.Add(runStartTimeout+reconcileUnknownClock)
	}
	// The daemon that sent it died before this one started, unless the store is shared: then
	// it may have been another host's, alive until a moment ago.
	if o.RunStartAt.Before(p.started) && !p.opts.Shared {
		if dead := p.api.ServerTime(p.started).Add(p.windowMargin()); dead.Before(to) {
			to = dead
		}
	}
	return startWindow{jobID: o.ID, from: from, to: to, lateUntil: to.Add(p.opts.ReconcileAfter)}
}

// unsettledStarts lists the windows of the agent's starts whose run is not known: open jobs at
// "starting run" and, with stuck, those a person must look at (their runs may exist too).
func (p *Pipeline) unsettledStarts(ctx context.Context, agentID string, stuck bool) ([]startWindow, error) {
	jobs, err := p.st.OpenAtStep(ctx, store.StepStartingRun)
	if err != nil {
		return nil, transient("list unsettled run starts", err)
	}
	if stuck {
		more, err := p.st.List(ctx, store.Filter{Status: []store.Status{store.StatusAttention, store.StatusFailed}, Limit: 1 << 30})
		if err != nil {
			return nil, transient("list unsettled run starts", err)
		}
		jobs = append(jobs, more...)
	}
	var out []startWindow
	for i := range jobs {
		o := &jobs[i]
		if o.AgentID == agentID && o.Step == store.StepStartingRun && o.RunID == "" {
			out = append(out, p.windowOf(o))
		}
	}
	return out, nil
}

// reconcile looks for the run a start with an unknown outcome created, and adopts it, waits, or
// concludes that none was created and starts again; what it cannot tell goes to a person.
func (p *Pipeline) reconcile(ctx context.Context, j *store.Job) error {
	if err := p.ensureClock(ctx); err != nil {
		return err
	}
	if j.RunStatus != RunStartLost && j.RunStatus != RunStartError {
		// The daemon died during the request (or an older version left the job here).
		w := p.crashedWindow(j)
		j.RunWindowFrom, j.RunWindowTo, j.RunStatus = w.from, w.to, RunStartLost
		if err := p.commit(ctx, j, "the run start was interrupted; looking for its run on Mosaic"); err != nil {
			return err
		}
	}
	a := p.agent(j.AgentID)
	a.decide.Lock()
	defer a.decide.Unlock()
	unlock, err := p.lockAgent(ctx, "decide", j.AgentID)
	if err != nil {
		return err
	}
	defer unlock()

	mine := p.windowOf(j)
	listTo := mine.to
	if mine.lateUntil.After(listTo) {
		listTo = mine.lateUntil
	}
	// The list filters take whole seconds: widen by one so truncation loses nothing.
	runs, err := p.api.ListRuns(ctx, mosaic.ListRunsOptions{AgentID: j.AgentID, From: mine.from.Add(-time.Second), To: listTo.Add(time.Second)})
	if err != nil {
		return err
	}
	// Read the starts after the listing and ownership after the starts: a start that recorded
	// its run meanwhile is seen as unsettled or as the run's owner, never as neither.
	starts, err := p.unsettledStarts(ctx, j.AgentID, true)
	if err != nil {
		return err
	}
	var candidates []mosaic.Run
	for _, r := range runs {
		if r.StartedByTrigger() {
			continue // a dashboard or trigger run is never one we started
		}
		if !r.StartedAt.IsZero() && (r.StartedAt.Before(mine.from) || r.StartedAt.After(listTo)) {
			continue
		}
		taken, err := p.st.RunIDTaken(ctx, r.ID)
		if err != nil {
			return transient("check run ownership", err)
		}
		if !taken {
			candidates = append(candidates, r)
		}
	}
	return p.decide(ctx, j, mine, attribute(candidates, starts))
}

// decide acts on the attribution of the candidate runs for job j.
func (p *Pipeline) decide(ctx context.Context, j *store.Job, mine startWindow, claims []claim) error {
	var ours, disputed []claim
	var orphans []string
	extra := 0 // runs attributed to j beyond one that no other start could explain either
	for _, c := range claims {
		switch {
		case c.contested && slices.Contains(c.claimants, j.ID):
			disputed = append(disputed, c)
		case c.best == j.ID:
			ours = append(ours, c)
			if len(c.claimants) == 1 {
				extra++
			}
		case len(c.claimants) == 0:
			orphans = append(orphans, c.run.ID)
		}
	}
	if extra > 1 {
		for _, c := range ours {
			if len(c.claimants) == 1 {
				orphans = append(orphans, c.run.ID)
			}
		}
	}
	shared, err := p.agentShared(ctx, j.AgentID)
	if err != nil {
		return err
	}
	if len(orphans) > 0 {
		if err := p.markShared(ctx, j.AgentID, orphans); err != nil {
			return err
		}
		shared = true
	}
	j.Attempts = 0 // the listing worked: only consecutive failures count
	now := p.api.ServerTime(p.now())
	deadline := mine.to.Add(p.settleAfter(j))
	candidateIDs := func(cs ...[]claim) []string {
		var ids []string
		for _, l := range cs {
			for _, c := range l {
				ids = append(ids, c.run.ID)
			}
		}
		return ids
	}
	switch {
	case shared && len(ours) > 0:
		return p.ambiguous(j, candidateIDs(ours, disputed), fmt.Sprintf("agent %s is also used by another client (its runs are listed but not started by mosaic-watch), so a run found by time may not be this file's", j.AgentID))
	case len(ours) > 1:
		return p.ambiguous(j, candidateIDs(ours, disputed), fmt.Sprintf("%d runs of agent %s were stamped while this file's run was started", len(ours), j.AgentID))
	case len(ours) == 1 && len(disputed) == 0:
		return p.adopt(ctx, j, ours[0].run.ID, "adopted run "+ours[0].run.ID+" after an unknown run-start outcome")
	case len(ours)+len(disputed) > 0:
		if now.After(deadline.Add(p.opts.ReconcileAfter)) {
			return p.ambiguous(j, candidateIDs(ours, disputed), "another start of the same agent could have made the same run")
		}
		return deferUntil(p.now().Add(p.opts.PollInterval), "a run was listed that another start of this agent may have made; looking again")
	case now.Before(deadline):
		// Mosaic may create a run after its gateway gave up: only a listing made well after
		// the attempt shows that none exists. Meanwhile a late run is adopted when it appears.
		return deferUntil(p.now().Add(p.opts.PollInterval), "no run listed yet for the unanswered start; looking again until "+
			deadline.Format(time.RFC3339)+" (Mosaic's clock)")
	}
	p.addActiveRuns(-1)
	p.budget.release(j.Folder, j.RunStartAt)
	p.wakeBudget()
	j.Step = store.StepFinalized
	j.RunStartAt, j.RunWindowFrom, j.RunWindowTo = time.Time{}, time.Time{}, time.Time{}
	j.RunStatus = ""
	return p.commit(ctx, j, "no run was created by the unanswered start; starting again")
}

// settleAfter is how long after an unanswered start an empty listing means "no run": the full
// reconcile_after when Mosaic may still be working on the request, a short settle when Mosaic
// answered with its own error (a run it made would exist already).
func (p *Pipeline) settleAfter(j *store.Job) time.Duration {
	if j.RunStatus == RunStartError {
		return p.errorSettle()
	}
	return p.opts.ReconcileAfter
}

// errorSettle is how long a listing may lag behind a run Mosaic made before answering 5xx.
func (p *Pipeline) errorSettle() time.Duration {
	return min(p.opts.ReconcileAfter, errorSettleTime)
}

const errorSettleTime = 5 * time.Second

// ambiguous sends the job to a person with the candidate runs; the source is left alone.
func (p *Pipeline) ambiguous(j *store.Job, runIDs []string, why string) error {
	j.RunMessage = "candidate runs: " + strings.Join(runIDs, ", ")
	return attention(fmt.Sprintf("could not tell whether Mosaic started a run for this file: %s (candidate runs: %s). "+
		"The source is left alone. Check the runs on the Mosaic dashboard; `mosaic-watch retry --new-run` starts a new run (it bills one)",
		why, strings.Join(runIDs, ", ")))
}
