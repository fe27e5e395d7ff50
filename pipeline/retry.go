package pipeline

import (
	"fmt"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// PrepareRetry resets a failed, skipped or attention job so the daemon works on it again, and
// returns what will happen. A skipped job (a file that vanished or changed, or whose share was
// away) is looked at again from the step where it stopped. Only a run that cannot go on
// (failed, cancelled, gone, or a start nobody could confirm) is started anew: that costs
// credits, which is why it only happens on request. A run blocked for credits is resumed, a run
// that is still fine is followed again, and a finished run's outputs are downloaded again, all
// without a new run.
func PrepareRetry(j *store.Job, now time.Time) (string, error) {
	switch j.Status {
	case store.StatusFailed, store.StatusAttention, store.StatusSkipped:
	default:
		return "", fmt.Errorf("job %d (%s) is %s: nothing to retry", j.ID, j.RelPath, j.Status)
	}
	what := "retrying step " + string(j.Step)
	switch j.Step {
	case store.StepStartingRun:
		newRun(j)
		what = "starting a new run of the agent (the earlier start was never confirmed)"
	case store.StepRunStarted, store.StepRunFinished:
		switch j.RunStatus {
		case RunNeedsCredits:
			j.Step, j.RunStatus = store.StepRunStarted, RunResumeRequested
			what = "resuming run " + j.RunID + " on Mosaic (it was blocked for credits)"
		case mosaic.StatusFailed, mosaic.StatusCancelled, RunNotFound:
			newRun(j)
			what = "starting a new run of the agent"
		default:
			if j.Step == store.StepRunStarted {
				what = "following run " + j.RunID + " again"
			} else {
				what = "downloading the outputs of run " + j.RunID + " again"
			}
		}
	}
	if j.Status == store.StatusSkipped {
		j.Note = ""
	}
	j.Status = store.StatusActive
	j.Attempts = 0
	j.LastError = ""
	j.NextAttemptAt = now
	j.LeaseUntil = time.Time{}
	return what, nil
}

func newRun(j *store.Job) {
	j.Step = store.StepFinalized
	j.RunID, j.RunStatus, j.RunMessage = "", "", ""
	j.RunStartAt = time.Time{}
	j.Outputs = nil
}
