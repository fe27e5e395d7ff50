package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// What a folder does when a source file is replaced or deleted while its run is active.
const (
	SourceChangeFinish = "finish" // the run finishes and its outputs are written (default)
	SourceChangeCancel = "cancel" // the run is cancelled on Mosaic and the job skipped
)

// CancelRun cancels job j's run on Mosaic (POST /agent_run/{id}/cancel) and records the request;
// the daemon then sees the run cancelled and fails the job (a retry resumes the run). It works
// beside a running daemon (from the command line): the record never overwrites what the daemon
// wrote since j was read. A run that already ended is reported, not an error.
func CancelRun(ctx context.Context, st store.Store, api *mosaic.Client, j *store.Job, now time.Time) (string, error) {
	switch {
	case !j.Status.Open():
		return "", fmt.Errorf("job %d (%s) is %s: it has no active run to cancel", j.ID, j.RelPath, j.Status)
	case j.Step == store.StepStartingRun:
		return "", fmt.Errorf("job %d (%s): its run start is not confirmed yet; cancel it again once the run is known", j.ID, j.RelPath)
	case j.Step != store.StepRunStarted || j.RunID == "":
		return "", fmt.Errorf("job %d (%s) has no run on Mosaic (it is at step %q)", j.ID, j.RelPath, j.Step)
	}
	runID := j.RunID
	// The request is noted apart from the job before Mosaic is asked: the daemon may see the
	// run cancelled, and write the job, before the job below records it.
	if err := st.SetMeta(ctx, cancelMetaKey(runID), now.UTC().Format(time.RFC3339)); err != nil {
		return "", fmt.Errorf("record the cancel of job %d: %w", j.ID, err)
	}
	err := api.CancelRun(ctx, runID)
	what := "cancelled run " + runID + " on Mosaic"
	cancelled := err == nil
	switch {
	case mosaic.IsConflict(err):
		what = "run " + runID + " had already ended on Mosaic; nothing to cancel"
	case mosaic.IsNotFound(err):
		return "", fmt.Errorf("job %d (%s): Mosaic does not know run %s", j.ID, j.RelPath, runID)
	case err != nil:
		return "", fmt.Errorf("cancel run %s of job %d (%s): %w", runID, j.ID, j.RelPath, err)
	}
	// Record it on the job as it is now: the daemon may have written it meanwhile.
	for range 5 {
		if cancelled {
			j.RunStatus = RunCancelRequested
		}
		j.NextAttemptAt = now // the daemon looks at the run at its next poll
		err := st.SaveIfUnchanged(ctx, j, "cancel requested: "+what)
		if !errors.Is(err, store.ErrChanged) {
			if err != nil {
				return "", fmt.Errorf("record the cancel of job %d: %w", j.ID, err)
			}
			return what, nil
		}
		fresh, err := st.Get(ctx, j.ID)
		if err != nil {
			return "", fmt.Errorf("record the cancel of job %d: %w", j.ID, err)
		}
		if fresh.RunID != runID || fresh.Step != store.StepRunStarted || !fresh.Status.Open() {
			return what + " (the job moved on meanwhile: " + string(fresh.Step) + ", " + string(fresh.Status) + ")", nil
		}
		*j = *fresh
	}
	return what + " (not recorded on the job: it kept changing; the daemon sees the cancel at its next poll)", nil
}

// sourceGone says how job j's source changed since it was found ("deleted", "replaced"), or ""
// when it is unchanged or cannot be told (which is not a reason to cancel): the source is read
// through its input folder like every other access, and a missing file in a folder that is away
// (an unmounted share) is not a deleted one.
func (p *Pipeline) sourceGone(f *Folder, j *store.Job) string {
	in, err := p.place(f.Input).open("input folder")
	if err != nil {
		return ""
	}
	defer in.Close()
	fi, err := in.Lstat(filepath.FromSlash(j.RelPath))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if p.place(f.Input).still("input folder", in) != nil {
			return ""
		}
		return "deleted"
	case err != nil:
		return ""
	case sourceMatches(j, fi) != nil:
		return "replaced"
	}
	return ""
}

// cancelForSource applies on_source_change: cancel. done is false when the run had already
// ended: it is then followed as usual.
func (p *Pipeline) cancelForSource(ctx context.Context, j *store.Job, why string) (done bool, err error) {
	err = p.api.CancelRun(ctx, j.RunID)
	if mosaic.IsConflict(err) || mosaic.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	p.addActiveRuns(-1)
	j.RunStatus = mosaic.StatusCancelled
	j.Status = store.StatusSkipped
	j.Note = fmt.Sprintf("the source was %s while its run was active; run %s cancelled (on_source_change: cancel)", why, j.RunID)
	p.log.Info("source changed during its run; run cancelled", "job", j.ID, "path", j.RelPath, "run", j.RunID, "source", why)
	return true, p.commit(ctx, j, j.Note)
}

// cancelMetaKey is the store meta key that notes a person's cancel of a run.
func cancelMetaKey(runID string) string { return "cancel_requested:" + runID }

// cancelledOnRequest reports whether a person asked to cancel job j's run: on the job, or in
// the note CancelRun leaves first.
func (p *Pipeline) cancelledOnRequest(ctx context.Context, j *store.Job) bool {
	if j.RunStatus == RunCancelRequested {
		return true
	}
	v, err := p.st.GetMeta(ctx, cancelMetaKey(j.RunID))
	return err == nil && v != ""
}
