package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// cachedStepFilters: Claim statements for up to this many steps are prepared at Open (there are
// ten steps); longer step lists are prepared per call.
const cachedStepFilters = 10

// writeStatements are the statements the write pool prepares at Open.
func writeStatements() []string {
	qs := []string{insertJobSQL, jobByIdentitySQL, insertEventSQL, saveJobSQL}
	for n := 0; n <= cachedStepFilters; n++ {
		qs = append(qs, dueQuery(n))
	}
	return qs
}

// dueQuery is the due-work SELECT of Claim for nSteps step filters (0 = any step). The literal
// "open = 1" lets SQLite use the partial index jobs_due; ORDER BY (next_attempt_at, id) follows
// that index (it carries the rowid), so no sort is needed. Arguments: now, now, steps..., limit.
func dueQuery(nSteps int) string {
	q := "SELECT " + jobColumns + " FROM jobs WHERE open = 1 AND next_attempt_at <= ? AND (owner = '' OR lease_until < ?)"
	if nSteps > 0 {
		q += " AND step IN (" + placeholders(nSteps) + ")"
	}
	return q + " ORDER BY next_attempt_at, id LIMIT ?"
}

// Claim takes up to limit due jobs for owner in one IMMEDIATE transaction: no other writer, in
// this process or another, can claim between the SELECT and the UPDATE.
func (s *SQLite) Claim(ctx context.Context, owner string, steps []Step, now time.Time, lease time.Duration, limit int) ([]Job, error) {
	if s.w == nil {
		return nil, ErrReadOnly
	}
	if owner == "" {
		return nil, errors.New("claim: owner is required")
	}
	if limit <= 0 {
		return nil, nil
	}
	nowMS := toMillis(now)
	until := toMillis(now.Add(lease))

	args := make([]any, 0, len(steps)+3)
	args = append(args, nowMS, nowMS)
	for _, st := range steps {
		args = append(args, st)
	}
	args = append(args, limit)

	// Most calls find nothing due. Asking the read pool first keeps those calls off the single
	// write connection, which every step's commit needs. A stale answer only delays a claim to
	// the caller's next try; the IMMEDIATE transaction below stays the authority.
	if !s.anyDue(ctx, steps, args[:len(args)-1]) {
		return nil, nil
	}

	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	defer tx.Rollback()

	// One cached statement per number of steps (a handful); the UPDATE below varies with the
	// number of ids and is not cached.
	due, err := s.ws.inTx(ctx, tx, dueQuery(len(steps)))
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	rows, err := due.QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	var jobs []Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("claim: %w", err)
		}
		jobs = append(jobs, j)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	if len(jobs) == 0 {
		return nil, nil
	}

	ids := make([]any, 0, len(jobs)+2)
	ids = append(ids, owner, until)
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	if _, err := tx.ExecContext(ctx,
		"UPDATE jobs SET owner = ?, lease_until = ? WHERE id IN ("+placeholders(len(jobs))+")", ids...); err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("claim: commit: %w", err)
	}
	for i := range jobs {
		jobs[i].Owner = owner
		jobs[i].LeaseUntil = fromMillis(until)
	}
	return jobs, nil
}

// anyDue reports whether the read pool sees a due job (true on error: let Claim decide).
func (s *SQLite) anyDue(ctx context.Context, steps []Step, args []any) bool {
	st, err := s.rs.get(ctx, dueExistsQuery(len(steps)))
	if err != nil {
		return true
	}
	var one int
	err = st.QueryRowContext(ctx, args...).Scan(&one)
	return !errors.Is(err, sql.ErrNoRows)
}

// dueExistsQuery is dueQuery's WHERE clause as an existence check. Arguments: now, now, steps...
func dueExistsQuery(nSteps int) string {
	q := "SELECT 1 FROM jobs WHERE open = 1 AND next_attempt_at <= ? AND (owner = '' OR lease_until < ?)"
	if nSteps > 0 {
		q += " AND step IN (" + placeholders(nSteps) + ")"
	}
	return q + " LIMIT 1"
}

// Renew extends the lease of the given jobs still owned by owner; jobs lost meanwhile are skipped
// (the next Save of such a job reports ErrLost), and so are jobs released by a Save with a zero
// LeaseUntil: a heartbeat racing with a hand-over must not lock the job away from the next claim.
func (s *SQLite) Renew(ctx context.Context, owner string, ids []int64, until time.Time) error {
	if s.w == nil {
		return ErrReadOnly
	}
	if owner == "" {
		return errors.New("renew: owner is required")
	}
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, 0, len(ids)+2)
	args = append(args, toMillis(until), owner)
	for _, id := range ids {
		args = append(args, id)
	}
	_, err := s.w.ExecContext(ctx,
		"UPDATE jobs SET lease_until = ? WHERE owner = ? AND lease_until > 0 AND id IN ("+placeholders(len(ids))+")", args...)
	if err != nil {
		return fmt.Errorf("renew %d leases: %w", len(ids), err)
	}
	return nil
}

// releaseSQL ends leases without touching anything else (no event: nothing happened to the job).
const releaseSQL = "UPDATE jobs SET lease_until = 0 WHERE owner = ? AND id IN "

// Release ends owner's leases of the given jobs; jobs owner lost meanwhile are skipped.
func (s *SQLite) Release(ctx context.Context, owner string, ids []int64) error {
	if s.w == nil {
		return ErrReadOnly
	}
	if owner == "" {
		return errors.New("release: owner is required")
	}
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, owner)
	for _, id := range ids {
		args = append(args, id)
	}
	if _, err := s.w.ExecContext(ctx, releaseSQL+"("+placeholders(len(ids))+")", args...); err != nil {
		return fmt.Errorf("release %d jobs: %w", len(ids), err)
	}
	return nil
}

// ReleaseOwner frees every job held by owner and returns how many there were.
func (s *SQLite) ReleaseOwner(ctx context.Context, owner string) (int, error) {
	if s.w == nil {
		return 0, ErrReadOnly
	}
	if owner == "" {
		return 0, errors.New("release: owner is required")
	}
	res, err := s.w.ExecContext(ctx, "UPDATE jobs SET owner = '', lease_until = 0 WHERE owner = ? AND owner <> ''", owner)
	if err != nil {
		return 0, fmt.Errorf("release jobs of %q: %w", owner, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("release jobs of %q: %w", owner, err)
	}
	return int(n), nil
}
