package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgClaimSQL takes due jobs in one statement: the CTE locks up to $4 due rows, oldest due first,
// skipping rows another claimer has locked (SKIP LOCKED), so claimers on several hosts never
// wait for each other and never take the same job. A row changed by a concurrent commit is
// re-checked against the WHERE clause before it is locked. The partial index jobs_due serves
// the scan. Arguments: owner, lease until, now, limit, steps (text[]; only with withSteps).
func pgClaimSQL(withSteps bool) string {
	steps := ""
	if withSteps {
		steps = " AND step = ANY($5)"
	}
	return `WITH due AS (
	SELECT id FROM jobs
	WHERE open = 1 AND next_attempt_at <= $3 AND (owner = '' OR lease_until < $3)` + steps + `
	ORDER BY next_attempt_at, id
	LIMIT $4
	FOR UPDATE SKIP LOCKED
)
UPDATE jobs SET owner = $1, lease_until = $2 FROM due WHERE jobs.id = due.id
RETURNING ` + qualified("jobs", jobColumns)
}

var (
	pgClaimAny   = pgClaimSQL(false)
	pgClaimSteps = pgClaimSQL(true)
)

// Claim atomically takes up to limit due jobs for owner, oldest due first.
func (s *Postgres) Claim(ctx context.Context, owner string, steps []Step, now time.Time, lease time.Duration, limit int) ([]Job, error) {
	if s.readOnly {
		return nil, ErrReadOnly
	}
	if owner == "" {
		return nil, errors.New("claim: owner is required")
	}
	if limit <= 0 {
		return nil, nil
	}
	nowMS := toMillis(now)
	args := []any{owner, toMillis(now.Add(lease)), nowMS, limit}
	q := pgClaimAny
	if len(steps) > 0 {
		names := make([]string, len(steps))
		for i, st := range steps {
			names[i] = string(st)
		}
		q = pgClaimSteps
		args = append(args, names)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Job, error) { return scanJob(r) })
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	// RETURNING has no order.
	sort.Slice(jobs, func(a, b int) bool {
		if !jobs[a].NextAttemptAt.Equal(jobs[b].NextAttemptAt) {
			return jobs[a].NextAttemptAt.Before(jobs[b].NextAttemptAt)
		}
		return jobs[a].ID < jobs[b].ID
	})
	if len(jobs) == 0 {
		return nil, nil
	}
	return jobs, nil
}

// Renew extends the lease of the given jobs still owned by owner (see SQLite.Renew).
func (s *Postgres) Renew(ctx context.Context, owner string, ids []int64, until time.Time) error {
	if s.readOnly {
		return ErrReadOnly
	}
	if owner == "" {
		return errors.New("renew: owner is required")
	}
	if len(ids) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx,
		"UPDATE jobs SET lease_until = $1 WHERE owner = $2 AND lease_until > 0 AND id = ANY($3)",
		toMillis(until), owner, ids)
	if err != nil {
		return fmt.Errorf("renew %d leases: %w", len(ids), err)
	}
	return nil
}

// Release ends owner's leases of the given jobs; jobs owner lost meanwhile are skipped.
func (s *Postgres) Release(ctx context.Context, owner string, ids []int64) error {
	if s.readOnly {
		return ErrReadOnly
	}
	if owner == "" {
		return errors.New("release: owner is required")
	}
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, "UPDATE jobs SET lease_until = 0 WHERE owner = $1 AND id = ANY($2)", owner, ids); err != nil {
		return fmt.Errorf("release %d jobs: %w", len(ids), err)
	}
	return nil
}

// ReleaseOwner frees every job held by owner and returns how many there were.
func (s *Postgres) ReleaseOwner(ctx context.Context, owner string) (int, error) {
	if s.readOnly {
		return 0, ErrReadOnly
	}
	if owner == "" {
		return 0, errors.New("release: owner is required")
	}
	tag, err := s.pool.Exec(ctx, "UPDATE jobs SET owner = '', lease_until = 0 WHERE owner = $1 AND owner <> ''", owner)
	if err != nil {
		return 0, fmt.Errorf("release jobs of %q: %w", owner, err)
	}
	return int(tag.RowsAffected()), nil
}
