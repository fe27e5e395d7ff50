package pipeline

import (
	"errors"
	"fmt"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// ErrNeedsNewRun is returned by PrepareRetry for a job that only a new, billed run can process
// again: whether a run was started for it is unknown, or its run is gone. PrepareNewRun does it.
var ErrNeedsNewRun = errors.New("only a new run can process it again")

// PrepareRetry resets a failed, skipped or attention job so the daemon works on it again, and
// returns what will happen. A skipped job (a file that vanished or changed, or whose share was
// away) is looked at again from the step where it stopped. It never bills a second run for a
// file: a failed or cancelled run is resumed on Mosaic (only its failed or cancelled nodes run
// again), a run blocked for credits is resumed, a run that is still fine is followed again, and
// a finished run's outputs are downloaded again. A job whose run is unknown or gone gives ErrNeedsNewRun.
func PrepareRetry(j *store.Job, now time.Time) (string, error) {
	if err := retryable(j); err != nil {
		return "", err
	}
	what := "retrying step " + string(j.Step)
	switch j.Step {
	case store.StepStartingRun:
		detail := "whether Mosaic started a run for it is not known"
		if j.RunMessage != "" {
			detail += " (" + j.RunMessage + ")"
		}
		return "", fmt.Errorf("job %d (%s): %s; check the Mosaic dashboard, then retry with --new-run to start a new run (it bills one): %w",
			j.ID, j.RelPath, detail, ErrNeedsNewRun)
	case store.StepRunStarted, store.StepRunFinished:
		switch j.RunStatus {
		case RunNeedsCredits:
			j.Step, j.RunStatus = store.StepRunStarted, RunResumeRequested
			what = "resuming run " + j.RunID + " on Mosaic (it was blocked for credits)"
		case mosaic.StatusFailed, mosaic.StatusCancelled:
			j.Step, j.RunStatus = store.StepRunStarted, RunResumeRequested
			what = "resuming run " + j.RunID + " on Mosaic (its failed or cancelled nodes run again; no new run is billed)"
		case RunNotFound:
			return "", fmt.Errorf("job %d (%s): Mosaic no longer knows run %s; retry with --new-run to start a new run (it bills one): %w",
				j.ID, j.RelPath, j.RunID, ErrNeedsNewRun)
		default:
			if j.Step == store.StepRunStarted {
				what = "following run " + j.RunID + " again"
			} else {
				what = "downloading the outputs of run " + j.RunID + " again"
			}
		}
	}
	reopen(j, now)
	return what, nil
}

// PrepareNewRun resets a failed or attention job to start a new run of its agent, which bills
// one. A job that never got as far as a run is simply retried (as PrepareRetry).
func PrepareNewRun(j *store.Job, now time.Time) (string, error) {
	if err := retryable(j); err != nil {
		return "", err
	}
	switch j.Step {
	case store.StepStartingRun, store.StepRunStarted, store.StepRunFinished, store.StepFinalized:
	default:
		return PrepareRetry(j, now)
	}
	newRun(j)
	reopen(j, now)
	return "starting a new run of the agent (it bills one)", nil
}

// NeedsNewRun reports whether only a new (billed) run can process job j again: whether a run was
// started for it is unknown, or Mosaic no longer knows its run. PrepareRetry refuses such a job.
func NeedsNewRun(j *store.Job) bool {
	if j.Status.Open() || j.Status == store.StatusDone || j.Status == store.StatusSkipped {
		return false
	}
	return j.Step == store.StepStartingRun ||
		((j.Step == store.StepRunStarted || j.Step == store.StepRunFinished) && j.RunStatus == RunNotFound)
}

func retryable(j *store.Job) error {
	switch j.Status {
	case store.StatusFailed, store.StatusAttention, store.StatusSkipped:
		return nil
	}
	return fmt.Errorf("job %d (%s) is %s: nothing to retry", j.ID, j.RelPath, j.Status)
}

func reopen(j *store.Job, now time.Time) {
	if j.Status == store.StatusSkipped {
		j.Note = ""
	}
	j.Status = store.StatusActive
	j.Attempts = 0
	j.LastError = ""
	j.NextAttemptAt = now
	j.LeaseUntil = time.Time{}
}

func newRun(j *store.Job) {
	j.Step = store.StepFinalized
	if j.VideoID == "" { // a copy reused another job's outputs and was never uploaded
		j.Step, j.CopyOf = store.StepSettled, 0
	}
	j.RunID, j.RunStatus, j.RunMessage = "", "", ""
	j.RunStartAt, j.RunWindowFrom, j.RunWindowTo = time.Time{}, time.Time{}, time.Time{}
	j.Outputs = nil
}
