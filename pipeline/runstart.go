package pipeline

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// reconcileMargin widens the window in which a run started by a lost request is looked for,
// to absorb clock skew between this machine and Mosaic.
const reconcileMargin = 2 * time.Minute

// runStartTimeout bounds one run-start request; its outcome is reconciled when it runs out.
const runStartTimeout = 30 * time.Second

func (p *Pipeline) runCapacity() int {
	p.runsMu.Lock()
	defer p.runsMu.Unlock()
	return p.opts.Limits.ActiveRuns - p.activeRuns
}

func (p *Pipeline) addActiveRuns(d int) {
	p.runsMu.Lock()
	p.activeRuns = max(0, p.activeRuns+d)
	p.runsMu.Unlock()
}

// stepStartRun starts the folder's agent on the uploaded video, exactly once.
//
// Mosaic has no idempotency key, so a second POST bills a second run. Before the POST the job
// is durably marked "starting run"; if the POST's outcome is unknown (or the daemon died during
// it), the agent's runs since just before the attempt are listed and the run found is adopted.
// Run starts are serialized per agent, so at most one unadopted run can be ours.
func (p *Pipeline) stepStartRun(ctx context.Context, j *store.Job) error {
	f, err := p.folderOf(j)
	if err != nil {
		return err
	}
	if j.Step == store.StepFinalized && j.AgentID != f.AgentID {
		// The folder's agent changed (a reload) before this file's run started.
		p.log.Info("the folder's agent changed; this file runs the new one", "job", j.ID, "path", j.RelPath,
			"agent", f.AgentID, "was", j.AgentID)
		j.AgentID = f.AgentID
	}
	lock := p.agentLock(j.AgentID)
	lock.Lock()
	defer lock.Unlock()

	// Another worker may have settled this job while we waited for the agent's lock.
	fresh, err := p.st.Get(ctx, j.ID)
	if err != nil {
		return transient("reload job", err)
	}
	if fresh.Step != j.Step || fresh.Status != j.Status || fresh.RunID != j.RunID {
		owner, lease := j.Owner, j.LeaseUntil
		*j = *fresh
		j.Owner, j.LeaseUntil = owner, lease
		return nil
	}

	// Any job of this agent left in "starting run" (a crash or a lost response) is settled
	// first, so that the window of a new start cannot contain an unadopted run of ours.
	if p.startsUnsettled(j.AgentID) {
		if err := p.reconcilePending(ctx, j); err != nil {
			return err
		}
	}
	if j.Step == store.StepStartingRun {
		return p.reconcile(ctx, j)
	}

	// Never bill a run for a version of the file that no longer exists.
	if _, err := p.checkSourceForRun(f, j); err != nil {
		return err
	}

	startAt := p.now()
	if why := p.budget.take(j.Folder, startAt); why != "" {
		return wait(why)
	}
	p.addActiveRuns(1)
	j.Step = store.StepStartingRun
	j.RunStartAt = startAt
	if err := p.commitDurable(ctx, j, "starting the agent run"); err != nil {
		p.addActiveRuns(-1)
		return err // left at starting_run: reconciled, which releases the budget if no run exists
	}
	req := mosaic.RunRequest{
		VideoIDs:     []string{j.VideoID},
		UpdateParams: f.UpdateParams,
		IgnoreNodes:  f.IgnoreNodes,
		CallbackURL:  p.opts.CallbackURL,
	}
	// A run start that is under way finishes even if a shutdown begins (briefly): an answer now
	// spares a reconcile at the next start.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), runStartTimeout)
	runID, err := p.api.RunAgent(rctx, j.AgentID, req)
	cancel()
	if err == nil {
		return p.adopt(ctx, j, runID, "run started")
	}
	if mosaic.OutcomeUnknown(err) {
		if ctx.Err() != nil {
			return ctx.Err() // the next start reconciles it
		}
		p.log.Warn("the run start's outcome is unknown; looking for the run on Mosaic", "job", j.ID, "err", err)
		return p.reconcile(ctx, j)
	}
	// Known not started: back to finalized, and let the error decide when to try again.
	p.addActiveRuns(-1)
	p.budget.release(j.Folder, j.RunStartAt)
	p.wakeBudget()
	j.Step = store.StepFinalized
	j.RunStartAt = time.Time{}
	return err
}

// checkSourceForRun is checkSource for a file that is already uploaded: a vanished source is
// fine (the upload is complete), a changed one is not run.
func (p *Pipeline) checkSourceForRun(f *Folder, j *store.Job) (bool, error) {
	_, err := p.checkSource(j, p.sourcePath(f, j))
	if err != nil {
		if je, ok := err.(*jobError); ok && je.out == outSkip && je.msg == "the source file disappeared before it was uploaded" {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// startsUnsettled reports whether jobs of agentID may sit in "starting run" outside a start
// worker: after a restart (a crash may have left them) and after a start whose outcome could
// not be settled at once. Checking only then keeps the database query off the hot path.
func (p *Pipeline) startsUnsettled(agentID string) bool {
	p.agentMu.Lock()
	defer p.agentMu.Unlock()
	return !p.settledAgents[agentID]
}

func (p *Pipeline) markStartsUnsettled(agentID string) {
	p.agentMu.Lock()
	delete(p.settledAgents, agentID)
	p.agentMu.Unlock()
}

// reconcilePending settles other jobs of the same agent that are stuck in "starting run".
func (p *Pipeline) reconcilePending(ctx context.Context, current *store.Job) error {
	pending, err := p.st.OpenAtStep(ctx, store.StepStartingRun)
	if err != nil {
		return transient("list pending run starts", err)
	}
	settled := true
	defer func() {
		if settled {
			p.agentMu.Lock()
			p.settledAgents[current.AgentID] = true
			p.agentMu.Unlock()
		}
	}()
	for i := range pending {
		o := &pending[i]
		if o.ID == current.ID || o.AgentID != current.AgentID {
			continue
		}
		if p.byStep[store.StepStartingRun].ownsJob(o.ID) {
			settled = false // a start worker holds it and settles it after us
			continue
		}
		if o.Owner != "" && o.Owner != p.opts.Owner && o.LeaseUntil.After(p.now()) {
			settled = false
			continue // another daemon holds it; it reconciles it itself
		}
		if err := p.reconcile(ctx, o); err != nil {
			settled = false
			p.fail(ctx, o, err)
		}
	}
	if !settled {
		// A new start now could fall into the window of an unadopted run of ours.
		return deferUntil(p.now().Add(max(p.opts.ReconcileAfter/8, time.Second)), "waiting until an earlier run start of this agent is settled")
	}
	return nil
}

// reconcile finds the run a lost run-start created, by listing the agent's runs since just
// before the attempt. Exactly one unadopted candidate is adopted; none means the start never
// reached Mosaic and it is retried; several go to a person.
func (p *Pipeline) reconcile(ctx context.Context, j *store.Job) error {
	runs, err := p.api.ListRuns(ctx, mosaic.ListRunsOptions{
		AgentID: j.AgentID,
		From:    j.RunStartAt.Add(-reconcileMargin),
	})
	if err != nil {
		return err
	}
	var candidates []mosaic.Run
	for _, r := range runs {
		taken, err := p.st.RunIDTaken(ctx, r.ID)
		if err != nil {
			return transient("check run ownership", err)
		}
		if taken {
			continue
		}
		if ids := runVideoIDs(r); len(ids) > 0 && !slices.Contains(ids, j.VideoID) {
			continue // the list names its inputs and ours is not among them
		}
		candidates = append(candidates, r)
	}
	switch len(candidates) {
	case 1:
		return p.adopt(ctx, j, candidates[0].ID, "adopted run "+candidates[0].ID+" after an unknown run-start outcome")
	case 0:
		if wait := j.RunStartAt.Add(p.opts.ReconcileAfter); p.now().Before(wait) {
			// A gateway timeout may precede the run's creation: only a listing made well after
			// the attempt shows that no run exists.
			return deferUntil(wait, "no run listed yet for the lost start; looking again at "+wait.Format(time.RFC3339))
		}
		p.addActiveRuns(-1)
		p.budget.release(j.Folder, j.RunStartAt)
		p.wakeBudget()
		j.Step = store.StepFinalized
		j.RunStartAt = time.Time{}
		j.Attempts++
		if err := p.commit(ctx, j, "no run was created by the lost start; starting again"); err != nil {
			return err
		}
		return nil
	default:
		ids := make([]string, len(candidates))
		for i, r := range candidates {
			ids[i] = r.ID
		}
		return attention(fmt.Sprintf("cannot tell which of %d runs of agent %s started since %s belongs to this file (%v); check the Mosaic dashboard, then `mosaic-watch retry` to start a new run",
			len(candidates), j.AgentID, j.RunStartAt.Format(time.RFC3339), ids))
	}
}

func runVideoIDs(r mosaic.Run) []string {
	var ids []string
	for _, in := range r.Inputs {
		if in.VideoID != "" {
			ids = append(ids, in.VideoID)
		}
	}
	return ids
}

func (p *Pipeline) adopt(ctx context.Context, j *store.Job, runID, msg string) error {
	j.RunID = runID
	j.RunStatus = mosaic.StatusRunning
	j.Step = store.StepRunStarted
	j.Attempts = 0
	j.NextAttemptAt = p.now()
	p.log.Info("run started", "job", j.ID, "path", j.RelPath, "run", runID)
	return p.commit(ctx, j, msg)
}
