package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Reads use the read-only pool r: they never wait for a writer (WAL) and see committed data only.

const (
	getJobSQL        = "SELECT " + jobColumns + " FROM jobs WHERE id = ?"
	jobsAtSQL        = "SELECT " + jobColumns + " FROM jobs WHERE folder = ? AND rel_path = ? ORDER BY id DESC"
	findByContentSQL = "SELECT " + jobColumns + " FROM jobs WHERE folder = ? AND content_hash = ? AND id <> ?" +
		" AND status IN ('active', 'retrying', 'waiting', 'done') ORDER BY id DESC LIMIT 1"
	runIDTakenSQL = "SELECT 1 FROM jobs WHERE run_id = ? LIMIT 1"
	openAtStepSQL = "SELECT " + jobColumns + " FROM jobs WHERE open = 1 AND step = ? ORDER BY next_attempt_at, id"
	historySQL    = "SELECT id, job_id, at, step, status, message FROM events WHERE job_id = ? ORDER BY id"
)

// Get returns the job with id, or an error wrapping ErrNotFound.
func (s *SQLite) Get(ctx context.Context, id int64) (*Job, error) {
	j, err := s.queryOne(ctx, getJobSQL, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("get job %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get job %d: %w", id, err)
	}
	return &j, nil
}

// JobsAt lists all jobs for (folder, rel) newest first.
func (s *SQLite) JobsAt(ctx context.Context, folder, rel string) ([]Job, error) {
	jobs, err := s.queryJobs(ctx, jobsAtSQL, true, folder, rel)
	if err != nil {
		return nil, fmt.Errorf("jobs at %s: %w", rel, err)
	}
	return jobs, nil
}

// FindByContent returns the newest job in folder with this content hash, other than exceptID,
// that is done or open, or nil.
func (s *SQLite) FindByContent(ctx context.Context, folder, hash string, exceptID int64) (*Job, error) {
	if hash == "" {
		return nil, nil // unsettled jobs share the empty hash; they are not duplicates
	}
	j, err := s.queryOne(ctx, findByContentSQL, folder, hash, exceptID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find by content %s: %w", hash, err)
	}
	return &j, nil
}

// RunIDTaken reports whether any job holds runID.
func (s *SQLite) RunIDTaken(ctx context.Context, runID string) (bool, error) {
	if runID == "" {
		return false, nil
	}
	var one int
	st, err := s.rs.get(ctx, runIDTakenSQL)
	if err == nil {
		err = st.QueryRowContext(ctx, runID).Scan(&one)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("run id taken %s: %w", runID, err)
	}
	return true, nil
}

// OpenAtStep lists open jobs at step, oldest NextAttemptAt first.
func (s *SQLite) OpenAtStep(ctx context.Context, step Step) ([]Job, error) {
	jobs, err := s.queryJobs(ctx, openAtStepSQL, true, step)
	if err != nil {
		return nil, fmt.Errorf("open jobs at %s: %w", step, err)
	}
	return jobs, nil
}

// List returns jobs matching f, newest UpdatedAt first.
func (s *SQLite) List(ctx context.Context, f Filter) ([]Job, error) {
	q, args := listQuery(f)
	jobs, err := s.queryJobs(ctx, q, false, args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return jobs, nil
}

func listQuery(f Filter) (string, []any) {
	var where []string
	var args []any
	if len(f.Status) > 0 {
		where = append(where, "status IN ("+placeholders(len(f.Status))+")")
		for _, st := range f.Status {
			args = append(args, st)
		}
	}
	if f.Folder != "" {
		where = append(where, "folder = ?")
		args = append(args, f.Folder)
	}
	if p := strings.TrimRight(f.Path, "/"); p != "" {
		// "a/b" or anything under "a/b/": a byte range instead of LIKE, which is case-insensitive in
		// SQLite and treats _ and % in names as wildcards. '0' is the byte after '/'.
		where = append(where, "(rel_path = ? OR (rel_path >= ? AND rel_path < ?))")
		args = append(args, p, p+"/", p+"0")
	}
	q := "SELECT " + jobColumns + " FROM jobs"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	offset := max(f.Offset, 0)
	q += " ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?"
	args = append(args, limit, offset)
	return q, args
}

// History returns the events of job id, oldest first.
func (s *SQLite) History(ctx context.Context, id int64) ([]Event, error) {
	rows, err := s.query(ctx, historySQL, id)
	if err != nil {
		return nil, fmt.Errorf("history of job %d: %w", id, err)
	}
	defer rows.Close()
	var events []Event
	for rows.Next() {
		var e Event
		var at int64
		if err := rows.Scan(&e.ID, &e.JobID, &at, &e.Step, &e.Status, &e.Message); err != nil {
			return nil, fmt.Errorf("history of job %d: %w", id, err)
		}
		e.At = fromMillis(at)
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history of job %d: %w", id, err)
	}
	return events, nil
}

// Counts returns the number of jobs per status.
func (s *SQLite) Counts(ctx context.Context) (map[Status]int, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT status, count(*) FROM jobs GROUP BY status")
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	defer rows.Close()
	counts := map[Status]int{}
	for rows.Next() {
		var st Status
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count jobs: %w", err)
		}
		counts[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	return counts, nil
}

// CountsByFolder returns the number of jobs per folder and status.
func (s *SQLite) CountsByFolder(ctx context.Context) (map[string]map[Status]int, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT folder, status, count(*) FROM jobs GROUP BY folder, status")
	if err != nil {
		return nil, fmt.Errorf("count jobs by folder: %w", err)
	}
	defer rows.Close()
	counts := map[string]map[Status]int{}
	for rows.Next() {
		var folder string
		var st Status
		var n int
		if err := rows.Scan(&folder, &st, &n); err != nil {
			return nil, fmt.Errorf("count jobs by folder: %w", err)
		}
		if counts[folder] == nil {
			counts[folder] = map[Status]int{}
		}
		counts[folder][st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count jobs by folder: %w", err)
	}
	return counts, nil
}

// query runs a read through a cached statement. Only fixed query texts are cached; List builds
// its own text and uses queryJobs with cached=false.
func (s *SQLite) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.rs.get(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (s *SQLite) queryOne(ctx context.Context, query string, args ...any) (Job, error) {
	st, err := s.rs.get(ctx, query)
	if err != nil {
		return Job{}, err
	}
	return scanJob(st.QueryRowContext(ctx, args...))
}

func (s *SQLite) queryJobs(ctx context.Context, query string, cached bool, args ...any) ([]Job, error) {
	var rows *sql.Rows
	var err error
	if cached {
		rows, err = s.query(ctx, query, args...)
	} else {
		rows, err = s.r.QueryContext(ctx, query, args...)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var jobs []Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, rows.Err()
}

const runsStartedSinceSQL = "SELECT folder, run_start_at FROM jobs WHERE run_start_at >= ? AND run_start_at > 0 ORDER BY run_start_at, id"

// RunsStartedSince lists run starts at or after since, oldest first. It reads every job row
// once (no index on run_start_at): the daemon calls it at start, the CLI for status and plan.
func (s *SQLite) RunsStartedSince(ctx context.Context, since time.Time) ([]RunStart, error) {
	rows, err := s.r.QueryContext(ctx, runsStartedSinceSQL, toMillis(since))
	if err != nil {
		return nil, fmt.Errorf("list run starts: %w", err)
	}
	defer rows.Close()
	var out []RunStart
	for rows.Next() {
		var rs RunStart
		var at int64
		if err := rows.Scan(&rs.Folder, &at); err != nil {
			return nil, fmt.Errorf("list run starts: %w", err)
		}
		rs.At = fromMillis(at)
		out = append(out, rs)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list run starts: %w", err)
	}
	return out, nil
}
