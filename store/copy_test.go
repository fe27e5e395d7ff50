package store

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// fillForCopy gives s jobs in several states with histories, one of them held, and meta values.
func fillForCopy(t *testing.T, s Store) {
	t.Helper()
	ctx := testCtx(t)
	jobs := addN(t, s, 25)
	for i, j := range jobs {
		if i%3 == 0 {
			continue // still found, one event
		}
		j = fullJob(j)
		j.Note = fmt.Sprintf("job %d ünï", i)
		mustSave(t, s, &j, "first")
		if i%2 == 0 {
			j.Step, j.Status = StepDone, StatusDone
			mustSave(t, s, &j, "done")
		}
	}
	if got, err := s.Claim(ctx, "old-host", nil, t0.Add(time.Hour), time.Hour, 2); err != nil || len(got) != 2 {
		t.Fatalf("Claim = %v, %v", ids(got), err)
	}
	for k, v := range map[string]string{"a": "1", "shared": "yes"} {
		if err := s.SetMeta(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
}

// checkCopied compares every job, history and meta value of dst with src.
func checkCopied(t *testing.T, dst, src Store) {
	t.Helper()
	ctx := testCtx(t)
	want, err := src.List(ctx, Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		w.Owner, w.LeaseUntil = "", time.Time{} // leases belong to the source's daemons
		got, err := dst.Get(ctx, w.ID)
		if err != nil {
			t.Fatalf("job %d not copied: %v", w.ID, err)
		}
		if !reflect.DeepEqual(*got, w) {
			t.Fatalf("job %d copied as\n%+v\nwant\n%+v", w.ID, *got, w)
		}
		wantEv, _ := src.History(ctx, w.ID)
		gotEv, err := dst.History(ctx, w.ID)
		if err != nil || !reflect.DeepEqual(gotEv, wantEv) {
			t.Fatalf("history of job %d copied as %+v (%v), want %+v", w.ID, gotEv, err, wantEv)
		}
	}
	if c, _ := dst.Counts(ctx); sum(c) != len(want) {
		t.Fatalf("target has %d jobs, source %d", sum(c), len(want))
	}
	for _, k := range []string{"a", "shared"} {
		w, _ := src.GetMeta(ctx, k)
		if g, err := dst.GetMeta(ctx, k); err != nil || g != w {
			t.Fatalf("meta %s copied as %q (%v), want %q", k, g, err, w)
		}
	}
}

func sum(c map[Status]int) int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// Copy into an SQLite store and into one of this backend, then on from that copy: every job
// keeps its id, fields and history; new jobs and events get ids after the copied ones.
func (su suite) TestCopyKeepsJobsAndHistory(t *testing.T) {
	ctx := testCtx(t)
	src := su.openTest(t)
	fillForCopy(t, src)
	targets := map[string]func() Store{
		"sqlite":  func() Store { return openSQLite(t) },
		su.b.name: func() Store { return su.openTest(t) },
	}
	for name, open := range targets {
		dst := open()
		stats, err := Copy(ctx, dst, src)
		if err != nil {
			t.Fatalf("Copy to %s: %v", name, err)
		}
		if stats.Jobs != 25 || stats.Meta != 2 || stats.Events != 25+16+8 {
			t.Fatalf("Copy to %s = %+v, want 25 jobs, 49 events, 2 meta", name, stats)
		}
		checkCopied(t, dst, src)
		again := su.openTest(t)
		if _, err := Copy(ctx, again, dst); err != nil {
			t.Fatalf("Copy from the %s copy: %v", name, err)
		}
		checkCopied(t, again, src)

		// The copy goes on: the next job and event ids follow the copied ones.
		j := mustAdd(t, dst, newJob("f", "after-copy.mov"), t0)
		if j.ID != 26 {
			t.Fatalf("first job after the copy to %s has id %d, want 26", name, j.ID)
		}
		mustSave(t, dst, &j, "saved")
		if ev, _ := dst.History(ctx, j.ID); len(ev) != 2 || ev[0].ID != 50 || ev[1].ID != 51 {
			t.Fatalf("events after the copy to %s: %+v, want ids 50 and 51", name, ev)
		}
		// Leases were dropped: the held jobs are due for anyone at once.
		if got, err := dst.Claim(ctx, "new-host", nil, t0.Add(time.Hour), time.Minute, 100); err != nil || len(got) == 0 {
			t.Fatalf("Claim on the copy = %v, %v", ids(got), err)
		}
	}
}

func (su suite) TestCopyRefusesATargetWithJobs(t *testing.T) {
	ctx := testCtx(t)
	src := su.openTest(t)
	fillForCopy(t, src)
	dst := su.openTest(t)
	mine := mustAdd(t, dst, newJob("g", "mine.mov"), t0)
	if _, err := Copy(ctx, dst, src); !errors.Is(err, ErrTargetNotEmpty) {
		t.Fatalf("Copy into a store with a job = %v, want ErrTargetNotEmpty", err)
	}
	if l, _ := dst.List(ctx, Filter{}); len(l) != 1 || l[0].ID != mine.ID {
		t.Fatalf("the refused copy changed the target: %v", ids(l))
	}
	if v, _ := dst.GetMeta(ctx, "shared"); v != "" {
		t.Fatalf("the refused copy wrote meta %q", v)
	}
}
