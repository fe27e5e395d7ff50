package store

import (
	"context"
	"database/sql"
	"fmt"
)

// snapshot reads the file in one read transaction: WAL keeps its view fixed while a writer
// goes on.
func (s *SQLite) snapshot(ctx context.Context) (sourceSnapshot, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	return sqliteSnapshot{tx}, nil
}

type sqliteSnapshot struct{ tx *sql.Tx }

func (x sqliteSnapshot) close() { x.tx.Rollback() }

func (x sqliteSnapshot) jobs(ctx context.Context, afterID int64, limit int) ([]Job, error) {
	rows, err := x.tx.QueryContext(ctx, exportJobsSQL, afterID, limit)
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

func (x sqliteSnapshot) events(ctx context.Context, afterJobID, lastJobID int64) ([]Event, error) {
	rows, err := x.tx.QueryContext(ctx, exportEventsSQL, afterJobID, lastJobID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var events []Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	return events, rows.Err()
}

func (x sqliteSnapshot) meta(ctx context.Context) (map[string]string, error) {
	rows, err := x.tx.QueryContext(ctx, exportMetaSQL)
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

// beginImport starts an IMMEDIATE transaction on the write connection: no other writer, in
// this process or another, can add a job between the emptiness check and the commit.
func (s *SQLite) beginImport(ctx context.Context) (jobImport, error) {
	if s.w == nil {
		return nil, ErrReadOnly
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM jobs").Scan(&n); err != nil {
		tx.Rollback()
		return nil, err
	}
	if n > 0 {
		tx.Rollback()
		return nil, fmt.Errorf("%s has %d jobs: %w", s.path, n, ErrTargetNotEmpty)
	}
	return &sqliteImport{tx: tx}, nil
}

type sqliteImport struct{ tx *sql.Tx }

func (m *sqliteImport) add(ctx context.Context, jobs []Job, events []Event) error {
	insJob, err := m.tx.PrepareContext(ctx, importJobSQL)
	if err != nil {
		return err
	}
	defer insJob.Close()
	for _, j := range jobs {
		row, err := jobRow(j)
		if err != nil {
			return err
		}
		if _, err := insJob.ExecContext(ctx, row...); err != nil {
			return fmt.Errorf("job %d: %w", j.ID, err)
		}
	}
	insEvent, err := m.tx.PrepareContext(ctx, importEventSQL)
	if err != nil {
		return err
	}
	defer insEvent.Close()
	for _, e := range events {
		if _, err := insEvent.ExecContext(ctx, eventRow(e)...); err != nil {
			return fmt.Errorf("event %d of job %d: %w", e.ID, e.JobID, err)
		}
	}
	return nil
}

func (m *sqliteImport) setMeta(ctx context.Context, meta map[string]string) error {
	for k, v := range meta {
		if _, err := m.tx.ExecContext(ctx, importMetaSQL, k, v); err != nil {
			return fmt.Errorf("meta %q: %w", k, err)
		}
	}
	return nil
}

func (m *sqliteImport) commit(ctx context.Context) error { return m.tx.Commit() }
func (m *sqliteImport) rollback()                        { m.tx.Rollback() }
