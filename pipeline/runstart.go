package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// runStartTimeout bounds one run-start request; its outcome is reconciled when it runs out.
const runStartTimeout = 30 * time.Second

// Our run statuses for a start whose answer never came (the job stays at "starting run").
// RunStatus "" at that step means the request is in flight, or the daemon died during it.
const (
	// RunStartLost: no answer (timeout, dropped connection) or the gateway gave up (502, 504).
	// Mosaic may still be working on the request and create the run later.
	RunStartLost = "start_lost"
	// RunStartError: Mosaic itself answered with a 5xx. If it made a run, the run exists now.
	RunStartError = "start_error"
)

// agentState is what the pipeline keeps in memory per agent.
type agentState struct {
	// post lets one run start of the agent be in flight at a time, so that the windows in
	// which the runs of two starts can be stamped never overlap.
	post sync.Mutex
	// decide lets one reconciliation of the agent decide (and adopt) at a time.
	decide sync.Mutex

	mu           sync.Mutex
	sharedLoaded bool
	shared       *SharedAgent
}

func (p *Pipeline) agent(agentID string) *agentState {
	p.agentMu.Lock()
	defer p.agentMu.Unlock()
	a, ok := p.agents[agentID]
	if !ok {
		a = &agentState{}
		p.agents[agentID] = a
	}
	return a
}

// lockAgent takes the store's lock of (what, agentID): held by one holder among every daemon
// sharing the store, so that run starts (and reconciliations) of an agent are serialized
// across hosts as the agent's mutexes serialize them in this process.
func (p *Pipeline) lockAgent(ctx context.Context, what, agentID string) (func(), error) {
	unlock, err := p.st.LockAgent(ctx, what+":"+agentID)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, transient("wait for the agent's "+what+" lock", err)
	}
	return unlock, nil
}

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
// is durably marked "starting run" with the moment of the attempt in Mosaic's clock. If the
// POST's outcome is unknown (or the daemon died during it), the run it may have created is
// found by reconcile, by time and by elimination: runs listings do not say which video a run
// is for.
func (p *Pipeline) stepStartRun(ctx context.Context, j *store.Job) error {
	if j.Step == store.StepStartingRun {
		return p.reconcile(ctx, j)
	}
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
	// A folder that is away takes no new runs: their outputs could not be written. (A start
	// already under way is still settled above: that only reads Mosaic.)
	if err := p.folderReady(f); err != nil {
		return err
	}
	// Never bill a run for a version of the file that no longer exists.
	if _, err := p.checkSourceForRun(f, j); err != nil {
		return err
	}
	unknown, err := p.postRun(ctx, f, j)
	if err != nil || !unknown {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err() // the next start reconciles it
	}
	return p.reconcile(ctx, j)
}

// postRun sends the run start. It returns unknown=true when the outcome is unknown and the
// job waits at "starting run" to be reconciled; an answered start is recorded here.
func (p *Pipeline) postRun(ctx context.Context, f *Folder, j *store.Job) (unknown bool, err error) {
	a := p.agent(j.AgentID)
	a.post.Lock()
	defer a.post.Unlock()
	// Across every daemon sharing the store (other hosts on one PostgreSQL database), too.
	unlock, err := p.lockAgent(ctx, "post", j.AgentID)
	if err != nil {
		return false, err
	}
	defer unlock()

	// Another worker may have settled this job while we waited for the agent.
	fresh, err := p.st.Get(ctx, j.ID)
	if err != nil {
		return false, transient("reload job", err)
	}
	if fresh.Step != j.Step || fresh.Status != j.Status || fresh.RunID != j.RunID {
		owner, lease := j.Owner, j.LeaseUntil
		*j = *fresh
		j.Owner, j.LeaseUntil = owner, lease
		return false, nil
	}
	if err := p.ensureClock(ctx); err != nil {
		return false, err
	}
	for {
		wait, err := p.earlierWindowsClose(ctx, j)
		if err != nil || wait == 0 {
			if err != nil {
				return false, err
			}
			break
		}
		if wait > maxInlineWait {
			return false, deferUntil(p.now().Add(min(wait, p.opts.PollInterval)), "waiting until an unanswered start of this agent can no longer be confused with this one")
		}
		// A second or two: wait here, holding the agent, rather than going round the queue.
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		case <-t.C:
		}
	}

	unlockBudget, err := p.syncBudget(ctx)
	if err != nil {
		return false, err
	}
	defer unlockBudget()
	margin := p.windowMargin()
	startAt := p.now()
	// The request must leave within runStartTimeout of this moment, however long the mark
	// below takes or the process is frozen (SIGSTOP, a suspended VM) before the POST: another
	// host reconciling the start assumes it (crashedWindow), and after that window concludes
	// that no run exists and starts one itself.
	sendBy := time.Now().Add(runStartTimeout)
	if why := p.budget.take(j.Folder, startAt); why != "" {
		return false, hold(why)
	}
	p.addActiveRuns(1)
	j.Step = store.StepStartingRun
	j.RunStartAt = startAt
	j.RunWindowFrom = p.api.ServerTime(j.RunStartAt).Add(-margin)
	j.RunWindowTo = time.Time{}
	j.RunStatus, j.RunMessage = "", ""
	j.RunParams = runParams(f)
	if err := p.commitDurable(ctx, j, "starting the agent run"); err != nil {
		p.addActiveRuns(-1)
		return false, err
	}
	unlockBudget() // the start is recorded: other hosts count it from the store
	req := mosaic.RunRequest{
		VideoIDs:     []string{j.VideoID},
		UpdateParams: f.UpdateParams,
		IgnoreNodes:  f.IgnoreNodes,
		CallbackURL:  p.opts.CallbackURL,
	}
	// A run start that is under way finishes even if a shutdown begins (briefly): an answer now
	// spares a reconcile at the next start.
	rctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), sendBy)
	runID, err := p.api.RunAgent(rctx, j.AgentID, req)
	cancel()
	switch {
	case err == nil:
		return false, p.adopt(ctx, j, runID, "run started")
	case mosaic.OutcomeUnknown(err):
		j.RunWindowTo = p.api.ServerTime(p.now()).Add(p.windowMargin())
		j.RunStatus = unknownStartKind(err)
		p.log.Warn("the run start's outcome is unknown; looking for the run on Mosaic", "job", j.ID, "kind", j.RunStatus, "err", err)
		return true, p.commit(ctx, j, "no answer to the run start ("+mosaic.RedactText(err.Error())+"); looking for the run on Mosaic")
	}
	// Known not started: back to finalized, and let the error decide when to try again.
	p.addActiveRuns(-1)
	p.budget.release(j.Folder, j.RunStartAt)
	p.wakeBudget()
	j.Step = store.StepFinalized
	j.RunStartAt, j.RunWindowFrom = time.Time{}, time.Time{}
	return false, err
}

// ensureClock measures Mosaic's clock if no answer has yet (an answer's Date header does it).
func (p *Pipeline) ensureClock(ctx context.Context) error {
	if _, _, ok := p.api.ClockOffset(); ok {
		return nil
	}
	_, err := p.api.WhoAmI(ctx)
	return err
}

// unknownStartKind tells a start Mosaic may still act on from one whose run, if any, exists now.
func unknownStartKind(err error) string {
	var ae *mosaic.APIError
	if errors.As(err, &ae) && ae.StatusCode >= 500 && ae.StatusCode != 502 && ae.StatusCode != 504 {
		return RunStartError // Mosaic's own error answer: it is done with the request
	}
	if errors.As(err, &ae) && ae.StatusCode >= 200 && ae.StatusCode < 300 {
		return RunStartError // an unreadable success: the run exists
	}
	return RunStartLost
}

// windowMargin widens a start's window by what is not known about Mosaic's clock: the measured
// uncertainty, which already holds the Date header's one-second resolution (one answer bounds
// the offset to a second plus its round trip; more answers narrow it), and a little slack for
// Mosaic's own clocks (the one that dates answers may not be the one that stamps runs).
func (p *Pipeline) windowMargin() time.Duration {
	_, unc, ok := p.api.ClockOffset()
	if !ok {
		return reconcileUnknownClock
	}
	return unc + clockSlack
}

// clockSlack is the allowance for Mosaic's clocks disagreeing among themselves. A run stamped
// just outside the window is still found: every unanswered start also has a late window.
const clockSlack = 250 * time.Millisecond

// maxInlineWait is the longest a start waits for an earlier window to close while holding its
// agent: longer waits are deferred.
const maxInlineWait = 5 * time.Second

// reconcileUnknownClock is the margin for a start made before Mosaic's clock was measured
// (only a job left by an older version at "starting run").
const reconcileUnknownClock = 2 * time.Minute

// earlierWindowsClose says how long a start must wait so that its window cannot overlap the
// window of an earlier start of the agent whose outcome is unknown: a run stamped in the overlap
// could be either's. That is a second or so after an unknown outcome; a start never waits for
// a reconciliation.
func (p *Pipeline) earlierWindowsClose(ctx context.Context, j *store.Job) (time.Duration, error) {
	pending, err := p.unsettledStarts(ctx, j.AgentID, true)
	if err != nil {
		return 0, err
	}
	from := p.api.ServerTime(p.now()).Add(-p.windowMargin())
	var wait time.Duration
	for _, w := range pending {
		if w.jobID == j.ID {
			continue
		}
		if w.open() {
			// Another daemon's start in flight (starts on one store are serialized by the
			// agent's lock; an older daemon, or one on another store, may still send one).
			return 0, deferUntil(p.now().Add(time.Second), "waiting for another start of this agent to be answered")
		}
		wait = max(wait, w.to.Sub(from)+time.Millisecond)
	}
	return wait, nil
}

// checkSourceForRun is checkSource for a file that is already uploaded: a vanished source is
// fine (the upload is complete), a changed one is not run.
func (p *Pipeline) checkSourceForRun(f *Folder, j *store.Job) (bool, error) {
	_, err := p.statSource(f, j)
	if err != nil {
		if je, ok := err.(*jobError); ok && je.out == outSkip && je.msg == msgGone {
			return false, nil
		}
		return false, err
	}
	return true, nil
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

// runParams fingerprints what decides a run's result besides the video: the agent and the run
// parameters. A copy reuses outputs only from a run with the same fingerprint.
func runParams(f *Folder) string {
	ignore := slices.Clone(f.IgnoreNodes)
	slices.Sort(ignore)
	// encoding/json sorts map keys, so equal parameters encode equally.
	b, _ := json.Marshal(struct {
		Agent  string                    `json:"agent"`
		Params map[string]map[string]any `json:"update_params,omitempty"`
		Ignore []string                  `json:"ignore_nodes,omitempty"`
	}{f.AgentID, f.UpdateParams, ignore})
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:16])
}
