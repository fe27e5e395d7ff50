// Package jobview is how a job is shown to people and scripts: the one JSON shape of
// `mosaic-watch status --json`, of the HTTP API and of the dashboard's data, and the words that
// say what a job is doing. Views never carry signed URLs.
package jobview

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// Job is a job as shown to people and scripts.
type Job struct {
	ID        int64        `json:"id"`
	Folder    string       `json:"folder"`
	Path      string       `json:"path"`
	Size      int64        `json:"size"`
	Status    store.Status `json:"status"`
	Step      store.Step   `json:"step"`
	Doing     string       `json:"doing"`
	Attempts  int          `json:"attempts"`
	NextTry   *time.Time   `json:"next_attempt_at,omitempty"`
	Error     string       `json:"error,omitempty"`
	Note      string       `json:"note,omitempty"`
	VideoID   string       `json:"video_id,omitempty"`
	RunID     string       `json:"run_id,omitempty"`
	RunStatus string       `json:"run_status,omitempty"`
	Outputs   []string     `json:"outputs,omitempty"`
	// NeedsNewRun: only a new run (which bills one) can process the file again, e.g. whether a
	// run was started for it is unknown (retry --new-run).
	NeedsNewRun bool      `json:"needs_new_run,omitempty"`
	Updated     time.Time `json:"updated_at"`
	History     []Event   `json:"history,omitempty"`
}

// Event is one recorded step of a job's history.
type Event struct {
	At      time.Time    `json:"at"`
	Step    store.Step   `json:"step"`
	Status  store.Status `json:"status"`
	Message string       `json:"message"`
}

// Overview is what `status` shows: job counts per folder and state, and the jobs that are in
// progress, need attention, failed or finished last.
type Overview struct {
	Counts map[string]map[store.Status]int `json:"counts"` // by folder name
	// CountsByInput is Counts by folder input, which is unique where names may not be.
	CountsByInput map[string]map[store.Status]int `json:"-"`

	Active    []Job `json:"active"`
	Waiting   []Job `json:"waiting"` // held on purpose; Error says until what
	Attention []Job `json:"attention"`
	Failed    []Job `json:"failed"`
	Finished  []Job `json:"finished"`

	// Degraded names the folders whose work waits, by folder name, with why (an input, output
	// or move_to folder missing or not mounted, or the folder served by another instance). Only
	// the running daemon knows; Load leaves it empty.
	Degraded map[string]string `json:"degraded_folders,omitempty"`
	// Filled in by `status`, which reads them beside the jobs.
	ConfigReload *ReloadFailure `json:"config_reload_failed,omitempty"`
	RunLimits    []RunLimit     `json:"run_limits,omitempty"`
	// Instances are the daemons sharing the job store (PostgreSQL) whose heartbeat is recent,
	// with the jobs each holds now; empty with SQLite.
	Instances []Instance `json:"instances,omitempty"`
}

// Instance is one running daemon on a shared job store.
type Instance struct {
	ID          string    `json:"id"`
	Host        string    `json:"host"`
	PID         int       `json:"pid"`
	Version     string    `json:"version"`
	Config      string    `json:"config"`
	StartedAt   time.Time `json:"started_at"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
	Jobs        []int64   `json:"jobs"` // held now (leased)
}

// LiveInstances lists the instances of st whose heartbeat is more recent than live ago.
func LiveInstances(ctx context.Context, st store.Store, now time.Time, live time.Duration) ([]Instance, error) {
	all, err := st.Instances(ctx, now)
	if err != nil {
		return nil, err
	}
	var out []Instance
	for _, in := range all {
		if now.Sub(in.HeartbeatAt) > live {
			continue
		}
		out = append(out, Instance{ID: in.ID, Host: in.Host, PID: in.PID, Version: in.Version,
			Config: in.ConfigPath, StartedAt: in.StartedAt, HeartbeatAt: in.HeartbeatAt, Jobs: in.Jobs})
	}
	return out, nil
}

// ReloadFailure is the daemon's last failed configuration reload: it runs the configuration it
// had before until the file is fixed.
type ReloadFailure struct {
	At    time.Time `json:"at"`
	Error string    `json:"error"`
}

// RunLimit is the use of one daily run limit (limits.max_runs_per_day).
type RunLimit struct {
	Scope   string     `json:"scope"` // "all folders" or "folder NAME"
	Limit   int        `json:"limit"`
	Used    int        `json:"used"` // runs started in the last 24 hours
	Reached bool       `json:"reached"`
	Until   *time.Time `json:"until,omitempty"` // when runs start again, if reached
}

// States lists the job states in the order they are shown.
var States = []store.Status{store.StatusActive, store.StatusRetrying, store.StatusWaiting,
	store.StatusAttention, store.StatusFailed, store.StatusDone, store.StatusSkipped}

// KnownState reports whether st is one of States.
func KnownState(st store.Status) bool { return slices.Contains(States, st) }

// Names maps a folder's input path to its configured name; a job of an input that is no longer
// configured is shown under its path.
type Names map[string]string

// Of returns the name of the folder with this input.
func (n Names) Of(input string) string {
	if name, ok := n[input]; ok {
		return name
	}
	return input
}

// Store is the part of the job store views are read from.
type Store interface {
	List(ctx context.Context, f store.Filter) ([]store.Job, error)
	History(ctx context.Context, id int64) ([]store.Event, error)
	CountsByFolder(ctx context.Context) (map[string]map[store.Status]int, error)
}

// Of shows j.
func Of(names Names, j store.Job) Job {
	v := Job{
		ID: j.ID, Folder: names.Of(j.Folder), Path: j.RelPath, Size: j.Size, Status: j.Status,
		Step: j.Step, Doing: StepText(j), Attempts: j.Attempts, Error: j.LastError, Note: j.Note,
		VideoID: j.VideoID, RunID: j.RunID, RunStatus: j.RunStatus, Updated: j.UpdatedAt,
	}
	if j.Status == store.StatusRetrying {
		t := j.NextAttemptAt
		v.NextTry = &t
	}
	v.NeedsNewRun = pipeline.NeedsNewRun(&j)
	for _, o := range j.Outputs {
		if o.Path != "" {
			v.Outputs = append(v.Outputs, o.Path)
		}
	}
	return v
}

// WithHistory shows j with its recorded history.
func WithHistory(ctx context.Context, st Store, names Names, j store.Job) (Job, error) {
	v := Of(names, j)
	events, err := st.History(ctx, j.ID)
	if err != nil {
		return v, err
	}
	for _, e := range events {
		v.History = append(v.History, Event{At: e.At, Step: e.Step, Status: e.Status, Message: e.Message})
	}
	return v, nil
}

// Histories shows jobs, oldest first, each with its history: `status PATH` and `status JOB`.
func Histories(ctx context.Context, st Store, names Names, jobs []store.Job) ([]Job, error) {
	slices.SortFunc(jobs, func(a, b store.Job) int { return int(a.ID - b.ID) })
	views := make([]Job, 0, len(jobs))
	for _, j := range jobs {
		v, err := WithHistory(ctx, st, names, j)
		if err != nil {
			return nil, err
		}
		views = append(views, v)
	}
	return views, nil
}

// Load reads the overview; all lists every finished job, not only the latest ten.
func Load(ctx context.Context, st Store, names Names, all bool) (*Overview, error) {
	byFolder, err := st.CountsByFolder(ctx)
	if err != nil {
		return nil, err
	}
	ov := &Overview{Counts: make(map[string]map[store.Status]int), CountsByInput: byFolder}
	for input, c := range byFolder {
		ov.Counts[names.Of(input)] = c
	}
	list := func(limit int, s ...store.Status) ([]Job, error) {
		jobs, err := st.List(ctx, store.Filter{Status: s, Limit: limit})
		var views []Job
		for _, j := range jobs {
			views = append(views, Of(names, j))
		}
		return views, err
	}
	finishedLimit := 10
	if all {
		finishedLimit = 100000
	}
	if ov.Active, err = list(1000, store.StatusActive, store.StatusRetrying); err != nil {
		return nil, err
	}
	if ov.Waiting, err = list(1000, store.StatusWaiting); err != nil {
		return nil, err
	}
	if ov.Attention, err = list(1000, store.StatusAttention); err != nil {
		return nil, err
	}
	if ov.Failed, err = list(1000, store.StatusFailed); err != nil {
		return nil, err
	}
	if ov.Finished, err = list(finishedLimit, store.StatusDone, store.StatusSkipped); err != nil {
		return nil, err
	}
	return ov, nil
}

// StepText says in words what an open job is doing (or did last).
func StepText(j store.Job) string {
	switch j.Step {
	case store.StepFound:
		if j.CopyOf != 0 {
			return fmt.Sprintf("waiting for job %d (same content) to reuse its outputs", j.CopyOf)
		}
		return "hashing"
	case store.StepSettled:
		return "uploading"
	case store.StepUploaded:
		return "finalizing the upload"
	case store.StepFinalized:
		return "waiting to start the run"
	case store.StepStartingRun:
		if j.RunStatus != "" && j.Status.Open() {
			return "looking on Mosaic for the run of an unanswered start"
		}
		return "starting the run"
	case store.StepRunStarted:
		if j.RunMessage != "" {
			return "running on Mosaic: " + j.RunMessage
		}
		return "running on Mosaic"
	case store.StepRunFinished:
		if j.CopyOf != 0 {
			return fmt.Sprintf("taking the outputs of job %d (same content)", j.CopyOf)
		}
		return "downloading outputs"
	case store.StepOutputsWritten:
		return "handling the source file"
	case store.StepSourceHandled, store.StepDone:
		return "finished"
	}
	return string(j.Step)
}
