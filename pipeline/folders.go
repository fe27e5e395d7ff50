package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mosaic-watch/mosaic-watch/store"
)

// Reasons a job waits (its LastError starts with one); ResumeWaiting lifts the hold by reason.
const (
	WaitFolderRemoved = "folder removed from the configuration"
	WaitApproval      = "waiting for approval"
	WaitDailyLimit    = "daily run limit reached"
)

// folderSet validates folders and indexes them by input.
func folderSet(folders []Folder) (map[string]*Folder, error) {
	if len(folders) == 0 {
		return nil, errors.New("pipeline: no folders")
	}
	set := make(map[string]*Folder, len(folders))
	for i := range folders {
		f := folders[i] // a copy: the pipeline's folders never change under it
		if !filepath.IsAbs(f.Input) || !filepath.IsAbs(f.Output) {
			return nil, fmt.Errorf("pipeline: folder %q: input and output must be absolute", f.Name)
		}
		if f.AgentID == "" {
			return nil, fmt.Errorf("pipeline: folder %q: no agent id", f.Name)
		}
		if (f.AfterSuccess == "move" && !filepath.IsAbs(f.AfterSuccessMoveTo)) ||
			(f.AfterFailure == "move" && !filepath.IsAbs(f.AfterFailureMoveTo)) {
			return nil, fmt.Errorf("pipeline: folder %q: a move needs an absolute move_to folder", f.Name)
		}
		switch f.OnSourceChange {
		case "":
			f.OnSourceChange = SourceChangeFinish
		case SourceChangeFinish, SourceChangeCancel:
		default:
			return nil, fmt.Errorf("pipeline: folder %q: on_source_change %q: want %s or %s",
				f.Name, f.OnSourceChange, SourceChangeFinish, SourceChangeCancel)
		}
		if _, dup := set[f.Input]; dup {
			return nil, fmt.Errorf("pipeline: input %s configured twice", f.Input)
		}
		set[f.Input] = &f
	}
	return set, nil
}

// SetFolders replaces the folder set while the pipeline runs (a configuration reload):
//   - a new folder takes files at once;
//   - a removed folder takes no new files; its jobs that have not started a run wait as
//     WaitFolderRemoved (and resume if it comes back), and runs it already started are followed
//     to the end with their outputs written, with the folder's last settings;
//   - a changed folder's agent, parameters and ignored nodes apply to runs not yet started, its
//     other settings to the next step of each job.
func (p *Pipeline) SetFolders(ctx context.Context, folders []Folder) error {
	set, err := folderSet(folders)
	if err != nil {
		return err
	}
	// New places are made ready before any file of theirs is taken: a missing output folder
	// is created, and a mount point is recorded as such. A failure keeps the old folder set.
	if err := p.preparePlaces(p.addPlaces(set)); err != nil {
		return err
	}
	p.foldersMu.Lock()
	var back []string
	for input, f := range p.folders {
		if _, kept := set[input]; !kept {
			p.retired[input] = f
		}
	}
	for input := range set {
		if _, was := p.retired[input]; was {
			delete(p.retired, input)
			back = append(back, input)
		}
	}
	p.folders = set
	p.foldersMu.Unlock()
	p.budget.setLimits(0, set, false)
	for _, input := range back {
		p.resumeFolder(ctx, input)
	}
	p.checkHealth()
	p.wakeAll()
	p.wakeBudget()
	return nil
}

// SetMaxRunsPerDay changes the global daily run limit (0 = none) while the pipeline runs.
func (p *Pipeline) SetMaxRunsPerDay(n int) {
	p.budget.setLimits(n, nil, true)
	p.wakeBudget()
}

// resumeReturnedFolders lifts WaitFolderRemoved for every configured folder (at start: the
// folder may be back in the configuration since the last run).
func (p *Pipeline) resumeReturnedFolders(ctx context.Context) {
	p.foldersMu.RLock()
	inputs := slices.Collect(maps.Keys(p.folders))
	p.foldersMu.RUnlock()
	for _, input := range inputs {
		p.resumeFolder(ctx, input)
	}
}

func (p *Pipeline) resumeFolder(ctx context.Context, input string) {
	n, err := ResumeWaiting(ctx, p.st, input, WaitFolderRemoved, 0, p.now(),
		"the folder is in the configuration again")
	if err != nil {
		p.log.Error("resume the jobs of a folder back in the configuration", "folder", input, "err", err)
	}
	if n > 0 {
		p.log.Info("folder is back in the configuration; its waiting jobs resume", "folder", input, "jobs", n)
	}
}

// folder returns the configured folder with this input.
func (p *Pipeline) folder(input string) (*Folder, bool) {
	p.foldersMu.RLock()
	defer p.foldersMu.RUnlock()
	f, ok := p.folders[input]
	return f, ok
}

// allFolders returns the configured and the retired folders by input.
func (p *Pipeline) allFolders() map[string]*Folder {
	p.foldersMu.RLock()
	defer p.foldersMu.RUnlock()
	all := maps.Clone(p.retired)
	maps.Copy(all, p.folders)
	return all
}

// folderOf is the folder a job's next step works with. A job of a removed folder waits until
// its run would start; a run already started is finished with the folder's last settings.
func (p *Pipeline) folderOf(j *store.Job) (*Folder, error) {
	p.foldersMu.RLock()
	f, ok := p.folders[j.Folder]
	old, retired := p.retired[j.Folder]
	p.foldersMu.RUnlock()
	switch {
	case ok:
		return f, nil
	case !runStarting(j.Step):
		return nil, hold(WaitFolderRemoved)
	case retired:
		return old, nil
	}
	return nil, attention(fmt.Sprintf("folder %s is no longer in the configuration", j.Folder))
}

// RunsUnderway reports whether folder input has jobs whose run may have started and that are
// not finished: they still write outputs and handle their source, even after the folder left
// the configuration, so the folder is not free for another instance yet.
func (p *Pipeline) RunsUnderway(ctx context.Context, input string) (bool, error) {
	jobs, err := p.st.List(ctx, store.Filter{Folder: input, Limit: 1 << 30,
		Status: []store.Status{store.StatusActive, store.StatusRetrying, store.StatusWaiting}})
	if err != nil {
		return false, fmt.Errorf("list the jobs of %s: %w", input, err)
	}
	return slices.ContainsFunc(jobs, func(j store.Job) bool {
		return runStarting(j.Step) && j.Step != store.StepDone
	}), nil
}

// runStarting reports whether a job at step may have started (and been billed for) a run.
func runStarting(step store.Step) bool {
	switch step {
	case store.StepFound, store.StepSettled, store.StepUploaded, store.StepFinalized:
		return false
	}
	return true
}

// folderName names a job's folder for logs and metrics.
func (p *Pipeline) folderName(j *store.Job) string {
	if f, ok := p.allFolders()[j.Folder]; ok {
		return f.Name
	}
	return j.Folder
}

func (p *Pipeline) wakeAll() {
	for _, s := range p.stages {
		p.wake(s.steps[0])
	}
}

// ResumeWaiting makes waiting jobs of folder ("" = every folder) whose reason starts with
// reason active again, oldest first, at most limit of them (0 = all), and returns how many it
// resumed. It works from any process (the daemon, `approve`, the dashboard): each job is
// written only if it is still waiting and unchanged, so concurrent callers never resume a job
// twice or undo other work.
func ResumeWaiting(ctx context.Context, st store.Store, folder, reason string, limit int,
	now time.Time, msg string) (int, error) {
	jobs, err := waitingJobs(ctx, st, folder, reason)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range jobs {
		if limit > 0 && n >= limit {
			break
		}
		if ok, err := resumeJob(ctx, st, &jobs[i], now, msg); err != nil {
			return n, err
		} else if ok {
			n++
		}
	}
	return n, nil
}

// waitingJobs lists the waiting jobs of folder ("" = all) held for reason, oldest first.
func waitingJobs(ctx context.Context, st store.Store, folder, reason string) ([]store.Job, error) {
	jobs, err := st.List(ctx, store.Filter{Status: []store.Status{store.StatusWaiting}, Folder: folder,
		Limit: 1 << 30})
	if err != nil {
		return nil, fmt.Errorf("list waiting jobs: %w", err)
	}
	jobs = slices.DeleteFunc(jobs, func(j store.Job) bool { return !strings.HasPrefix(j.LastError, reason) })
	slices.SortFunc(jobs, func(a, b store.Job) int { return int(a.ID - b.ID) })
	return jobs, nil
}

// resumeJob makes one waiting job active; false when it changed meanwhile.
func resumeJob(ctx context.Context, st store.Store, j *store.Job, now time.Time, msg string) (bool, error) {
	j.Status, j.LastError, j.NextAttemptAt, j.LeaseUntil = store.StatusActive, "", now, time.Time{}
	err := st.Reopen(ctx, j, msg)
	if errors.Is(err, store.ErrChanged) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("resume job %d: %w", j.ID, err)
	}
	return true, nil
}
