package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// rebind turns the ? placeholders of the SQL shared with SQLite into PostgreSQL's $1, $2...
// None of the shared queries has a ? inside a string literal.
func rebind(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// pgExecer is a pool or a transaction.
type pgExecer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

var (
	pgJobByIdentity = rebind(jobByIdentitySQL)
	// pgInsertJob inserts a found file with its "found" event in one statement, or nothing if
	// its identity exists (found by another host meanwhile).
	pgInsertJob = `WITH ins AS (
	INSERT INTO jobs (folder, rel_path, size, mtime_ns, file_id, agent_id, step, status, open,
		last_error, next_attempt_at, created_at, updated_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $11)
	ON CONFLICT (folder, rel_path, size, mtime_ns) DO NOTHING
	RETURNING ` + jobColumns + `
), ev AS (
	INSERT INTO events (job_id, at, step, status, message) SELECT id, $11, $7, $8, $12 FROM ins
)
SELECT ` + jobColumns + ` FROM ins`
)

// AddJob records a found file, idempotently on (folder, rel_path, size, mtime).
func (s *Postgres) AddJob(ctx context.Context, n NewJob, now time.Time) (Job, bool, error) {
	jobs, created, err := s.AddJobs(ctx, []NewJob{n}, now)
	if err != nil {
		return Job{}, false, err
	}
	return jobs[0], created[0], nil
}

// AddJobs records several found files in one transaction.
func (s *Postgres) AddJobs(ctx context.Context, ns []NewJob, now time.Time) ([]Job, []bool, error) {
	if s.readOnly {
		return nil, nil, ErrReadOnly
	}
	jobs := make([]Job, len(ns))
	created := make([]bool, len(ns))
	var todo []int
	for i, n := range ns {
		if n.Folder == "" || n.RelPath == "" {
			return nil, nil, fmt.Errorf("add job: folder and rel path are required")
		}
		// Rescans find known files: look them up without a write.
		job, err := scanJob(s.pool.QueryRow(ctx, pgJobByIdentity, n.Folder, n.RelPath, n.Size, toNanos(n.ModTime)))
		switch {
		case err == nil:
			jobs[i] = job
		case errors.Is(err, pgx.ErrNoRows):
			todo = append(todo, i)
		default:
			return nil, nil, fmt.Errorf("add job %s: %w", n.RelPath, err)
		}
	}
	if len(todo) == 0 {
		return jobs, created, nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		ms := toMillis(now)
		for _, i := range todo {
			job, inserted, err := s.insertJob(ctx, tx, ns[i], ms)
			if err != nil {
				return fmt.Errorf("add job %s: %w", ns[i].RelPath, err)
			}
			jobs[i], created[i] = job, inserted
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("add jobs: %w", err)
	}
	return jobs, created, nil
}

func (s *Postgres) insertJob(ctx context.Context, tx pgx.Tx, n NewJob, ms int64) (Job, bool, error) {
	mtime := toNanos(n.ModTime)
	status, msg, lastError := StatusActive, "found", ""
	if n.Status != "" {
		status, msg, lastError = n.Status, "found: "+n.Reason, n.Reason
	}
	job, err := scanJob(tx.QueryRow(ctx, pgInsertJob, n.Folder, n.RelPath, n.Size, mtime, n.FileID, n.AgentID,
		string(StepFound), string(status), openFlag(status), lastError, ms, msg))
	if err == nil {
		return job, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Job{}, false, err
	}
	// It exists: found by another host, or earlier in this batch. READ COMMITTED: this
	// statement sees the row the conflicting insert committed.
	job, err = scanJob(tx.QueryRow(ctx, pgJobByIdentity, n.Folder, n.RelPath, n.Size, mtime))
	if err != nil {
		return Job{}, false, fmt.Errorf("read back: %w", err)
	}
	return job, false, nil
}

// pgSaveJob updates a job and appends its event in one statement: one round trip. $25 is the
// event message; cond may add conditions with $26 and on.
func pgSaveJob(cond string) string {
	return `WITH u AS (
	UPDATE jobs SET agent_id = $1, content_hash = $2, step = $3, status = $4, open = $5, attempts = $6,
		next_attempt_at = $7, last_error = $8, note = $9, upload_api = $10, video_id = $11, run_id = $12,
		run_start_at = $13, run_status = $14, run_message = $15, outputs = $16, owner = $17, lease_until = $18,
		updated_at = $19, run_window_from = $20, run_window_to = $21, run_params = $22, copy_of = $23
	WHERE id = $24 AND (owner = $17 OR owner = '')` + cond + `
	RETURNING id, step, status
)
INSERT INTO events (job_id, at, step, status, message) SELECT id, $19, step, status, $25 FROM u`
}

// saveKind picks the condition of a save: plain, Reopen's or SaveIfUnchanged's.
type saveKind int

const (
	savePlain saveKind = iota
	saveReopen
	saveUnchanged
)

var pgSaveSQL = map[saveKind]string{
	savePlain:     pgSaveJob(""),
	saveReopen:    pgSaveJob(" AND status IN ('failed', 'attention', 'skipped', 'waiting') AND updated_at = $26"),
	saveUnchanged: pgSaveJob(" AND updated_at = $26"),
}

// Save writes the mutable fields of job and one history event atomically. The commit is as
// durable as the server's synchronous_commit makes it (on by default).
func (s *Postgres) Save(ctx context.Context, job *Job, msg string) error {
	if s.readOnly {
		return ErrReadOnly
	}
	return s.saveNow(ctx, job, msg, savePlain)
}

// saveNow is save in a transaction of its own.
func (s *Postgres) saveNow(ctx context.Context, job *Job, msg string, kind saveKind) error {
	ms, err := s.save(ctx, s.pool, job, msg, kind)
	if err != nil {
		return err
	}
	job.UpdatedAt = fromMillis(ms)
	return nil
}

// SaveDurable is Save with synchronous_commit forced on for its transaction, whatever the
// server's default: it returns once the commit is flushed to the server's disk (and to
// synchronous standbys, if the server has them).
func (s *Postgres) SaveDurable(ctx context.Context, job *Job, msg string) error {
	if s.readOnly {
		return ErrReadOnly
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("save job %d durably: %w", job.ID, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = on"); err != nil {
		return fmt.Errorf("save job %d durably: %w", job.ID, err)
	}
	ms, err := s.save(ctx, tx, job, msg, savePlain)
	if err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("save job %d durably: commit: %w", job.ID, err)
	}
	job.UpdatedAt = fromMillis(ms)
	return nil
}

// Reopen saves a job read while failed, skipped, needing attention or waiting, only if it still
// is and is unchanged since it was read, else ErrChanged.
func (s *Postgres) Reopen(ctx context.Context, job *Job, msg string) error {
	if s.readOnly {
		return ErrReadOnly
	}
	return s.saveNow(ctx, job, msg, saveReopen)
}

// SaveIfUnchanged saves job only if it has not changed since it was read (its UpdatedAt), else
// ErrChanged.
func (s *Postgres) SaveIfUnchanged(ctx context.Context, job *Job, msg string) error {
	if s.readOnly {
		return ErrReadOnly
	}
	return s.saveNow(ctx, job, msg, saveUnchanged)
}

// save runs the update of Save (Reopen, SaveIfUnchanged) on db and returns the UpdatedAt it wrote.
func (s *Postgres) save(ctx context.Context, db pgExecer, job *Job, msg string, kind saveKind) (int64, error) {
	outputs, err := encodeOutputs(job.Outputs)
	if err != nil {
		return 0, fmt.Errorf("save job %d: %w", job.ID, err)
	}
	ms := toMillis(s.now())
	args := []any{job.AgentID, job.ContentHash, string(job.Step), string(job.Status),
		openFlag(job.Status), job.Attempts, toMillis(job.NextAttemptAt), job.LastError, job.Note, job.UploadAPI,
		job.VideoID, job.RunID, toMillis(job.RunStartAt), job.RunStatus, job.RunMessage, outputs, job.Owner,
		toMillis(job.LeaseUntil), ms, toMillis(job.RunWindowFrom), toMillis(job.RunWindowTo), job.RunParams, job.CopyOf,
		job.ID, msg}
	if kind != savePlain {
		args = append(args, toMillis(job.UpdatedAt))
	}
	q := pgSaveSQL[kind]
	tag, err := db.Exec(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("save job %d: %w", job.ID, err)
	}
	if tag.RowsAffected() > 0 {
		return ms, nil
	}
	var owner string
	err = db.QueryRow(ctx, "SELECT owner FROM jobs WHERE id = $1", job.ID).Scan(&owner)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, fmt.Errorf("save job %d: %w", job.ID, ErrNotFound)
	case err != nil:
		return 0, fmt.Errorf("save job %d: %w", job.ID, err)
	case kind != savePlain:
		return 0, fmt.Errorf("save job %d: %w", job.ID, ErrChanged)
	}
	return 0, fmt.Errorf("save job %d as %q (held by %q): %w", job.ID, job.Owner, owner, ErrLost)
}

// GetMeta returns the value stored under key, or "" if unset.
func (s *Postgres) GetMeta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, "SELECT value FROM meta WHERE key = $1", key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("get meta %q: %w", key, err)
	}
	return v, nil
}

// SetMeta stores value under key, replacing any previous value.
func (s *Postgres) SetMeta(ctx context.Context, key, value string) error {
	if s.readOnly {
		return ErrReadOnly
	}
	_, err := s.pool.Exec(ctx,
		"INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
		key, value)
	if err != nil {
		return fmt.Errorf("set meta %q: %w", key, err)
	}
	return nil
}
