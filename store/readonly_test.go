package store

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func (su suite) TestReadOnlyWhileWriterOpen(t *testing.T) {
	db := su.newDB(t)
	w := su.openAt(t, db, Options{})
	ctx := testCtx(t)
	j := mustAdd(t, w, newJob("f", "a.mov"), t0)
	ro := su.openAt(t, db, Options{ReadOnly: true})

	if got := mustGet(t, ro, j.ID); got.RelPath != "a.mov" {
		t.Fatalf("read-only Get = %+v", got)
	}
	// Uncommitted writes are invisible; committed ones are seen at once.
	tx, err := w.beginRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.exec(ctx, "UPDATE jobs SET note = 'pending' WHERE id = ?", j.ID); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, ro, j.ID); got.Note != "" {
		t.Fatalf("read-only handle saw an uncommitted write: %q", got.Note)
	}
	if err := tx.commit(); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, ro, j.ID); got.Note != "pending" {
		t.Fatalf("read-only handle missed a committed write: %q", got.Note)
	}
	j.Step = StepSettled
	mustSave(t, w, &j, "settled")
	if c, err := ro.Counts(ctx); err != nil || c[StatusActive] != 1 {
		t.Fatalf("read-only Counts = %v, %v", c, err)
	}
	if ev, err := ro.History(ctx, j.ID); err != nil || len(ev) != 2 {
		t.Fatalf("read-only History = %v, %v", ev, err)
	}
	if l, err := ro.List(ctx, Filter{}); err != nil || len(l) != 1 || l[0].Step != StepSettled {
		t.Fatalf("read-only List = %+v, %v", l, err)
	}

	// Every write is refused, by the store and by the database itself.
	writes := map[string]error{}
	_, _, writes["AddJob"] = ro.AddJob(ctx, newJob("f", "b.mov"), t0)
	writes["Save"] = ro.Save(ctx, &j, "")
	writes["SaveDurable"] = ro.SaveDurable(ctx, &j, "")
	_, writes["Claim"] = ro.Claim(ctx, "w", nil, t0, time.Minute, 1)
	writes["Renew"] = ro.Renew(ctx, "w", []int64{j.ID}, t0)
	_, writes["ReleaseOwner"] = ro.ReleaseOwner(ctx, "w")
	writes["Release"] = ro.Release(ctx, "w", []int64{j.ID})
	writes["SetMeta"] = ro.SetMeta(ctx, "k", "v")
	_, writes["LockAgent"] = ro.LockAgent(ctx, "agent-1")
	writes["RegisterInstance"] = ro.RegisterInstance(ctx, Instance{ID: "i", Host: "h"}, t0)
	writes["HeartbeatInstance"] = ro.HeartbeatInstance(ctx, "i", t0)
	writes["RemoveInstance"] = ro.RemoveInstance(ctx, "i")
	_, writes["PruneInstances"] = ro.PruneInstances(ctx, t0)
	for name, err := range writes {
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("read-only %s = %v, want ErrReadOnly", name, err)
		}
	}
	if err := ro.rawExecRead(ctx, "UPDATE jobs SET note = 'x'"); err == nil {
		t.Error("raw write through the read-only pool succeeded")
	}
	// The writer is not disturbed by the reader.
	mustAdd(t, w, newJob("f", "c.mov"), t0)
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
}

// The database holds signed output URLs: it and its WAL files are for the daemon's user only.
func TestDatabaseIsPrivate(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("permission bits do not apply on Windows")
	}
	old := syscallUmask(0o022)
	t.Cleanup(func() { syscallUmask(old) })
	path := tempDB(t)
	s := openSQLiteAt(t, path, Options{})
	mustAdd(t, s, newJob("f", "a.mov"), t0)
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s is %v, want -rw-------", filepath.Base(p), perm)
		}
	}
	s.Close()

	// A database an older version left world-readable is narrowed at the next start.
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		os.Chmod(p, 0o644)
	}
	openSQLiteAt(t, path, Options{})
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("existing database: %v %v, want -rw-------", fi.Mode().Perm(), err)
	}
}
