package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// copyBatch is how many jobs (with their events) Copy moves per read.
const copyBatch = 1000

// ErrTargetNotEmpty is returned by Copy when the target store already has jobs.
var ErrTargetNotEmpty = errors.New("store: the target already has jobs")

// CopyStats says what Copy moved.
type CopyStats struct {
	Jobs, Events, Meta int
}

// Copy copies every job with its whole history, and every meta value, from one store into
// another that has no jobs yet (ErrTargetNotEmpty otherwise), e.g. a single host's SQLite file
// into the PostgreSQL database several hosts will share. Job and event ids are kept, so the
// ids people saw in `status` still name the same jobs. Owners and leases are not copied: the
// daemon that held them does not work on the target. The source is read in one snapshot and the
// target written in one transaction: a failed copy leaves the target as it was. Stop the
// daemons of both stores first; the source is only read.
func Copy(ctx context.Context, to, from Store) (CopyStats, error) {
	src, ok := from.(copySource)
	if !ok {
		return CopyStats{}, fmt.Errorf("copy: cannot read %T", from)
	}
	dst, ok := to.(copyTarget)
	if !ok {
		return CopyStats{}, fmt.Errorf("copy: cannot write %T", to)
	}
	snap, err := src.snapshot(ctx)
	if err != nil {
		return CopyStats{}, fmt.Errorf("copy: read the source: %w", err)
	}
	defer snap.close()
	imp, err := dst.beginImport(ctx)
	if err != nil {
		return CopyStats{}, fmt.Errorf("copy: %w", err)
	}
	defer imp.rollback()

	var stats CopyStats
	var after int64
	for {
		jobs, err := snap.jobs(ctx, after, copyBatch)
		if err != nil {
			return CopyStats{}, fmt.Errorf("copy: read jobs after %d: %w", after, err)
		}
		if len(jobs) == 0 {
			break
		}
		last := jobs[len(jobs)-1].ID
		events, err := snap.events(ctx, after, last)
		if err != nil {
			return CopyStats{}, fmt.Errorf("copy: read the history of jobs %d to %d: %w", after+1, last, err)
		}
		for i := range jobs {
			jobs[i].Owner, jobs[i].LeaseUntil = "", time.Time{}
		}
		if err := imp.add(ctx, jobs, events); err != nil {
			return CopyStats{}, fmt.Errorf("copy: write jobs %d to %d: %w", jobs[0].ID, last, err)
		}
		stats.Jobs += len(jobs)
		stats.Events += len(events)
		after = last
	}
	meta, err := snap.meta(ctx)
	if err != nil {
		return CopyStats{}, fmt.Errorf("copy: read meta: %w", err)
	}
	for _, k := range notCopiedMeta {
		delete(meta, k)
	}
	if err := imp.setMeta(ctx, meta); err != nil {
		return CopyStats{}, fmt.Errorf("copy: write meta: %w", err)
	}
	stats.Meta = len(meta)
	if err := imp.commit(ctx); err != nil {
		return CopyStats{}, fmt.Errorf("copy: commit: %w", err)
	}
	return stats, nil
}

// notCopiedMeta are meta keys that belong to the store or its host, not to the jobs: the
// target's own identity, and the id of the daemon that last used the source.
var notCopiedMeta = []string{"store_id", "instance_id"}

// copySource is a store Copy can read; copyTarget one it can write.
type copySource interface {
	snapshot(ctx context.Context) (sourceSnapshot, error)
}

type copyTarget interface {
	// beginImport starts the one transaction of a copy, refusing a target that has jobs.
	beginImport(ctx context.Context) (jobImport, error)
}

// sourceSnapshot reads one consistent state of a store.
type sourceSnapshot interface {
	jobs(ctx context.Context, afterID int64, limit int) ([]Job, error) // ascending id
	events(ctx context.Context, afterJobID, lastJobID int64) ([]Event, error)
	meta(ctx context.Context) (map[string]string, error)
	close()
}

type jobImport interface {
	add(ctx context.Context, jobs []Job, events []Event) error
	setMeta(ctx context.Context, meta map[string]string) error
	commit(ctx context.Context) error
	rollback() // no-op after commit
}

// SQL of the copy, shared by both stores (SQLite placeholders).
const (
	exportJobsSQL   = "SELECT " + jobColumns + " FROM jobs WHERE id > ? ORDER BY id LIMIT ?"
	exportEventsSQL = "SELECT id, job_id, at, step, status, message FROM events WHERE job_id > ? AND job_id <= ? ORDER BY id"
	exportMetaSQL   = "SELECT key, value FROM meta"
	importEventSQL  = "INSERT INTO events (id, job_id, at, step, status, message) VALUES (?, ?, ?, ?, ?, ?)"
	importMetaSQL   = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)

var (
	// importColumns are the columns of importJobSQL, for PostgreSQL's COPY.
	importColumns = append(splitColumns(jobColumns), "open")
	importJobSQL  = "INSERT INTO jobs (" + jobColumns + ", open) VALUES (?" +
		strings.Repeat(", ?", len(importColumns)-1) + ")"
)

// jobRow is j as the values of importJobSQL.
func jobRow(j Job) ([]any, error) {
	outputs, err := encodeOutputs(j.Outputs)
	if err != nil {
		return nil, fmt.Errorf("job %d: %w", j.ID, err)
	}
	return []any{j.ID, j.Folder, j.RelPath, j.Size, toNanos(j.ModTime), j.FileID, j.AgentID, j.ContentHash,
		string(j.Step), string(j.Status), j.Attempts, toMillis(j.NextAttemptAt), j.LastError, j.Note, j.UploadAPI,
		j.VideoID, j.RunID, toMillis(j.RunStartAt), j.RunStatus, j.RunMessage, outputs, j.Owner,
		toMillis(j.LeaseUntil), toMillis(j.CreatedAt), toMillis(j.UpdatedAt), toMillis(j.RunWindowFrom),
		toMillis(j.RunWindowTo), j.RunParams, j.CopyOf, openFlag(j.Status)}, nil
}

func eventRow(e Event) []any {
	return []any{e.ID, e.JobID, toMillis(e.At), string(e.Step), string(e.Status), e.Message}
}

func scanEvent(sc scanner) (Event, error) {
	var e Event
	var at int64
	err := sc.Scan(&e.ID, &e.JobID, &at, &e.Step, &e.Status, &e.Message)
	e.At = fromMillis(at)
	return e, err
}
