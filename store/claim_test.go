package store

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

func (su suite) TestClaimBasics(t *testing.T) {
	s := su.openTest(t)
	ctx := testCtx(t)
	jobs := addN(t, s, 6) // due at t0+0ms ... t0+5ms
	// jobs[2] is done, jobs[3] at another step, jobs[5] due later.
	d := jobs[2]
	d.Status = StatusDone
	mustSave(t, s, &d, "")
	u := jobs[3]
	u.Step = StepUploaded
	mustSave(t, s, &u, "")
	l := jobs[5]
	l.NextAttemptAt = t0.Add(time.Hour)
	mustSave(t, s, &l, "")

	now := t0.Add(time.Second)
	got, err := s.Claim(ctx, "w1", []Step{StepFound}, now, time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{jobs[0].ID, jobs[1].ID, jobs[4].ID}; !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("Claim = %v, want %v (oldest due first, step filtered)", ids(got), want)
	}
	for _, j := range got {
		if j.Owner != "w1" || !j.LeaseUntil.Equal(now.Add(time.Minute)) {
			t.Fatalf("claimed job %d owner %q lease %v", j.ID, j.Owner, j.LeaseUntil)
		}
		if stored := mustGet(t, s, j.ID); stored.Owner != "w1" || !stored.LeaseUntil.Equal(j.LeaseUntil) {
			t.Fatalf("stored job %d owner %q lease %v", j.ID, stored.Owner, stored.LeaseUntil)
		}
	}
	// Owned jobs are not claimed again; nil steps = any step; limit is honoured.
	got, err = s.Claim(ctx, "w2", nil, now, time.Minute, 1)
	if err != nil || !reflect.DeepEqual(ids(got), []int64{jobs[3].ID}) {
		t.Fatalf("Claim any step = %v, %v; want [%d]", ids(got), err, jobs[3].ID)
	}
	if got, err := s.Claim(ctx, "w2", nil, now, time.Minute, 10); err != nil || len(got) != 0 {
		t.Fatalf("nothing left to claim, got %v, %v", ids(got), err)
	}
	if got, err := s.Claim(ctx, "w2", nil, now, time.Minute, 0); err != nil || got != nil {
		t.Fatalf("limit 0 = %v, %v", got, err)
	}
	if _, err := s.Claim(ctx, "", nil, now, time.Minute, 1); err == nil {
		t.Fatal("Claim with empty owner accepted")
	}
}

// claimAll claims until nothing is left, from several goroutines spread over the given stores,
// and returns every claimed id with how often it was claimed.
func claimAll(t *testing.T, stores []Store, workers int) map[int64]int {
	t.Helper()
	ctx := testCtx(t)
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			s := stores[w%len(stores)]
			owner := fmt.Sprintf("w%d", w)
			for {
				got, err := s.Claim(ctx, owner, nil, t0.Add(time.Hour), time.Hour, 3)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, j := range got {
					seen[j.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Claim: %v", err)
	}
	return seen
}

func checkClaimedOnce(t *testing.T, seen map[int64]int, jobs []Job) {
	t.Helper()
	for id, n := range seen {
		if n != 1 {
			t.Errorf("job %d claimed %d times", id, n)
		}
	}
	if len(seen) != len(jobs) {
		t.Errorf("claimed %d distinct jobs, want %d", len(seen), len(jobs))
	}
}

func (su suite) TestClaimConcurrentGoroutines(t *testing.T) {
	s := su.openTest(t)
	jobs := addN(t, s, 200)
	checkClaimedOnce(t, claimAll(t, []Store{s}, 8), jobs)
}

// Two handles on one database behave like two processes (or hosts): separate pools, locking only
// by the database.
func (su suite) TestClaimTwoHandles(t *testing.T) {
	db := su.newDB(t)
	a := su.openAt(t, db, Options{})
	b := su.openAt(t, db, Options{})
	jobs := addN(t, a, 200)
	checkClaimedOnce(t, claimAll(t, []Store{a, b}, 8), jobs)
}

func (su suite) TestLeaseExpiryRenewRelease(t *testing.T) {
	s := su.openTest(t)
	ctx := testCtx(t)
	jobs := addN(t, s, 3)
	now := t0.Add(time.Second)
	got, err := s.Claim(ctx, "w1", nil, now, time.Minute, 3)
	if err != nil || len(got) != 3 {
		t.Fatalf("Claim = %v, %v", ids(got), err)
	}
	// Before expiry nobody else gets them; at exactly lease_until they are still held.
	for _, at := range []time.Time{now.Add(30 * time.Second), now.Add(time.Minute)} {
		if got, err := s.Claim(ctx, "w2", nil, at, time.Minute, 3); err != nil || len(got) != 0 {
			t.Fatalf("Claim at %v before expiry = %v, %v", at, ids(got), err)
		}
	}
	// Renew jobs[0] only; renewing as a non-owner changes nothing.
	if err := s.Renew(ctx, "w1", []int64{jobs[0].ID}, now.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.Renew(ctx, "w2", []int64{jobs[1].ID}, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if j := mustGet(t, s, jobs[1].ID); !j.LeaseUntil.Equal(now.Add(time.Minute)) || j.Owner != "w1" {
		t.Fatalf("non-owner Renew changed job: owner %q lease %v", j.Owner, j.LeaseUntil)
	}
	// After the original lease expired another owner takes the two unrenewed jobs.
	later := now.Add(2 * time.Minute)
	got, err = s.Claim(ctx, "w2", nil, later, time.Minute, 3)
	if err != nil || !reflect.DeepEqual(ids(got), []int64{jobs[1].ID, jobs[2].ID}) {
		t.Fatalf("Claim after expiry = %v, %v; want the unrenewed jobs", ids(got), err)
	}
	// The old owner's Save is refused; its renewed job is still its own.
	stale := jobs[1]
	stale.Owner = "w1"
	stale.Step = StepSettled
	if err := s.Save(ctx, &stale, "stale"); !errors.Is(err, ErrLost) {
		t.Fatalf("Save by lost owner = %v, want ErrLost", err)
	}
	if j := mustGet(t, s, jobs[1].ID); j.Step != StepFound || j.Owner != "w2" {
		t.Fatalf("refused Save changed the job: %+v", j)
	}
	if ev, _ := s.History(ctx, jobs[1].ID); len(ev) != 1 {
		t.Fatalf("refused Save wrote an event: %+v", ev)
	}
	// An unowned Save (Owner "") of an owned job is refused too.
	anon := jobs[2]
	anon.Owner = ""
	if err := s.Save(ctx, &anon, ""); !errors.Is(err, ErrLost) {
		t.Fatalf("Save without owner of an owned job = %v, want ErrLost", err)
	}
	// The owner itself may save. Saving with the owner kept and a zero lease hands the job back:
	// anyone may claim it at once. (Saving with Owner "" is refused above, per the contract.)
	mine := got[0]
	mine.Step = StepSettled
	mustSave(t, s, &mine, "settled")
	mine.LeaseUntil = time.Time{}
	mustSave(t, s, &mine, "handed back")
	// A heartbeat racing with the hand-over does not take the job back.
	if err := s.Renew(ctx, mine.Owner, []int64{mine.ID}, later.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if back, err := s.Claim(ctx, "w4", nil, later, time.Minute, 1); err != nil || !reflect.DeepEqual(ids(back), []int64{mine.ID}) {
		t.Fatalf("Claim of a handed-back job = %v, %v; want [%d]", ids(back), err, mine.ID)
	}

	// ReleaseOwner frees w1's job at once, not waiting for its lease.
	n, err := s.ReleaseOwner(ctx, "w1")
	if err != nil || n != 1 {
		t.Fatalf("ReleaseOwner = %d, %v; want 1", n, err)
	}
	got, err = s.Claim(ctx, "w3", nil, later, time.Minute, 3)
	if err != nil || !reflect.DeepEqual(ids(got), []int64{jobs[0].ID}) {
		t.Fatalf("Claim after release = %v, %v; want [%d]", ids(got), err, jobs[0].ID)
	}
	if n, err := s.ReleaseOwner(ctx, "nobody"); err != nil || n != 0 {
		t.Fatalf("ReleaseOwner(nobody) = %d, %v", n, err)
	}
	if _, err := s.ReleaseOwner(ctx, ""); err == nil {
		t.Fatal("ReleaseOwner(\"\") accepted")
	}
}

// Release hands chosen jobs back without a write to them (the poller of a shared database lets
// go of the runs it looked at); another owner's Release changes nothing.
func (su suite) TestRelease(t *testing.T) {
	s := su.openTest(t)
	ctx := testCtx(t)
	jobs := addN(t, s, 2)
	now := t0.Add(time.Second)
	if got, err := s.Claim(ctx, "w1", nil, now, time.Hour, 2); err != nil || len(got) != 2 {
		t.Fatalf("Claim = %v, %v", ids(got), err)
	}
	if err := s.Release(ctx, "w2", []int64{jobs[0].ID, jobs[1].ID}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Claim(ctx, "w3", nil, now, time.Minute, 2); len(got) != 0 {
		t.Fatalf("jobs released by a non-owner were claimed: %v", ids(got))
	}
	evBefore, _ := s.History(ctx, jobs[0].ID)
	if err := s.Release(ctx, "w1", []int64{jobs[0].ID}); err != nil {
		t.Fatal(err)
	}
	if j := mustGet(t, s, jobs[0].ID); j.Owner != "w1" || !j.LeaseUntil.IsZero() {
		t.Fatalf("released job: owner %q lease %v; want owner kept, no lease", j.Owner, j.LeaseUntil)
	}
	if ev, _ := s.History(ctx, jobs[0].ID); len(ev) != len(evBefore) {
		t.Fatalf("Release wrote %d events", len(ev)-len(evBefore))
	}
	if got, err := s.Claim(ctx, "w3", nil, now, time.Minute, 2); err != nil || !reflect.DeepEqual(ids(got), []int64{jobs[0].ID}) {
		t.Fatalf("Claim after Release = %v, %v; want [%d]", ids(got), err, jobs[0].ID)
	}
	if err := s.Release(ctx, "w1", nil); err != nil {
		t.Fatalf("Release of nothing: %v", err)
	}
	if err := s.Release(ctx, "", []int64{jobs[1].ID}); err == nil {
		t.Fatal("Release without an owner accepted")
	}
}

// Two processes finding the same file at once create one job between them.
func (su suite) TestAddJobConcurrentHandles(t *testing.T) {
	db := su.newDB(t)
	stores := []Store{su.openAt(t, db, Options{}), su.openAt(t, db, Options{})}
	ctx := testCtx(t)
	var mu sync.Mutex
	created := map[string]int{}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := range 30 {
				_, c, err := stores[w%2].AddJob(ctx, newJob("f", fmt.Sprintf("%d.mov", i)), t0)
				if err != nil {
					t.Errorf("AddJob: %v", err)
					return
				}
				if c {
					mu.Lock()
					created[fmt.Sprint(i)]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(created) != 30 {
		t.Fatalf("%d files created, want 30", len(created))
	}
	for name, n := range created {
		if n != 1 {
			t.Errorf("file %s created %d times", name, n)
		}
	}
	if c, _ := stores[0].Counts(ctx); c[StatusActive] != 30 {
		t.Fatalf("Counts = %v", c)
	}
}
