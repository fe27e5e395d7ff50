package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

// The parts of the Store that several daemons sharing one database rely on: agent locks and the
// instance registry. Two handles on one database stand in for two hosts.

// lockWithin tries to take agentID's lock for d; it reports whether it got it (and releases it).
func lockWithin(t *testing.T, s Store, agentID string, d time.Duration) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	unlock, err := s.LockAgent(ctx, agentID)
	if errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if err != nil {
		t.Fatalf("LockAgent(%s): %v", agentID, err)
	}
	unlock()
	return true
}

func (su suite) TestLockAgentSerializesAcrossHandles(t *testing.T) {
	db := su.newDB(t)
	a, b := su.openAt(t, db, Options{}), su.openAt(t, db, Options{})
	ctx := testCtx(t)

	unlock, err := a.LockAgent(ctx, "agent-1")
	if err != nil {
		t.Fatal(err)
	}
	// Held by a: b cannot take it, nor can a second caller on a; other agents are free.
	if lockWithin(t, b, "agent-1", 300*time.Millisecond) {
		t.Fatal("a second handle took an agent lock that is held")
	}
	if lockWithin(t, a, "agent-1", 300*time.Millisecond) {
		t.Fatal("a second caller on the same handle took an agent lock that is held")
	}
	if !lockWithin(t, b, "agent-2", 10*time.Second) {
		t.Fatal("the lock of another agent was not free")
	}
	// Holding a lock does not hold up writes.
	mustAdd(t, b, newJob("f", "while-locked.mov"), t0)

	// A waiter gets the lock once it is released.
	got := make(chan error, 1)
	go func() {
		u, err := b.LockAgent(ctx, "agent-1")
		if err == nil {
			u()
		}
		got <- err
	}()
	unlock()
	unlock() // twice is harmless
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("waiter: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the waiter never got the released lock")
	}
	if !lockWithin(t, a, "agent-1", 10*time.Second) {
		t.Fatal("the lock was not free after both holders released it")
	}
}

// A lock whose holder's store is closed (its process or connection gone) is free again.
func (su suite) TestLockAgentFreedWhenHolderCloses(t *testing.T) {
	if su.b.name == "sqlite" {
		t.Skip("SQLite: the lock lives in the process that owns the file and ends with it")
	}
	db := su.newDB(t)
	a, b := su.openAt(t, db, Options{}), su.openAt(t, db, Options{})
	unlock, err := a.LockAgent(testCtx(t), "agent-1")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	a.Close()
	if !lockWithin(t, b, "agent-1", 10*time.Second) {
		t.Fatal("the lock of a closed store was not released")
	}
}

func (su suite) TestInstanceRegistry(t *testing.T) {
	db := su.newDB(t)
	s, other := su.openAt(t, db, Options{}), su.openAt(t, db, Options{})
	ctx := testCtx(t)
	if got, err := s.Instances(ctx, t0); err != nil || len(got) != 0 {
		t.Fatalf("Instances of a new database = %v, %v", got, err)
	}
	a := Instance{ID: "host-a/1", Host: "host-a", PID: 101, Version: "1.2.3", ConfigPath: "/etc/mosaic-watch/config.yaml"}
	b := Instance{ID: "host-b/7", Host: "host-b", PID: 7, Version: "1.2.3", ConfigPath: `C:\mw\config.yaml`}
	if err := s.RegisterInstance(ctx, a, t0); err != nil {
		t.Fatal(err)
	}
	if err := other.RegisterInstance(ctx, b, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterInstance(ctx, Instance{ID: "x"}, t0); err == nil {
		t.Fatal("an instance without a host was registered")
	}

	// Jobs held: a holds two with live leases; one of a's leases has expired; b holds one;
	// a job held by an unregistered owner is listed under nobody.
	jobs := addN(t, s, 5)
	claim := func(st Store, owner string, now time.Time, lease time.Duration, n int) {
		t.Helper()
		if got, err := st.Claim(ctx, owner, nil, now, lease, n); err != nil || len(got) != n {
			t.Fatalf("Claim by %s = %d jobs, %v", owner, len(got), err)
		}
	}
	claim(s, a.ID, t0.Add(time.Second), time.Second, 1) // jobs[0], expires at t0+2s
	claim(s, a.ID, t0.Add(time.Second), time.Hour, 2)   // jobs[1], jobs[2]
	claim(other, b.ID, t0.Add(time.Second), time.Hour, 1)
	claim(other, "ghost", t0.Add(time.Second), time.Hour, 1)

	if err := s.HeartbeatInstance(ctx, a.ID, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err := other.Instances(ctx, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	wantA, wantB := a, b
	wantA.StartedAt, wantA.HeartbeatAt, wantA.Jobs = t0, t0.Add(time.Minute), []int64{jobs[1].ID, jobs[2].ID}
	wantB.StartedAt, wantB.HeartbeatAt, wantB.Jobs = t0.Add(time.Second), t0.Add(time.Second), []int64{jobs[3].ID}
	if want := []Instance{wantB, wantA}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Instances =\n%+v\nwant (newest start first)\n%+v", got, want)
	}

	// Registering again (a restart under the same id) replaces the row.
	a.PID = 202
	if err := s.RegisterInstance(ctx, a, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Instances(ctx, t0.Add(time.Hour)); len(got) != 2 || got[0].ID != a.ID || got[0].PID != 202 || !got[0].StartedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("after re-registering: %+v", got)
	}

	// b has not been heard from since t0+1s: pruning at t0+30s removes it and only it.
	if n, err := s.PruneInstances(ctx, t0.Add(30*time.Second)); err != nil || n != 1 {
		t.Fatalf("PruneInstances = %d, %v; want 1", n, err)
	}
	if err := other.HeartbeatInstance(ctx, b.ID, t0.Add(time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("heartbeat of a pruned instance = %v, want ErrNotFound", err)
	}
	if err := s.RemoveInstance(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveInstance(ctx, a.ID); err != nil {
		t.Fatalf("removing an unknown instance: %v", err)
	}
	if got, err := s.Instances(ctx, t0); err != nil || len(got) != 0 {
		t.Fatalf("Instances after removing all = %+v, %v", got, err)
	}
}
