package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// snapshot reads the database in one REPEATABLE READ transaction: one view of every table
// however long the copy takes.
func (s *Postgres) snapshot(ctx context.Context) (sourceSnapshot, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	return pgSnapshot{tx}, nil
}

type pgSnapshot struct{ tx pgx.Tx }

func (x pgSnapshot) close() { x.tx.Rollback(context.Background()) }

func (x pgSnapshot) jobs(ctx context.Context, afterID int64, limit int) ([]Job, error) {
	return collectJobs(x.tx.Query(ctx, rebind(exportJobsSQL), afterID, limit))
}

func (x pgSnapshot) events(ctx context.Context, afterJobID, lastJobID int64) ([]Event, error) {
	rows, err := x.tx.Query(ctx, rebind(exportEventsSQL), afterJobID, lastJobID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) { return scanEvent(r) })
}

func (x pgSnapshot) meta(ctx context.Context) (map[string]string, error) {
	rows, err := x.tx.Query(ctx, exportMetaSQL)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, rows.Err()
}

// beginImport starts the copy's transaction. The lock keeps daemons that already use this
// database from adding jobs until the copy commits (they wait; they do not fail).
func (s *Postgres) beginImport(ctx context.Context) (jobImport, error) {
	if s.readOnly {
		return nil, ErrReadOnly
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	var n int
	if _, err = tx.Exec(ctx, "LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE"); err == nil {
		err = tx.QueryRow(ctx, "SELECT count(*) FROM jobs").Scan(&n)
	}
	if err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	if n > 0 {
		tx.Rollback(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("%s has %d jobs: %w", s.name, n, ErrTargetNotEmpty)
	}
	return &pgImport{tx: tx}, nil
}

type pgImport struct{ tx pgx.Tx }

// add writes rows with COPY, the fastest way into PostgreSQL; ids are given, so the identity
// sequences are moved past them at commit.
func (m *pgImport) add(ctx context.Context, jobs []Job, events []Event) error {
	rows := make([][]any, len(jobs))
	for i, j := range jobs {
		row, err := jobRow(j)
		if err != nil {
			return err
		}
		rows[i] = row
	}
	if _, err := m.tx.CopyFrom(ctx, pgx.Identifier{"jobs"}, importColumns, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	rows = rows[:0]
	for _, e := range events {
		rows = append(rows, eventRow(e))
	}
	if _, err := m.tx.CopyFrom(ctx, pgx.Identifier{"events"},
		[]string{"id", "job_id", "at", "step", "status", "message"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	return nil
}

func (m *pgImport) setMeta(ctx context.Context, meta map[string]string) error {
	for k, v := range meta {
		if _, err := m.tx.Exec(ctx, rebind(importMetaSQL), k, v); err != nil {
			return fmt.Errorf("meta %q: %w", k, err)
		}
	}
	return nil
}

func (m *pgImport) commit(ctx context.Context) error {
	for _, table := range []string{"jobs", "events"} {
		// The next generated id follows the largest copied one.
		q := fmt.Sprintf("SELECT setval(pg_get_serial_sequence('%[1]s', 'id'), coalesce(max(id), 0) + 1, false) FROM %[1]s", table)
		if _, err := m.tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("move the %s id sequence: %w", table, err)
		}
	}
	return m.tx.Commit(ctx)
}

func (m *pgImport) rollback() { m.tx.Rollback(context.Background()) }
