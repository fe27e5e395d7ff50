package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// t0 is a fixed "now" for tests; whole milliseconds so stored times compare equal.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func tempDB(t testing.TB) string { return filepath.Join(t.TempDir(), "jobs.db") }

func openAt(t testing.TB, path string, opts Options) *SQLite {
	t.Helper()
	s, err := Open(testCtx(t), path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openTest(t testing.TB) *SQLite {
	t.Helper()
	s := openAt(t, tempDB(t), Options{})
	s.now = func() time.Time { return t0 }
	return s
}

func newJob(folder, rel string) NewJob {
	return NewJob{Folder: folder, RelPath: rel, Size: 1000, ModTime: t0.Add(-time.Hour), FileID: "1:2", AgentID: "agent-1"}
}

func mustAdd(t testing.TB, s *SQLite, n NewJob, now time.Time) Job {
	t.Helper()
	j, _, err := s.AddJob(testCtx(t), n, now)
	if err != nil {
		t.Fatalf("AddJob %s: %v", n.RelPath, err)
	}
	return j
}

// addN adds n jobs in folder "f" named v000.mov..., due at t0+i ms.
func addN(t testing.TB, s *SQLite, n int) []Job {
	t.Helper()
	jobs := make([]Job, n)
	for i := range n {
		jobs[i] = mustAdd(t, s, newJob("f", fmt.Sprintf("v%03d.mov", i)), t0.Add(time.Duration(i)*time.Millisecond))
	}
	return jobs
}

func mustSave(t testing.TB, s *SQLite, j *Job, msg string) {
	t.Helper()
	if err := s.Save(testCtx(t), j, msg); err != nil {
		t.Fatalf("Save job %d: %v", j.ID, err)
	}
}

func mustGet(t testing.TB, s *SQLite, id int64) *Job {
	t.Helper()
	j, err := s.Get(testCtx(t), id)
	if err != nil {
		t.Fatalf("Get %d: %v", id, err)
	}
	return j
}

func ids(jobs []Job) []int64 {
	out := make([]int64, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}
