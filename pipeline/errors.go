package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// outcome says what a failed step means for its job.
type outcome int

const (
	outRetry     outcome = iota // transient: back off and try the step again
	outFail                     // permanent: the job fails with the reason
	outAttention                // a person must act
	outSkip                     // the job no longer applies (file changed, vanished, duplicate)
	outDefer                    // not an error: try again at a given time without counting an attempt
	outWait                     // a folder of the job is away: the job waits for it, in memory
	outHold                     // held on purpose (StatusWaiting) until something else lifts it
)

// jobError carries the decision a step made about its failure.
type jobError struct {
	out   outcome
	msg   string
	until time.Time // outDefer
	err   error
}

func (e *jobError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *jobError) Unwrap() error { return e.err }

func permanent(msg string, err error) error { return &jobError{out: outFail, msg: msg, err: err} }
func attention(msg string) error            { return &jobError{out: outAttention, msg: msg} }
func skip(msg string) error                 { return &jobError{out: outSkip, msg: msg} }
func transient(msg string, err error) error {
	return &jobError{out: outRetry, msg: msg, err: err}
}
func deferUntil(t time.Time, msg string) error { return &jobError{out: outDefer, msg: msg, until: t} }
func hold(msg string) error                    { return &jobError{out: outHold, msg: msg} }

// waitFolder makes the job wait until its degraded folder is back; why names the folder.
func waitFolder(why string) error { return &jobError{out: outWait, msg: why} }

// waitingFor reports why err makes a job wait for a folder.
func waitingFor(err error) (string, bool) {
	var je *jobError
	if errors.As(err, &je) && je.out == outWait {
		return je.msg, true
	}
	return "", false
}

// classify turns an error from a step into a decision. API errors are classified by the mosaic
// package; anything unknown is treated as transient, because a retry is cheaper than a lost file.
func (p *Pipeline) classify(err error) *jobError {
	var je *jobError
	if errors.As(err, &je) {
		return je
	}
	switch {
	case mosaic.IsAuth(err):
		if p.gate.authFailed(err) {
			p.log.Error("Mosaic rejects the API key: all work is paused until it works (checked every "+
				p.opts.AuthRecheck.String()+"); jobs wait, none fail. Check mosaic.api_key", "err", err)
		}
		return &jobError{out: outDefer, msg: "waiting for a working API key", until: p.now().Add(p.opts.AuthRecheck), err: err}
	case mosaic.IsRetryable(err):
		if d, ok := mosaic.RetryAfter(err); ok && d > 0 {
			if d > p.opts.MaxRetryAfter {
				p.log.Warn("Retry-After is longer than the configured cap; waiting the cap instead",
					"retry_after", d, "cap", p.opts.MaxRetryAfter)
				d = p.opts.MaxRetryAfter
			}
			if !mosaic.IsTransfer(err) {
				// The API itself asked to slow down: every call waits. A storage answer concerns
				// one transfer, so only its job waits.
				p.gate.pauseFor(d, "Mosaic asked to slow down (Retry-After)")
			}
			return &jobError{out: outDefer, msg: "rate limited", until: p.now().Add(d), err: err}
		}
		return &jobError{out: outRetry, msg: "temporary error", err: err}
	case mosaic.IsPermanent(err):
		return &jobError{out: outFail, msg: "Mosaic refused the request", err: err}
	}
	return &jobError{out: outRetry, msg: "error", err: err}
}

// fail records a failed step on the job. A shutdown is not a failure: the job is left for the
// next start, which takes back its leases at once.
func (p *Pipeline) fail(ctx context.Context, j *store.Job, err error) {
	if ctx.Err() != nil {
		return
	}
	if errors.Is(err, store.ErrLost) {
		p.log.Warn("job was taken over by another worker", "job", j.ID)
		return
	}
	je := p.classify(err)
	log := p.log.With("job", j.ID, "path", j.RelPath, "step", j.Step)
	now := p.now()
	msg := je.Error()
	if je.out == outWait { // outside a stage worker nothing holds the job: look again later
		je = &jobError{out: outDefer, msg: waitNote + je.msg, until: now.Add(p.opts.Recheck)}
		msg = je.msg
	}
	switch je.out {
	case outDefer:
		j.NextAttemptAt = je.until
		j.Status = store.StatusActive
		log.Debug("step deferred", "until", je.until, "reason", msg)
		msg = "deferred: " + msg
	case outRetry:
		j.Attempts++
		j.LastError = msg
		if j.Attempts >= p.opts.Retry.MaxAttempts && j.Step == store.StepStartingRun {
			// Whether Mosaic started a run is still unknown: failing would invite a second run.
			j.Status = store.StatusAttention
			j.LastError = fmt.Sprintf("could not confirm whether Mosaic started a run for this file after %d attempts (%s); check the Mosaic dashboard: `mosaic-watch retry` starts a new run", j.Attempts, msg)
			log.Error("job needs attention", "reason", j.LastError)
			msg = j.LastError
		} else if j.Attempts >= p.opts.Retry.MaxAttempts && j.Step != store.StepRunStarted {
			j.Status = store.StatusFailed
			j.LastError = fmt.Sprintf("gave up after %d attempts: %s", j.Attempts, msg)
			log.Error("job failed", "reason", j.LastError)
			msg = j.LastError
			p.handleFailedSource(ctx, j)
		} else {
			p.opts.Observer.Retried(p.folderName(j), j.Step)
			j.Status = store.StatusRetrying
			j.NextAttemptAt = now.Add(p.backoff(j.Attempts))
			log.Warn("step failed; will retry", "attempt", j.Attempts, "at", j.NextAttemptAt.Format(time.RFC3339), "err", msg)
			msg = fmt.Sprintf("attempt %d failed, retrying at %s: %s", j.Attempts, j.NextAttemptAt.Format(time.RFC3339), msg)
		}
	case outFail:
		j.Status = store.StatusFailed
		j.LastError = msg
		log.Error("job failed", "reason", msg)
		p.handleFailedSource(ctx, j)
	case outAttention:
		j.Status = store.StatusAttention
		j.LastError = msg
		log.Error("job needs attention", "reason", msg)
	case outSkip:
		j.Status = store.StatusSkipped
		j.Note = msg
		log.Info("job skipped", "reason", msg)
	case outHold:
		j.Status = store.StatusWaiting
		j.LastError = msg
		log.Info("job waits", "reason", msg)
		msg = "waiting: " + msg
	}
	j.LeaseUntil = time.Time{} // the job leaves its worker whatever the outcome
	if !j.Status.Open() && (j.Step == store.StepStartingRun || j.Step == store.StepRunStarted) {
		p.addActiveRuns(-1)
	}
	if err := p.commit(ctx, j, msg); err != nil && ctx.Err() == nil {
		log.Error("record step failure", "err", err)
	}
	if je.out == outHold && strings.HasPrefix(je.msg, WaitDailyLimit) {
		p.wakeBudget() // it knows when the window frees
	}
}

// backoff is exponential from Retry.Base, capped at Retry.Max, up to 20% shorter at random.
func (p *Pipeline) backoff(attempt int) time.Duration {
	return mosaic.Backoff(p.opts.Retry.Base, p.opts.Retry.Max, attempt, 0.2)
}
