package pipeline

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// pollConcurrency bounds the GETs one poll round makes at once.
const pollConcurrency = 4

// pollLoop is the one loop that follows every active run: no goroutine per job sleeps.
func (p *Pipeline) pollLoop(ctx context.Context) {
	t := time.NewTicker(p.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.pollWake:
		}
		if !p.gate.open() {
			continue
		}
		p.pollOnce(ctx)
	}
}

func (p *Pipeline) pollOnce(ctx context.Context) {
	jobs, err := p.st.OpenAtStep(ctx, store.StepRunStarted)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Error("list active runs", "err", err)
		}
		return
	}
	if p.opts.Shared {
		// Every host follows every run it can claim this round; the claim (an owner in the
		// store) makes sure one host at a time polls and records a run.
		defer p.releasePolled(ctx)
		if jobs, err = p.claimRuns(ctx, len(jobs)); err != nil {
			if ctx.Err() == nil {
				p.log.Error("claim active runs", "err", err)
			}
			return
		}
	}
	// Resynchronize the in-memory count of active runs: the runs being followed plus the starts
	// not settled yet (their runs may be running).
	if starting, err := p.st.OpenAtStep(ctx, store.StepStartingRun); err == nil {
		p.runsMu.Lock()
		p.activeRuns = len(jobs) + len(starting)
		p.runsMu.Unlock()
	}
	now := p.now()
	sem := make(chan struct{}, pollConcurrency)
	var wg sync.WaitGroup
	for i := range jobs {
		j := &jobs[i]
		if j.NextAttemptAt.After(now) {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := p.pollJob(ctx, j); err != nil {
				p.fail(ctx, j, err)
			}
		}()
	}
	wg.Wait()
}

// claimRuns claims the due runs no other host is polling, for one round. active is how many
// runs are being followed in all (the count of active runs is resynchronized from it).
func (p *Pipeline) claimRuns(ctx context.Context, active int) ([]store.Job, error) {
	jobs, err := p.st.Claim(ctx, p.opts.Owner, []store.Step{store.StepRunStarted}, p.now(), p.opts.Lease, max(active, 1))
	if err != nil {
		return nil, err
	}
	p.pollMu.Lock()
	for _, j := range jobs {
		p.polling[j.ID] = struct{}{}
	}
	p.pollMu.Unlock()
	return jobs, nil
}

// releasePolled hands back the runs of this round that are still claimed (a commit hands its
// job back itself), so that any host can poll them next, e.g. the one a webhook reaches.
func (p *Pipeline) releasePolled(ctx context.Context) {
	ids := p.polledIDs()
	p.pollMu.Lock()
	clear(p.polling)
	p.pollMu.Unlock()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := p.st.Release(rctx, p.opts.Owner, ids); err != nil {
		p.log.Warn("hand back polled runs", "runs", len(ids), "err", err)
	}
}

func (p *Pipeline) polledIDs() []int64 {
	p.pollMu.Lock()
	defer p.pollMu.Unlock()
	ids := make([]int64, 0, len(p.polling))
	for id := range p.polling {
		ids = append(ids, id)
	}
	return ids
}

// pollJob fetches one run's status and, at a terminal status, records the result.
func (p *Pipeline) pollJob(ctx context.Context, j *store.Job) error {
	if j.RunStatus == RunResumeRequested {
		// The next poll follows the resumed run: asked at once, Mosaic might still report the
		// status it had before the resume.
		return p.resume(ctx, j)
	}
	if f, ok := p.folder(j.Folder); ok && f.OnSourceChange == SourceChangeCancel {
		if why := p.sourceGone(f, j); why != "" {
			if done, err := p.cancelForSource(ctx, j, why); done || err != nil {
				return err
			}
		}
	}
	run, err := p.api.GetRun(ctx, j.RunID)
	if mosaic.IsNotFound(err) {
		j.RunStatus = RunNotFound
		return attention(fmt.Sprintf("Mosaic does not know run %s any more; `mosaic-watch retry` starts a new run", j.RunID))
	}
	if err != nil {
		return err
	}
	msg := runSummary(run)
	if !run.Terminal() {
		if run.NeedsCredits {
			p.addActiveRuns(-1)
			return p.needsCredits(ctx, j, run)
		}
		if j.RunStatus == RunCancelRequested {
			msg = "cancel requested; " + msg
		}
		if msg != j.RunMessage || j.Attempts > 0 || j.Status != store.StatusActive {
			// A good answer ends a streak of poll errors: only consecutive failures count.
			j.RunMessage, j.Attempts, j.Status = msg, 0, store.StatusActive
			return p.commit(ctx, j, "run progress: "+msg)
		}
		return nil
	}
	p.addActiveRuns(-1)
	p.opts.Observer.RunEnded(p.folderName(j), run.Status, p.now().Sub(j.RunStartAt))
	cancelRequested := run.Status == mosaic.StatusCancelled && p.cancelledOnRequest(ctx, j)
	j.RunStatus = run.Status
	j.RunMessage = msg
	j.Attempts = 0
	switch {
	case run.NeedsCredits:
		return p.needsCredits(ctx, j, run)
	case run.Status == mosaic.StatusFailed || run.Status == mosaic.StatusCancelled:
		j.Status = store.StatusFailed
		j.LastError = fmt.Sprintf("the Mosaic run %s %s: %s (not resumed automatically, since that can cost credits; `mosaic-watch retry` resumes it)",
			j.RunID, run.Status, runErrorText(run))
		if cancelRequested {
			j.LastError = fmt.Sprintf("the Mosaic run %s was cancelled on request (`mosaic-watch cancel`); `mosaic-watch retry` resumes it", j.RunID)
		}
		p.log.Error("run failed", "job", j.ID, "path", j.RelPath, "run", j.RunID, "status", run.Status, "reason", runErrorText(run))
		p.handleFailedSource(ctx, j)
		return p.commit(ctx, j, j.LastError)
	}
	outs, missing := mergeOutputs(j.Outputs, run.Outputs)
	j.Outputs = outs
	switch {
	case len(outs) == 0:
		// Nothing to write: never treat the source as processed (it might be deleted).
		return attention(fmt.Sprintf("the Mosaic run %s ended %s without any downloadable output (%s)", j.RunID, run.Status, runErrorText(run)))
	case run.Status == mosaic.StatusCompleted && missing > 0:
		return attention(fmt.Sprintf("the Mosaic run %s completed but %d of its %d outputs have no download URL", j.RunID, missing, len(run.Outputs)))
	case run.Status == mosaic.StatusPartialComplete:
		j.LastError = "partial_complete: " + runErrorText(run)
	}
	j.Step = store.StepRunFinished
	p.log.Info("run finished", "job", j.ID, "path", j.RelPath, "run", j.RunID, "status", run.Status, "outputs", len(run.Outputs))
	return p.commit(ctx, j, fmt.Sprintf("run %s with %d output(s)", run.Status, len(run.Outputs)))
}

// Run statuses of our own, recorded in Job.RunStatus beside Mosaic's: the run cannot go on and
// a retry must start a new one.
const (
	RunNeedsCredits    = "needs_credits"    // blocked for credits
	RunNotFound        = "not_found"        // Mosaic no longer knows the run
	RunResumeRequested = "resume_requested" // a person asked to go on (credits added, or a retry)
	RunCancelRequested = "cancel_requested" // a person cancelled the run (CancelRun)
)

// resume asks Mosaic to go on with a failed, cancelled or credit-blocked run: the nodes it
// finished are kept, where a new run would bill them again.
func (p *Pipeline) resume(ctx context.Context, j *store.Job) error {
	err := p.api.ResumeRun(ctx, j.RunID)
	if mosaic.IsNotFound(err) {
		j.RunStatus = RunNotFound
		return attention(fmt.Sprintf("Mosaic does not know run %s any more; `mosaic-watch retry` starts a new run", j.RunID))
	}
	if err != nil && !mosaic.IsConflict(err) { // a conflict: the run is not failed or cancelled any more
		return err
	}
	j.RunStatus = mosaic.StatusRunning
	j.Status, j.Attempts = store.StatusActive, 0
	j.NextAttemptAt = p.now().Add(p.opts.PollInterval)
	return p.commit(ctx, j, "asked Mosaic to resume run "+j.RunID)
}

func (p *Pipeline) needsCredits(ctx context.Context, j *store.Job, run *mosaic.Run) error {
	j.RunStatus = RunNeedsCredits
	j.Status = store.StatusAttention
	j.LastError = fmt.Sprintf("the Mosaic account is out of credits (run %s: %s); add credits, then `mosaic-watch retry` this file",
		j.RunID, runErrorText(run))
	p.log.Error("run blocked: out of credits", "job", j.ID, "path", j.RelPath, "run", j.RunID)
	return p.commit(ctx, j, j.LastError)
}

// mergeOutputs records the run's downloadable outputs in order, keeping what earlier attempts
// already planned and wrote (so a refreshed URL list does not lose written files). Outputs are
// matched by render id, else by their position in Mosaic's list (Index). It also returns how
// many outputs had no download URL.
func mergeOutputs(have []store.Output, outs []mosaic.Output) (merged []store.Output, missing int) {
	merged = make([]store.Output, 0, len(outs))
	for i, o := range outs {
		if o.VideoURL == "" {
			missing++ // a failed output of a partial run
			continue
		}
		so := store.Output{Index: i, RenderID: o.ID, URL: o.VideoURL}
		for _, h := range have {
			if (h.RenderID != "" && h.RenderID == o.ID) || (h.RenderID == "" && o.ID == "" && h.Index == i) {
				so.Path, so.Size, so.Written, so.TempID = h.Path, h.Size, h.Written, h.TempID
			}
		}
		merged = append(merged, so)
	}
	return merged, missing
}

func runSummary(r *mosaic.Run) string {
	c := r.NodeStatusCounts
	total := 0
	for _, n := range c {
		total += n
	}
	s := r.Status
	if total > 0 {
		s += fmt.Sprintf(" (%d/%d nodes done)", c["completed"], total)
	}
	if r.StatusMessage != "" {
		s += ": " + r.StatusMessage
	}
	return mosaic.RedactText(s)
}

func runErrorText(r *mosaic.Run) string {
	var parts []string
	if r.StatusMessage != "" {
		parts = append(parts, r.StatusMessage)
	}
	for _, e := range r.Errors {
		node := e.OriginalNodeID
		if node == "" {
			node = "run"
		}
		parts = append(parts, node+": "+strings.Join(e.Messages, "; "))
	}
	if len(parts) == 0 {
		return "no reason given"
	}
	return mosaic.RedactText(strings.Join(parts, "; "))
}
