package pipeline

import (
	"fmt"
	"time"

	"github.com/mosaic-watch/mosaic-watch/store"
)

// PrepareRetry resets a failed or attention job so the daemon works on it again, and returns
// what will happen. A job whose run failed (or was blocked for credits, or cannot be matched)
// starts a new run: that costs credits, which is why it only happens on request.
func PrepareRetry(j *store.Job, now time.Time) (string, error) {
	switch j.Status {
	case store.StatusFailed, store.StatusAttention:
	default:
		return "", fmt.Errorf("job %d (%s) is %s: nothing to retry", j.ID, j.RelPath, j.Status)
	}
	what := "retrying step " + string(j.Step)
	switch j.Step {
	case store.StepStartingRun, store.StepRunStarted, store.StepRunFinished:
		if j.Step != store.StepRunFinished || j.RunStatus != "completed" {
			j.Step = store.StepFinalized
			j.RunID, j.RunStatus, j.RunMessage = "", "", ""
			j.RunStartAt = time.Time{}
			j.Outputs = nil
			what = "starting a new run of the agent"
		}
	}
	j.Status = store.StatusActive
	j.Attempts = 0
	j.LastError = ""
	j.NextAttemptAt = now
	j.LeaseUntil = time.Time{}
	return what, nil
}
