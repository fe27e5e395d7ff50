package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"
)

// txBeginner is *sql.DB or *sql.Conn: Save runs on the pool, SaveDurable on a pinned connection.
type txBeginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

const insertJobSQL = `INSERT INTO jobs (folder, rel_path, size, mtime_ns, file_id, agent_id, step, status, open,
	last_error, next_attempt_at, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (folder, rel_path, size, mtime_ns) DO NOTHING`

const insertEventSQL = `INSERT INTO events (job_id, at, step, status, message) VALUES (?, ?, ?, ?, ?)`

const jobByIdentitySQL = "SELECT " + jobColumns + " FROM jobs WHERE folder = ? AND rel_path = ? AND size = ? AND mtime_ns = ?"

func (s *SQLite) addEvent(ctx context.Context, tx *sql.Tx, jobID, atMS int64, step Step, status Status, msg string) error {
	st, err := s.ws.inTx(ctx, tx, insertEventSQL)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, jobID, atMS, step, status, msg)
	return err
}

// AddJob records a found file, idempotently on (folder, rel_path, size, mtime).
func (s *SQLite) AddJob(ctx context.Context, n NewJob, now time.Time) (Job, bool, error) {
	jobs, created, err := s.AddJobs(ctx, []NewJob{n}, now)
	if err != nil {
		return Job{}, false, err
	}
	return jobs[0], created[0], nil
}

// AddJobs is AddJob for several files in one write transaction: a burst of dropped files takes
// the single write connection once instead of once per file.
func (s *SQLite) AddJobs(ctx context.Context, ns []NewJob, now time.Time) ([]Job, []bool, error) {
	if s.w == nil {
		return nil, nil, ErrReadOnly
	}
	jobs := make([]Job, len(ns))
	created := make([]bool, len(ns))
	var todo []int // files not known yet
	for i, n := range ns {
		if n.Folder == "" || n.RelPath == "" {
			return nil, nil, fmt.Errorf("add job: folder and rel path are required")
		}
		// Fast path for rescans: a known file is found on the read pool without taking the
		// write lock. Safe because a job's identity never changes and jobs are never deleted.
		job, err := s.queryOne(ctx, jobByIdentitySQL, n.Folder, n.RelPath, n.Size, toNanos(n.ModTime))
		switch {
		case err == nil:
			jobs[i] = job
		case errors.Is(err, sql.ErrNoRows):
			todo = append(todo, i)
		default:
			return nil, nil, fmt.Errorf("add job %s: %w", n.RelPath, err)
		}
	}
	if len(todo) == 0 {
		return jobs, created, nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("add jobs: %w", err)
	}
	defer tx.Rollback()
	ms := toMillis(now)
	for _, i := range todo {
		job, inserted, err := s.insertJob(ctx, tx, ns[i], ms)
		if err != nil {
			return nil, nil, fmt.Errorf("add job %s: %w", ns[i].RelPath, err)
		}
		jobs[i], created[i] = job, inserted
	}
	if err := tx.Commit(); err != nil {
		return nil, nil, fmt.Errorf("add jobs: commit: %w", err)
	}
	return jobs, created, nil
}

// insertJob inserts one found file unless its identity exists, with its "found" event.
func (s *SQLite) insertJob(ctx context.Context, tx *sql.Tx, n NewJob, ms int64) (Job, bool, error) {
	mtime := toNanos(n.ModTime)
	status, msg, lastError := StatusActive, "found", ""
	if n.Status != "" {
		status, msg, lastError = n.Status, "found: "+n.Reason, n.Reason
	}
	insert, err := s.ws.inTx(ctx, tx, insertJobSQL)
	if err != nil {
		return Job{}, false, err
	}
	res, err := insert.ExecContext(ctx, n.Folder, n.RelPath, n.Size, mtime, n.FileID, n.AgentID,
		StepFound, status, openFlag(status), lastError, ms, ms, ms)
	if err != nil {
		return Job{}, false, err
	}
	inserted, err := res.RowsAffected()
	if err != nil {
		return Job{}, false, err
	}
	byIdentity, err := s.ws.inTx(ctx, tx, jobByIdentitySQL)
	if err != nil {
		return Job{}, false, err
	}
	job, err := scanJob(byIdentity.QueryRowContext(ctx, n.Folder, n.RelPath, n.Size, mtime))
	if err != nil {
		return Job{}, false, fmt.Errorf("read back: %w", err)
	}
	if inserted == 0 {
		return job, false, nil // added meanwhile by another writer
	}
	if err := s.addEvent(ctx, tx, job.ID, ms, StepFound, status, msg); err != nil {
		return Job{}, false, fmt.Errorf("event: %w", err)
	}
	return job, true, nil
}

const saveJobSQL = `UPDATE jobs SET agent_id = ?, content_hash = ?, step = ?, status = ?, open = ?, attempts = ?,
	next_attempt_at = ?, last_error = ?, note = ?, upload_api = ?, video_id = ?, run_id = ?, run_start_at = ?,
	run_status = ?, run_message = ?, outputs = ?, owner = ?, lease_until = ?, updated_at = ?,
	run_window_from = ?, run_window_to = ?, run_params = ?, copy_of = ?
WHERE id = ? AND (owner = ? OR owner = '')`

// Save writes the mutable fields of job and one history event in one IMMEDIATE transaction.
// The commit is durable against a crash of the process; with synchronous=NORMAL the last commits
// may be rolled back (never corrupted) by a power loss. Use SaveDurable where that matters.
func (s *SQLite) Save(ctx context.Context, job *Job, msg string) error {
	if s.w == nil {
		return ErrReadOnly
	}
	return s.save(ctx, s.w, job, msg)
}

// SaveDurable is Save whose commit has reached stable storage when it returns, for the marker
// written right before a run is started (a run lost by a power loss would be started again and
// billed twice).
//
// How: on a pinned connection (the only write connection), PRAGMA synchronous=FULL makes SQLite
// fsync the WAL at this commit, and fullfsync=1 makes that an F_FULLFSYNC on macOS, where fsync
// alone does not reach the platter. Both are restored afterwards even if the save fails or ctx is
// cancelled; if restoring fails the connection is discarded so no later Save inherits the setting.
// Durability against power loss cannot be unit-tested; tests check that it writes like Save.
func (s *SQLite) SaveDurable(ctx context.Context, job *Job, msg string) (err error) {
	if s.w == nil {
		return ErrReadOnly
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("save job %d durably: %w", job.ID, err)
	}
	defer conn.Close()
	defer func() {
		// Restore even when ctx is done: the connection goes back to the pool either way.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, rerr := conn.ExecContext(rctx, "PRAGMA synchronous = NORMAL"); rerr != nil {
			s.discard(conn, rerr)
			return
		}
		if _, rerr := conn.ExecContext(rctx, "PRAGMA fullfsync = 0"); rerr != nil {
			s.discard(conn, rerr)
		}
	}()
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = FULL"); err != nil {
		return fmt.Errorf("save job %d durably: synchronous=FULL: %w", job.ID, err)
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA fullfsync = 1"); err != nil {
		return fmt.Errorf("save job %d durably: fullfsync: %w", job.ID, err)
	}
	return s.save(ctx, conn, job, msg)
}

// discard closes a connection whose pragmas could not be restored instead of pooling it.
func (s *SQLite) discard(conn *sql.Conn, cause error) {
	s.log.Warn("store: could not restore synchronous=NORMAL; dropping the connection", "err", cause)
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
}

func (s *SQLite) save(ctx context.Context, db txBeginner, job *Job, msg string) error {
	return s.saveWhere(ctx, db, job, msg, "")
}

// reopenCondition keeps Reopen from overwriting a job that changed since it was read.
const reopenCondition = " AND status IN ('failed', 'attention', 'skipped', 'waiting') AND updated_at = ?"

// Reopen saves a job read while it was failed, skipped, needing attention or waiting, only if it
// still is and has not changed since (its UpdatedAt): two retries at once, or a retry (an approval)
// racing with the daemon, cannot undo each other's work. A changed job gives ErrChanged.
func (s *SQLite) Reopen(ctx context.Context, job *Job, msg string) error {
	if s.w == nil {
		return ErrReadOnly
	}
	return s.saveWhere(ctx, s.w, job, msg, reopenCondition)
}

// unchangedCondition keeps SaveIfUnchanged from overwriting a job written since it was read.
const unchangedCondition = " AND updated_at = ?"

// SaveIfUnchanged saves job only if it has not changed since it was read (its UpdatedAt), else
// ErrChanged.
func (s *SQLite) SaveIfUnchanged(ctx context.Context, job *Job, msg string) error {
	if s.w == nil {
		return ErrReadOnly
	}
	return s.saveWhere(ctx, s.w, job, msg, unchangedCondition)
}

func (s *SQLite) saveWhere(ctx context.Context, db txBeginner, job *Job, msg, cond string) error {
	outputs, err := encodeOutputs(job.Outputs)
	if err != nil {
		return fmt.Errorf("save job %d: %w", job.ID, err)
	}
	now := s.now()
	ms := toMillis(now)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save job %d: %w", job.ID, err)
	}
	defer tx.Rollback()
	update, err := s.ws.inTx(ctx, tx, saveJobSQL+cond)
	if err != nil {
		return fmt.Errorf("save job %d: %w", job.ID, err)
	}
	args := []any{job.AgentID, job.ContentHash, job.Step, job.Status,
		openFlag(job.Status), job.Attempts, toMillis(job.NextAttemptAt), job.LastError, job.Note, job.UploadAPI,
		job.VideoID, job.RunID, toMillis(job.RunStartAt), job.RunStatus, job.RunMessage, outputs, job.Owner,
		toMillis(job.LeaseUntil), ms, toMillis(job.RunWindowFrom), toMillis(job.RunWindowTo), job.RunParams, job.CopyOf,
		job.ID, job.Owner}
	if cond != "" {
		args = append(args, toMillis(job.UpdatedAt))
	}
	res, err := update.ExecContext(ctx, args...)
	if err != nil {
		return fmt.Errorf("save job %d: %w", job.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("save job %d: %w", job.ID, err)
	}
	if n == 0 {
		var owner string
		err := tx.QueryRowContext(ctx, "SELECT owner FROM jobs WHERE id = ?", job.ID).Scan(&owner)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("save job %d: %w", job.ID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("save job %d: %w", job.ID, err)
		}
		if cond != "" {
			return fmt.Errorf("save job %d: %w", job.ID, ErrChanged)
		}
		return fmt.Errorf("save job %d as %q (held by %q): %w", job.ID, job.Owner, owner, ErrLost)
	}
	if err := s.addEvent(ctx, tx, job.ID, ms, job.Step, job.Status, msg); err != nil {
		return fmt.Errorf("save job %d: event: %w", job.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save job %d: commit: %w", job.ID, err)
	}
	job.UpdatedAt = fromMillis(ms)
	return nil
}
