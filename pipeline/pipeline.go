// Package pipeline moves each finished video through its durable steps: hash, upload, finalize,
// start the folder's agent, follow the run, write the outputs into the mirror folder and handle
// the source. Every step is committed to the store before the next one starts, so a restart
// resumes where the last commit left off and an agent is never started twice for one file.
//
// The pipeline does not import the watcher: the daemon feeds it File values through FileReady
// and FileIncomplete.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// Folder is one input folder mapped to an agent, with its output mirror and source policy.
type Folder struct {
	Name               string
	Input              string // absolute; also the folder's key in the store
	Output             string // absolute
	AgentID            string
	UpdateParams       map[string]map[string]any
	IgnoreNodes        []string
	AfterSuccess       string // keep | move | delete
	AfterSuccessMoveTo string
	AfterFailure       string // keep | move
	AfterFailureMoveTo string
	MaxFileSize        int64  // 0 = no local limit
	OnSourceChange     string // finish (default) | cancel: a source replaced or deleted during its run
	MaxRunsPerDay      int    // run starts of this folder in any 24 hours; 0 = no limit
}

// Limits bounds the work in flight.
type Limits struct {
	Hashes     int // files hashed at once (default 2)
	Uploads    int // default 2
	Starts     int // run starts in flight (serialized per agent anyway; default 2)
	ActiveRuns int // runs on Mosaic at once (default 8)
	Downloads  int // default 2
}

// Retry shapes the per-job backoff for transient errors.
type Retry struct {
	Base        time.Duration // first delay (default 30s)
	Max         time.Duration // cap (default 1h)
	MaxAttempts int           // then the job fails (default 8)
}

// Defaults New applies to zero options; the daemon's configuration documents the same values.
const (
	DefaultPollInterval   = 10 * time.Second
	DefaultReconcileAfter = 2 * time.Minute
	DefaultRetryBase      = 30 * time.Second
	DefaultRetryMax       = time.Hour
	DefaultRetryAttempts  = 8
	DefaultUploads        = 2
	DefaultActiveRuns     = 8
	DefaultDownloads      = 2
	DefaultRecheck        = 5 * time.Second
	DefaultMaxRetryAfter  = 10 * time.Minute
)

// Options configures a Pipeline.
type Options struct {
	Folders []Folder
	Store   store.Store
	Client  *mosaic.Client
	Owner   string // this daemon's identity for job leases
	// Shared says other daemons (on other hosts) use the same store: run starts look in the
	// store for every pending start of the agent instead of trusting what this process knows,
	// the poller claims the runs it follows each round, and temporary files another host may be
	// writing are not cleaned up at start.
	Shared       bool
	UploadAPI    mosaic.UploadAPI // "" = newest uploads API
	PollInterval time.Duration    // run status polling (default 10s)
	CallbackURL  string           // passed as callback_url on run starts when set
	Limits       Limits
	// MaxRunsPerDay bounds the run starts of all folders in any 24 hours (0 = no limit); jobs
	// over it wait until the window frees. Folder.MaxRunsPerDay bounds one folder.
	MaxRunsPerDay int
	Retry         Retry
	Lease         time.Duration // job lease, renewed by a heartbeat (default 60s)
	AuthRecheck   time.Duration // how often a rejected API key is re-checked (default 30s)
	// ReconcileAfter is how long after a lost run start an empty run listing is trusted to mean
	// "no run was created" (default 2m): Mosaic may create a run after its gateway timed out.
	ReconcileAfter time.Duration
	ClaimEvery     time.Duration // fallback claim tick when nothing wakes a stage (default 1s)
	Observer       Observer      // measurements for metrics; nil = none
	Logger         *slog.Logger
	Now            func() time.Time
	// Recheck is how often every folder is checked (present, still mounted) and how long a job
	// waits before it looks again at an output name another version of its file is writing
	// (default 5s).
	Recheck time.Duration
	// MaxRetryAfter caps the pause a Retry-After answer can impose (default 10m): one proxy
	// answering "Retry-After: 86400" must not stop all work for a day.
	MaxRetryAfter time.Duration
}

// File is a finished file reported by the watcher.
type File struct {
	Folder  string // the folder's Input
	Path    string // absolute
	Rel     string // slash-separated, relative to Folder
	Size    int64
	ModTime time.Time
	FileID  string
	// Hold, when set, records the file as waiting with this reason instead of starting it
	// (a backlog held for approval); ResumeWaiting lifts it.
	Hold string
}

// Pipeline is the daemon's job engine. New validates; Run works until its context ends.
type Pipeline struct {
	opts Options
	log  *slog.Logger
	st   store.Store
	api  *mosaic.Client
	now  func() time.Time

	// folders is the configuration's folder set by input; SetFolders replaces it. A removed
	// folder moves to retired, so that runs already started are followed to their outputs.
	foldersMu sync.RWMutex
	folders   map[string]*Folder
	retired   map[string]*Folder

	budget     *runBudget
	budgetWake chan struct{}

	// places are every input, output and move_to folder of the configured and retired folders,
	// by path; a reload adds places and never removes one (a retired folder's run still writes).
	placesMu   sync.RWMutex
	places     map[string]*place
	unprepared []string // the places New registered, made ready by Run
	health     health

	gate     *gate
	stages   []*stage
	byStep   map[store.Step]*stage
	pollWake chan struct{}

	agentMu sync.Mutex
	agents  map[string]*agentState

	started time.Time // when Run began: an earlier daemon's run start cannot have lasted longer

	pollMu  sync.Mutex
	polling map[int64]struct{} // runs claimed by this poll round (Shared), kept leased by the heartbeat

	runsMu     sync.Mutex
	activeRuns int

	progMu   sync.Mutex
	progress map[int64]Progress
}

// Progress is the in-memory transfer state of a job, for status displays.
type Progress struct {
	Phase string // "hashing", "uploading", "downloading"
	Done  int64
	Total int64
}

// New validates the options and prepares a Pipeline; it starts nothing.
func New(opts Options) (*Pipeline, error) {
	if opts.Store == nil || opts.Client == nil {
		return nil, errors.New("pipeline: Store and Client are required")
	}
	if opts.Owner == "" {
		return nil, errors.New("pipeline: Owner is required")
	}
	if len(opts.Folders) == 0 {
		return nil, errors.New("pipeline: no folders")
	}
	setDefault(&opts.PollInterval, DefaultPollInterval)
	setDefault(&opts.Lease, 60*time.Second)
	setDefault(&opts.AuthRecheck, 30*time.Second)
	setDefault(&opts.ReconcileAfter, DefaultReconcileAfter)
	setDefault(&opts.ClaimEvery, time.Second)
	setDefault(&opts.Recheck, DefaultRecheck)
	setDefault(&opts.MaxRetryAfter, DefaultMaxRetryAfter)
	setDefault(&opts.Retry.Base, DefaultRetryBase)
	setDefault(&opts.Retry.Max, DefaultRetryMax)
	setDefaultInt(&opts.Retry.MaxAttempts, DefaultRetryAttempts)
	setDefaultInt(&opts.Limits.Hashes, 2)
	setDefaultInt(&opts.Limits.Uploads, DefaultUploads)
	setDefaultInt(&opts.Limits.Starts, 2)
	setDefaultInt(&opts.Limits.ActiveRuns, DefaultActiveRuns)
	setDefaultInt(&opts.Limits.Downloads, DefaultDownloads)
	if opts.UploadAPI == "" {
		opts.UploadAPI = mosaic.UploadsAPI
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	p := &Pipeline{
		opts:       opts,
		log:        opts.Logger,
		st:         opts.Store,
		api:        opts.Client,
		retired:    make(map[string]*Folder),
		places:     make(map[string]*place),
		now:        opts.Now,
		budgetWake: make(chan struct{}, 1),
		pollWake:   make(chan struct{}, 1),
		agents:     make(map[string]*agentState),
		progress:   make(map[int64]Progress),
		polling:    make(map[int64]struct{}),
	}
	folders, err := folderSet(opts.Folders)
	if err != nil {
		return nil, err
	}
	p.folders = folders
	p.budget = newRunBudget(opts.MaxRunsPerDay, folders)
	p.unprepared = p.addPlaces(folders)
	p.gate = newGate(p.now)
	p.buildStages()
	return p, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

func setDefaultInt(n *int, v int) {
	if *n <= 0 {
		*n = v
	}
}

// Run works until ctx ends. On return every in-flight step has stopped at a safe point: jobs
// resume from their last committed step at the next start.
func (p *Pipeline) Run(ctx context.Context) error {
	p.started = p.now()
	if n, err := p.st.ReleaseOwner(ctx, p.opts.Owner); err != nil {
		return fmt.Errorf("take back unfinished jobs: %w", err)
	} else if n > 0 {
		p.log.Info("resuming unfinished jobs from the last run", "jobs", n)
	}
	if err := p.countActiveRuns(ctx); err != nil {
		return err
	}
	if err := p.preparePlaces(p.unprepared); err != nil {
		return err
	}
	p.checkHealth()
	if err := p.loadRunStarts(ctx); err != nil {
		return err
	}
	p.cleanStaleTemps(ctx)
	p.resumeReturnedFolders(ctx)

	var wg sync.WaitGroup
	for _, s := range p.stages {
		wg.Go(func() { s.loop(ctx) })
	}
	wg.Go(func() { p.healthLoop(ctx) })
	wg.Go(func() { p.budgetLoop(ctx) })
	wg.Go(func() { p.pollLoop(ctx) })
	wg.Go(func() { p.heartbeatLoop(ctx) })
	wg.Go(func() { p.authLoop(ctx) })
	wg.Wait()
	return nil
}

func (p *Pipeline) countActiveRuns(ctx context.Context) error {
	n := 0
	for _, step := range []store.Step{store.StepStartingRun, store.StepRunStarted} {
		jobs, err := p.st.OpenAtStep(ctx, step)
		if err != nil {
			return fmt.Errorf("count active runs: %w", err)
		}
		n += len(jobs)
	}
	p.runsMu.Lock()
	p.activeRuns = n
	p.runsMu.Unlock()
	return nil
}

// FileReady records a finished file. A file already known by (folder, path, size, mtime) is
// ignored, so rescans and restarts never queue a file twice.
func (p *Pipeline) FileReady(ctx context.Context, f File) error {
	return p.FilesReady(ctx, []File{f})
}

// FilesReady is FileReady for a burst of files, recorded in one database write.
// A file of a folder that is not configured (removed by a reload) is left alone: the folder
// takes no new files, and its watcher finds the file again if the folder comes back.
func (p *Pipeline) FilesReady(ctx context.Context, files []File) error {
	ns := make([]store.NewJob, 0, len(files))
	for _, f := range files {
		folder, ok := p.folder(f.Folder)
		if !ok {
			p.log.Debug("file of a folder no longer configured; left alone", "folder", f.Folder, "path", f.Rel)
			continue
		}
		n := store.NewJob{
			Folder: f.Folder, RelPath: f.Rel, Size: f.Size, ModTime: f.ModTime,
			FileID: f.FileID, AgentID: folder.AgentID,
		}
		if f.Hold != "" {
			n.Status, n.Reason = store.StatusWaiting, f.Hold
		}
		ns = append(ns, n)
	}
	if len(ns) == 0 {
		return nil
	}
	jobs, created, err := p.st.AddJobs(ctx, ns, p.now())
	if err != nil {
		return fmt.Errorf("record %d found file(s): %w", len(ns), err)
	}
	added := false
	for i, job := range jobs {
		if !created[i] {
			continue
		}
		added = true
		if job.Status == store.StatusWaiting {
			p.log.Info("new file, held", "job", job.ID, "folder", p.folderName(&job), "path", job.RelPath, "size", job.Size, "reason", job.LastError)
		} else {
			p.log.Info("new file", "job", job.ID, "folder", p.folderName(&job), "path", job.RelPath, "size", job.Size)
		}
		p.retireIncomplete(ctx, job)
	}
	if added {
		p.wake(store.StepFound)
	}
	return nil
}

// FileIncomplete records a file that never became ready (still being written, no moov box,
// unreadable, empty) so that status shows it; it is not uploaded.
func (p *Pipeline) FileIncomplete(ctx context.Context, f File, reason string) error {
	folder, ok := p.folder(f.Folder)
	if !ok {
		return nil // the folder was removed: it takes no new files
	}
	job, created, err := p.st.AddJob(ctx, store.NewJob{
		Folder: f.Folder, RelPath: f.Rel, Size: f.Size, ModTime: f.ModTime,
		FileID: f.FileID, AgentID: folder.AgentID, Status: store.StatusAttention, Reason: "not uploaded: " + reason,
	}, p.now())
	if err != nil {
		return fmt.Errorf("record %s: %w", f.Path, err)
	}
	if created {
		p.log.Warn("file is not complete; not uploading it", "job", job.ID, "folder", folder.Name, "path", f.Rel, "reason", reason)
	}
	return nil
}

// retireIncomplete marks older "not complete" records of the same path as superseded once a
// complete version of the file arrived.
func (p *Pipeline) retireIncomplete(ctx context.Context, newer store.Job) {
	jobs, err := p.st.JobsAt(ctx, newer.Folder, newer.RelPath)
	if err != nil {
		p.log.Warn("list jobs for path", "path", newer.RelPath, "err", err)
		return
	}
	for i := range jobs {
		j := &jobs[i]
		if j.ID == newer.ID || j.Status != store.StatusAttention || j.Step != store.StepFound {
			continue
		}
		j.Status = store.StatusSkipped
		j.Note = fmt.Sprintf("superseded by job %d (the file is complete now)", newer.ID)
		if err := p.st.Save(ctx, j, j.Note); err != nil {
			p.log.Warn("retire incomplete record", "job", j.ID, "err", err)
		}
	}
}

// Progress returns a snapshot of in-flight transfers by job id.
func (p *Pipeline) Progress() map[int64]Progress {
	p.progMu.Lock()
	defer p.progMu.Unlock()
	out := make(map[int64]Progress, len(p.progress))
	for k, v := range p.progress {
		out[k] = v
	}
	return out
}

func (p *Pipeline) setProgress(id int64, pr Progress) {
	p.progMu.Lock()
	p.progress[id] = pr
	p.progMu.Unlock()
}

func (p *Pipeline) clearProgress(id int64) {
	p.progMu.Lock()
	delete(p.progress, id)
	p.progMu.Unlock()
}

// WakePoller makes the poller check runs now (e.g. after a webhook said a run finished).
func (p *Pipeline) WakePoller() {
	select {
	case p.pollWake <- struct{}{}:
	default:
	}
}

// Paused reports why work is paused, or "" when it is not.
func (p *Pipeline) Paused() string { return p.gate.reason() }
