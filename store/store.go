// Package store keeps one row per job (one watched file run through the Mosaic agent) and its
// history, so that a crash, kill -9 or power loss loses nothing and no job runs twice.
//
// The Store interface has two implementations: *SQLite, one file owned by one process (the
// default), and *Postgres, one database shared by several daemons on several hosts (claims with
// FOR UPDATE SKIP LOCKED and leases, run starts serialized per agent by advisory locks).
package store

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Step is how far a job has advanced through the pipeline.
type Step string

const (
	StepFound          Step = "found"
	StepSettled        Step = "settled" // content hash taken
	StepUploaded       Step = "uploaded"
	StepFinalized      Step = "finalized"
	StepStartingRun    Step = "starting_run" // durable marker written BEFORE POST /agent/{id}/run
	StepRunStarted     Step = "run_started"  // run id known; the poller follows it
	StepRunFinished    Step = "run_finished"
	StepOutputsWritten Step = "outputs_written"
	StepSourceHandled  Step = "source_handled"
	StepDone           Step = "done"
)

// Status says whether a job still has work to do and, if not, how it ended.
type Status string

const (
	StatusActive    Status = "active"    // work pending, due at NextAttemptAt
	StatusRetrying  Status = "retrying"  // transient error, waits until NextAttemptAt
	StatusAttention Status = "attention" // a person must act; LastError says why
	StatusFailed    Status = "failed"    // permanent; LastError says why
	StatusDone      Status = "done"
	StatusSkipped   Status = "skipped" // superseded by a newer version of the file, vanished, or duplicate content (Note says which)
	// StatusWaiting is held on purpose until something outside the job changes, LastError says
	// what: a person's approval, the daily run limit, its folder coming back into the
	// configuration. It is not claimed; whoever lifts the hold makes it active again.
	StatusWaiting Status = "waiting"
)

// Open reports whether a job with this status still has work to do (active or retrying).
func (s Status) Open() bool { return s == StatusActive || s == StatusRetrying }

// Output is one result file of a run.
type Output struct {
	Index    int    `json:"index"`
	RenderID string `json:"render_id,omitempty"`
	URL      string `json:"url,omitempty"` // signed URL: stored, never printed
	Path     string `json:"path"`          // slash-separated, relative to the folder's output dir
	Size     int64  `json:"size,omitempty"`
	Written  bool   `json:"written"`
	TempID   string `json:"temp_id,omitempty"` // identity (dev:inode) of the reserved temporary file
}

// Job is one row of the jobs table.
//
// Times come back in UTC. ModTime round-trips exactly (unix nanoseconds); the other times are
// stored as unix milliseconds, so sub-millisecond parts are dropped. The zero time is stored as 0
// and read back as the zero time.
type Job struct {
	ID            int64
	Folder        string // folder key (the configured input path)
	RelPath       string // slash-separated
	Size          int64
	ModTime       time.Time // stored as unix nanoseconds (exact round trip)
	FileID        string
	AgentID       string
	ContentHash   string // sha256 hex; "" until settled
	Step          Step
	Status        Status
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	Note          string
	UploadAPI     string
	VideoID       string
	RunID         string
	RunStartAt    time.Time // when the run start was attempted (this machine's clock)
	// RunWindowFrom and RunWindowTo bound, in Mosaic's clock, when a run created by the last
	// start attempt was stamped (started_at); RunWindowTo is zero while the answer is awaited.
	RunWindowFrom time.Time
	RunWindowTo   time.Time
	RunParams     string // fingerprint of the agent and run parameters of the run (see pipeline)
	CopyOf        int64  // the job whose outputs this job reuses instead of running; 0 = none
	RunStatus     string
	RunMessage    string
	Outputs       []Output // JSON column
	Owner         string
	LeaseUntil    time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Event is one line of a job's history.
type Event struct {
	ID, JobID int64
	At        time.Time
	Step      Step
	Status    Status
	Message   string
}

// NewJob is the identity of a found file.
type NewJob struct {
	Folder, RelPath string
	Size            int64
	ModTime         time.Time
	FileID, AgentID string
	Status          Status // "" => StatusActive; else the job starts in this status (e.g. StatusAttention)
	Reason          string // stored as LastError (and in the "found" event) when Status is set
}

// RunStart is one run start: its job's folder and when it was attempted.
type RunStart struct {
	Folder string
	At     time.Time
}

// Filter selects jobs for List.
type Filter struct {
	Status        []Status // any of; nil = all
	Folder        string   // "" = all
	Path          string   // matches RelPath exactly, or as a folder prefix ("a/b" matches "a/b/c.mov")
	Limit, Offset int      // Limit 0 => 100
}

var (
	ErrNotFound = errors.New("store: job not found")
	ErrLost     = errors.New("store: job is owned by another worker")
	ErrChanged  = errors.New("store: job changed since it was read") // Reopen
	// ErrReadOnly is returned by every write on a store opened with Options.ReadOnly.
	ErrReadOnly = errors.New("store: opened read-only")
)

// Store is what the pipeline and the CLI use; *SQLite and *Postgres behave the same behind it
// (the conformance suite in the tests runs against both).
type Store interface {
	// AddJob records a found file. If a job with the same (folder, rel_path, size, mtime) exists it is
	// returned with created=false and nothing changes. Otherwise it inserts a job at StepFound,
	// StatusActive, due at now, and a history event "found".
	AddJob(ctx context.Context, n NewJob, now time.Time) (job Job, created bool, err error)
	// AddJobs is AddJob for several files at once (one write transaction for the new ones);
	// the results are in the order of ns.
	AddJobs(ctx context.Context, ns []NewJob, now time.Time) (jobs []Job, created []bool, err error)
	// JobsAt lists all jobs for (folder, rel) newest first.
	JobsAt(ctx context.Context, folder, rel string) ([]Job, error)
	// FindByContent returns the newest job in folder with this content hash, other than exceptID,
	// whose status is done, open or waiting (not failed/skipped/attention), or nil.
	FindByContent(ctx context.Context, folder, hash string, exceptID int64) (*Job, error)
	// RunIDTaken reports whether any job holds runID.
	RunIDTaken(ctx context.Context, runID string) (bool, error)
	// Claim atomically takes up to limit open jobs with next_attempt_at <= now whose step is in steps
	// (nil = any) and that are unowned or whose lease expired, oldest due first; sets owner and
	// lease_until = now+lease. Served by a partial index on unfinished jobs.
	Claim(ctx context.Context, owner string, steps []Step, now time.Time, lease time.Duration, limit int) ([]Job, error)
	// Renew extends the lease of the given jobs still owned by owner.
	Renew(ctx context.Context, owner string, ids []int64, until time.Time) error
	// Release ends owner's leases of the given jobs without writing them (owner is kept, as by a
	// Save with a zero LeaseUntil): anyone may claim them at once. Jobs owner lost are skipped.
	Release(ctx context.Context, owner string, ids []int64) error
	// ReleaseOwner clears owner/lease of every job held by owner (daemon start: take back own jobs at once).
	ReleaseOwner(ctx context.Context, owner string) (int, error)
	// Save writes all mutable fields of job (everything except ID, identity columns and CreatedAt;
	// sets UpdatedAt) and appends one history event (job.Step, job.Status, msg) in one IMMEDIATE
	// transaction. It fails with ErrLost unless the stored owner equals job.Owner or is empty.
	Save(ctx context.Context, job *Job, msg string) error
	// Reopen is Save for a job read while failed, skipped, needing attention or waiting (a retry,
	// an approval): it writes only if the job still is and is unchanged since it was read, else
	// ErrChanged.
	Reopen(ctx context.Context, job *Job, msg string) error
	// SaveIfUnchanged is Save only if the job has not changed since it was read (its
	// UpdatedAt), else ErrChanged: for writes from outside the daemon, such as a cancel
	// requested from the command line while the daemon follows the job.
	SaveIfUnchanged(ctx context.Context, job *Job, msg string) error
	// SaveDurable is Save whose commit is on stable storage when it returns (synchronous=FULL for that
	// commit, or an explicit checkpoint/sync). Used right before a run start.
	SaveDurable(ctx context.Context, job *Job, msg string) error
	Get(ctx context.Context, id int64) (*Job, error)        // ErrNotFound
	List(ctx context.Context, f Filter) ([]Job, error)      // newest UpdatedAt first
	History(ctx context.Context, id int64) ([]Event, error) // oldest first
	Counts(ctx context.Context) (map[Status]int, error)
	CountsByFolder(ctx context.Context) (map[string]map[Status]int, error)
	// OpenAtStep lists open jobs at step (the poller uses StepRunStarted), oldest NextAttemptAt first.
	OpenAtStep(ctx context.Context, step Step) ([]Job, error)
	// RunsStartedSince lists the run starts recorded at or after since (jobs whose RunStartAt is
	// set), oldest first: the daily run limit counts them.
	RunsStartedSince(ctx context.Context, since time.Time) ([]RunStart, error)
	GetMeta(ctx context.Context, key string) (string, error) // "" if unset
	SetMeta(ctx context.Context, key, value string) error

	// LockAgent serializes run starts of one agent among every user of the store: it waits until
	// no other holder (in this process or, for a shared database, on any host) holds agentID's
	// lock, or until ctx is done. unlock releases it and may be called more than once. A holder
	// that dies releases its locks with its process (SQLite) or database session (PostgreSQL).
	LockAgent(ctx context.Context, agentID string) (unlock func(), err error)

	// RegisterInstance records (or replaces) a running daemon, with StartedAt and HeartbeatAt
	// set to now. Instance.ID is the owner name its claims use.
	RegisterInstance(ctx context.Context, in Instance, now time.Time) error
	// HeartbeatInstance records that instance id is alive at now; ErrNotFound if it is not
	// registered (pruned meanwhile: register again).
	HeartbeatInstance(ctx context.Context, id string, now time.Time) error
	// RemoveInstance forgets instance id (a clean shutdown); removing an unknown id is no error.
	RemoveInstance(ctx context.Context, id string) error
	// PruneInstances forgets instances whose last heartbeat is before cutoff and returns how many.
	PruneInstances(ctx context.Context, cutoff time.Time) (int, error)
	// Instances lists the registered instances, most recently started first, each with the
	// jobs it holds at now (owned with a lease that has not expired).
	Instances(ctx context.Context, now time.Time) ([]Instance, error)

	Close() error
}

// Instance is one running daemon sharing the store.
type Instance struct {
	ID          string // owner name of its claims
	Host        string
	PID         int
	Version     string
	ConfigPath  string
	StartedAt   time.Time
	HeartbeatAt time.Time
	Jobs        []int64 // held jobs, filled by Instances; ascending
}

// Options configures Open.
type Options struct {
	Logger *slog.Logger // default: discard
	// ReadOnly opens an existing database for reading only (e.g. `mosaic-watch status` while the
	// daemon runs): no migration, every write returns ErrReadOnly.
	ReadOnly bool
	// Password is PostgreSQL's password when it comes from neither the URL, PGPASSWORD nor
	// ~/.pgpass (database.password_file); it overrides them. Ignored by SQLite.
	Password string
}

var _ Store = (*SQLite)(nil)
