package store

import (
	"fmt"
	"testing"
	"time"
)

const (
	benchRows   = 100_000
	benchDone   = 90_000 // finished jobs: not in jobs_due
	benchBusy   = 1_000  // BenchmarkClaim/busy: open, earliest due, held elsewhere with a live lease
	benchLeaseT = int64(1) << 50
)

// populate fills the jobs table with benchRows rows in one statement: mostly finished jobs,
// busy due but owned elsewhere (the claim scan must skip them), the rest due and free.
func populate(b *testing.B, s *SQLite) { populateBusy(b, s, 0) }

func populateBusy(b *testing.B, s *SQLite, busy int) {
	b.Helper()
	base := t0.UnixMilli()
	_, err := s.w.ExecContext(testCtx(b), `
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
INSERT INTO jobs (folder, rel_path, size, mtime_ns, agent_id, content_hash, step, status, open, next_attempt_at,
	owner, lease_until, created_at, updated_at)
SELECT 'f', 'dir/v' || i || '.mov', 1000, i, 'agent', 'hash' || i,
	CASE WHEN i <= ? THEN 'done' ELSE 'found' END,
	CASE WHEN i <= ? THEN 'done' ELSE 'active' END,
	CASE WHEN i <= ? THEN 0 ELSE 1 END,
	CASE WHEN i <= ? THEN ? + i ELSE ? + i - ? END,
	CASE WHEN i > ? AND i <= ? THEN 'busy' ELSE '' END,
	CASE WHEN i > ? AND i <= ? THEN ? ELSE 0 END,
	?, ?
FROM n`, benchRows, benchDone, benchDone, benchDone, benchDone, base, base, benchDone,
		benchDone, benchDone+busy, benchDone, benchDone+busy, benchLeaseT, base, base)
	if err != nil {
		b.Fatalf("populate: %v", err)
	}
}

// BenchmarkClaim claims 10 jobs per op from 100k rows of which 10k are open; in "busy" the 1k
// earliest due are held by another worker, so each claim walks past them. The lease is negative
// so the same due jobs are claimable again next op: a steady state.
func BenchmarkClaim(b *testing.B) {
	for _, busy := range []int{0, benchBusy} {
		name := "free"
		if busy > 0 {
			name = "busy"
		}
		b.Run(name, func(b *testing.B) {
			s := openSQLite(b)
			populateBusy(b, s, busy)
			ctx := testCtx(b)
			now := t0.Add(time.Hour)
			for b.Loop() {
				got, err := s.Claim(ctx, "bench", []Step{StepFound, StepSettled}, now, -time.Millisecond, 10)
				if err != nil || len(got) != 10 {
					b.Fatalf("Claim = %d jobs, %v", len(got), err)
				}
			}
		})
	}
}

// BenchmarkAddJobExisting re-adds a known file (every rescan does this for every file).
func BenchmarkAddJobExisting(b *testing.B) {
	s := openSQLite(b)
	populate(b, s)
	ctx := testCtx(b)
	n := NewJob{Folder: "f", RelPath: "dir/v12345.mov", Size: 1000, ModTime: time.Unix(0, 12345)}
	for b.Loop() {
		if _, created, err := s.AddJob(ctx, n, t0); err != nil || created {
			b.Fatalf("AddJob = created %v, %v", created, err)
		}
	}
}

func BenchmarkAddJobNew(b *testing.B) {
	s := openSQLite(b)
	ctx := testCtx(b)
	i := 0
	for b.Loop() {
		i++
		if _, created, err := s.AddJob(ctx, newJob("f", fmt.Sprintf("new/%d.mov", i)), t0); err != nil || !created {
			b.Fatalf("AddJob = created %v, %v", created, err)
		}
	}
}

func benchSave(b *testing.B, durable bool) {
	s := openSQLite(b)
	populate(b, s)
	ctx := testCtx(b)
	j := fullJob(mustAdd(b, s, newJob("f", "bench.mov"), t0))
	j.Owner = "bench"
	save := s.Save
	if durable {
		save = s.SaveDurable
	}
	for b.Loop() {
		j.Attempts++
		j.NextAttemptAt = j.NextAttemptAt.Add(time.Millisecond)
		if err := save(ctx, &j, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSave: one job row update plus one event, synchronous=NORMAL in WAL, 100k rows.
func BenchmarkSave(b *testing.B) { benchSave(b, false) }

// BenchmarkSaveDurable: the same with an fsync of the WAL at commit (depends on the disk).
func BenchmarkSaveDurable(b *testing.B) { benchSave(b, true) }

func BenchmarkGet(b *testing.B) {
	s := openSQLite(b)
	populate(b, s)
	ctx := testCtx(b)
	for b.Loop() {
		if _, err := s.Get(ctx, 95_000); err != nil {
			b.Fatal(err)
		}
	}
}
