package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The reads share their SQL with SQLite (read.go); READ COMMITTED: each sees committed data.
var (
	pgGetJob        = rebind(getJobSQL)
	pgJobsAt        = rebind(jobsAtSQL)
	pgFindByContent = rebind(findByContentSQL)
	pgRunIDTaken    = rebind(runIDTakenSQL)
	pgOpenAtStep    = rebind(openAtStepSQL)
	pgHistory       = rebind(historySQL)
)

func collectJobs(rows pgx.Rows, err error) ([]Job, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Job, error) { return scanJob(r) })
}

// Get returns the job with id, or an error wrapping ErrNotFound.
func (s *Postgres) Get(ctx context.Context, id int64) (*Job, error) {
	j, err := scanJob(s.pool.QueryRow(ctx, pgGetJob, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("get job %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get job %d: %w", id, err)
	}
	return &j, nil
}

// JobsAt lists all jobs for (folder, rel) newest first.
func (s *Postgres) JobsAt(ctx context.Context, folder, rel string) ([]Job, error) {
	jobs, err := collectJobs(s.pool.Query(ctx, pgJobsAt, folder, rel))
	if err != nil {
		return nil, fmt.Errorf("jobs at %s: %w", rel, err)
	}
	return jobs, nil
}

// FindByContent returns the newest job in folder with this content hash, other than exceptID,
// that is done or open, or nil.
func (s *Postgres) FindByContent(ctx context.Context, folder, hash string, exceptID int64) (*Job, error) {
	if hash == "" {
		return nil, nil
	}
	j, err := scanJob(s.pool.QueryRow(ctx, pgFindByContent, folder, hash, exceptID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find by content %s: %w", hash, err)
	}
	return &j, nil
}

// RunIDTaken reports whether any job, of any host, holds runID.
func (s *Postgres) RunIDTaken(ctx context.Context, runID string) (bool, error) {
	if runID == "" {
		return false, nil
	}
	var one int
	err := s.pool.QueryRow(ctx, pgRunIDTaken, runID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("run id taken %s: %w", runID, err)
	}
	return true, nil
}

// OpenAtStep lists open jobs at step, oldest NextAttemptAt first.
func (s *Postgres) OpenAtStep(ctx context.Context, step Step) ([]Job, error) {
	jobs, err := collectJobs(s.pool.Query(ctx, pgOpenAtStep, string(step)))
	if err != nil {
		return nil, fmt.Errorf("open jobs at %s: %w", step, err)
	}
	return jobs, nil
}

// List returns jobs matching f, newest UpdatedAt first.
func (s *Postgres) List(ctx context.Context, f Filter) ([]Job, error) {
	q, args := listQuery(f)
	for i, a := range args {
		if st, ok := a.(Status); ok {
			args[i] = string(st)
		}
	}
	jobs, err := collectJobs(s.pool.Query(ctx, rebind(q), args...))
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return jobs, nil
}

// History returns the events of job id, oldest first.
func (s *Postgres) History(ctx context.Context, id int64) ([]Event, error) {
	rows, err := s.pool.Query(ctx, pgHistory, id)
	if err != nil {
		return nil, fmt.Errorf("history of job %d: %w", id, err)
	}
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		var e Event
		var at int64
		err := r.Scan(&e.ID, &e.JobID, &at, &e.Step, &e.Status, &e.Message)
		e.At = fromMillis(at)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("history of job %d: %w", id, err)
	}
	return events, nil
}

// Counts returns the number of jobs per status.
func (s *Postgres) Counts(ctx context.Context) (map[Status]int, error) {
	rows, err := s.pool.Query(ctx, "SELECT status, count(*) FROM jobs GROUP BY status")
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
func (s *Postgres) CountsByFolder(ctx context.Context) (map[string]map[Status]int, error) {
	rows, err := s.pool.Query(ctx, "SELECT folder, status, count(*) FROM jobs GROUP BY folder, status")
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

// RegisterInstance records (or replaces) a running daemon.
func (s *Postgres) RegisterInstance(ctx context.Context, in Instance, now time.Time) error {
	if s.readOnly {
		return ErrReadOnly
	}
	if err := checkInstance(in); err != nil {
		return err
	}
	ms := toMillis(now)
	if _, err := s.pool.Exec(ctx, rebind(registerInstanceSQL), in.ID, in.Host, in.PID, in.Version, in.ConfigPath, ms, ms); err != nil {
		return fmt.Errorf("register instance %s: %w", in.ID, err)
	}
	return nil
}

// HeartbeatInstance records that instance id is alive at now.
func (s *Postgres) HeartbeatInstance(ctx context.Context, id string, now time.Time) error {
	if s.readOnly {
		return ErrReadOnly
	}
	tag, err := s.pool.Exec(ctx, rebind(heartbeatInstanceSQL), toMillis(now), id)
	if err == nil {
		err = rowsChanged(tag.RowsAffected(), nil)
	}
	if err != nil {
		return fmt.Errorf("heartbeat of instance %s: %w", id, err)
	}
	return nil
}

// RemoveInstance forgets instance id.
func (s *Postgres) RemoveInstance(ctx context.Context, id string) error {
	if s.readOnly {
		return ErrReadOnly
	}
	if _, err := s.pool.Exec(ctx, rebind(removeInstanceSQL), id); err != nil {
		return fmt.Errorf("remove instance %s: %w", id, err)
	}
	return nil
}

// PruneInstances forgets instances not heard from since cutoff.
func (s *Postgres) PruneInstances(ctx context.Context, cutoff time.Time) (int, error) {
	if s.readOnly {
		return 0, ErrReadOnly
	}
	tag, err := s.pool.Exec(ctx, rebind(pruneInstancesSQL), toMillis(cutoff))
	if err != nil {
		return 0, fmt.Errorf("prune instances: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// Instances lists the registered instances with the jobs each holds at now.
func (s *Postgres) Instances(ctx context.Context, now time.Time) ([]Instance, error) {
	rows, err := s.pool.Query(ctx, listInstancesSQL)
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Instance, error) { return scanInstance(r) })
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	rows, err = s.pool.Query(ctx, rebind(heldJobsSQL), toMillis(now))
	if err != nil {
		return nil, fmt.Errorf("list held jobs: %w", err)
	}
	defer rows.Close()
	held := map[string][]int64{}
	for rows.Next() {
		var owner string
		var id int64
		if err := rows.Scan(&owner, &id); err != nil {
			return nil, fmt.Errorf("list held jobs: %w", err)
		}
		held[owner] = append(held[owner], id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list held jobs: %w", err)
	}
	attachHeld(out, held)
	return out, nil
}

// RunsStartedSince lists run starts at or after since, oldest first (a scan of the jobs, as in
// SQLite: the daemon calls it at start, the CLI for status and plan).
func (s *Postgres) RunsStartedSince(ctx context.Context, since time.Time) ([]RunStart, error) {
	rows, err := s.pool.Query(ctx, rebind(runsStartedSinceSQL), toMillis(since))
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
