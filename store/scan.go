package store

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// jobColumns is the column list every job SELECT uses, in scanJob order.
const jobColumns = `id, folder, rel_path, size, mtime_ns, file_id, agent_id, content_hash, step, status,
	attempts, next_attempt_at, last_error, note, upload_api, video_id, run_id, run_start_at, run_status,
	run_message, outputs, owner, lease_until, created_at, updated_at, run_window_from, run_window_to, run_params,
	copy_of`

// splitColumns returns the names of a column list like jobColumns.
func splitColumns(columns string) []string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = strings.TrimSpace(c)
	}
	return cols
}

// qualified prefixes each column of a list like jobColumns with table.
func qualified(table, columns string) string {
	cols := splitColumns(columns)
	for i, c := range cols {
		cols[i] = table + "." + c
	}
	return strings.Join(cols, ", ")
}

type scanner interface{ Scan(dest ...any) error }

func scanJob(sc scanner) (Job, error) {
	var j Job
	var mtimeNS, next, runStart, lease, created, updated, winFrom, winTo int64
	var outputs string
	err := sc.Scan(&j.ID, &j.Folder, &j.RelPath, &j.Size, &mtimeNS, &j.FileID, &j.AgentID, &j.ContentHash,
		&j.Step, &j.Status, &j.Attempts, &next, &j.LastError, &j.Note, &j.UploadAPI, &j.VideoID, &j.RunID,
		&runStart, &j.RunStatus, &j.RunMessage, &outputs, &j.Owner, &lease, &created, &updated,
		&winFrom, &winTo, &j.RunParams, &j.CopyOf)
	if err != nil {
		return Job{}, err
	}
	j.ModTime = fromNanos(mtimeNS)
	j.NextAttemptAt = fromMillis(next)
	j.RunStartAt = fromMillis(runStart)
	j.LeaseUntil = fromMillis(lease)
	j.CreatedAt = fromMillis(created)
	j.UpdatedAt = fromMillis(updated)
	j.RunWindowFrom = fromMillis(winFrom)
	j.RunWindowTo = fromMillis(winTo)
	if j.Outputs, err = decodeOutputs(outputs); err != nil {
		return Job{}, fmt.Errorf("job %d: %w", j.ID, err)
	}
	return j, nil
}

// Times are integers so they compare in SQL and port to PostgreSQL as BIGINT. The zero time is 0
// (time.Time{}.UnixNano() would overflow). Values come back in UTC.

func toMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func toNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func encodeOutputs(o []Output) (string, error) {
	if len(o) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(o)
	if err != nil {
		return "", fmt.Errorf("encode outputs: %w", err)
	}
	return string(b), nil
}

// decodeOutputs returns nil for an empty list so a job without outputs round-trips as nil.
func decodeOutputs(s string) ([]Output, error) {
	if s == "" || s == "[]" || s == "null" {
		return nil, nil
	}
	var o []Output
	if err := json.Unmarshal([]byte(s), &o); err != nil {
		return nil, fmt.Errorf("decode outputs: %w", err)
	}
	return o, nil
}

func openFlag(s Status) int {
	if s.Open() {
		return 1
	}
	return 0
}

// placeholders returns "?, ?, ?" for n arguments.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}
