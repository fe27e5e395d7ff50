package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The instance registry: SQL shared by both stores (SQLite placeholders; Postgres rebinds them).
const (
	registerInstanceSQL = `INSERT INTO instances (id, host, pid, version, config_path, started_at, heartbeat_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, version = excluded.version,
	config_path = excluded.config_path, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at`
	heartbeatInstanceSQL = "UPDATE instances SET heartbeat_at = ? WHERE id = ?"
	removeInstanceSQL    = "DELETE FROM instances WHERE id = ?"
	pruneInstancesSQL    = "DELETE FROM instances WHERE heartbeat_at < ?"
	listInstancesSQL     = `SELECT id, host, pid, version, config_path, started_at, heartbeat_at FROM instances
ORDER BY started_at DESC, id`
	// Held jobs of registered instances: served by the partial index on owner.
	heldJobsSQL = `SELECT owner, id FROM jobs WHERE owner <> '' AND lease_until >= ?
	AND owner IN (SELECT id FROM instances) ORDER BY owner, id`
)

func checkInstance(in Instance) error {
	if in.ID == "" || in.Host == "" {
		return errors.New("register instance: id and host are required")
	}
	return nil
}

func scanInstance(sc scanner) (Instance, error) {
	var in Instance
	var started, beat int64
	if err := sc.Scan(&in.ID, &in.Host, &in.PID, &in.Version, &in.ConfigPath, &started, &beat); err != nil {
		return Instance{}, err
	}
	in.StartedAt, in.HeartbeatAt = fromMillis(started), fromMillis(beat)
	return in, nil
}

// attachHeld fills each instance's Jobs from (owner, id) pairs.
func attachHeld(instances []Instance, held map[string][]int64) {
	for i := range instances {
		instances[i].Jobs = held[instances[i].ID]
	}
}

// RegisterInstance records (or replaces) a running daemon.
func (s *SQLite) RegisterInstance(ctx context.Context, in Instance, now time.Time) error {
	if s.w == nil {
		return ErrReadOnly
	}
	if err := checkInstance(in); err != nil {
		return err
	}
	ms := toMillis(now)
	if _, err := s.w.ExecContext(ctx, registerInstanceSQL, in.ID, in.Host, in.PID, in.Version, in.ConfigPath, ms, ms); err != nil {
		return fmt.Errorf("register instance %s: %w", in.ID, err)
	}
	return nil
}

// HeartbeatInstance records that instance id is alive at now.
func (s *SQLite) HeartbeatInstance(ctx context.Context, id string, now time.Time) error {
	if s.w == nil {
		return ErrReadOnly
	}
	res, err := s.w.ExecContext(ctx, heartbeatInstanceSQL, toMillis(now), id)
	if err == nil {
		err = rowsChanged(res.RowsAffected())
	}
	if err != nil {
		return fmt.Errorf("heartbeat of instance %s: %w", id, err)
	}
	return nil
}

// rowsChanged turns "no row changed" into ErrNotFound.
func rowsChanged(n int64, err error) error {
	if err == nil && n == 0 {
		return ErrNotFound
	}
	return err
}

// RemoveInstance forgets instance id.
func (s *SQLite) RemoveInstance(ctx context.Context, id string) error {
	if s.w == nil {
		return ErrReadOnly
	}
	if _, err := s.w.ExecContext(ctx, removeInstanceSQL, id); err != nil {
		return fmt.Errorf("remove instance %s: %w", id, err)
	}
	return nil
}

// PruneInstances forgets instances not heard from since cutoff.
func (s *SQLite) PruneInstances(ctx context.Context, cutoff time.Time) (int, error) {
	if s.w == nil {
		return 0, ErrReadOnly
	}
	res, err := s.w.ExecContext(ctx, pruneInstancesSQL, toMillis(cutoff))
	if err != nil {
		return 0, fmt.Errorf("prune instances: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune instances: %w", err)
	}
	return int(n), nil
}

// Instances lists the registered instances with the jobs each holds at now.
func (s *SQLite) Instances(ctx context.Context, now time.Time) ([]Instance, error) {
	rows, err := s.r.QueryContext(ctx, listInstancesSQL)
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	defer rows.Close()
	var out []Instance
	for rows.Next() {
		in, err := scanInstance(rows)
		if err != nil {
			return nil, fmt.Errorf("list instances: %w", err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	held, err := s.r.QueryContext(ctx, heldJobsSQL, toMillis(now))
	if err != nil {
		return nil, fmt.Errorf("list held jobs: %w", err)
	}
	defer held.Close()
	m := map[string][]int64{}
	for held.Next() {
		var owner string
		var id int64
		if err := held.Scan(&owner, &id); err != nil {
			return nil, fmt.Errorf("list held jobs: %w", err)
		}
		m[owner] = append(m[owner], id)
	}
	if err := held.Err(); err != nil {
		return nil, fmt.Errorf("list held jobs: %w", err)
	}
	attachHeld(out, m)
	return out, nil
}
