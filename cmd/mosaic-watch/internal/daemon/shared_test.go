package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/jobview"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// sharedConfig is a configuration of host `name` (its own state folder) on the shared input
// dir/in, with its jobs in database dbURL ("" = SQLite).
func sharedConfig(t *testing.T, dir, name, dbURL string) *config.Config {
	t.Helper()
	for _, d := range []string{"in", "out"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	db := ""
	if dbURL != "" {
		db = fmt.Sprintf("database:\n  url: %q\n", dbURL)
	}
	body := fmt.Sprintf(`mosaic:
  base_url: http://127.0.0.1:9
  api_key: mk_test
state_dir: %s
%sfolders:
  - input: %s
    output: %s
    agent_id: 123e4567-e89b-12d3-a456-789012345678
`, filepath.Join(dir, "state-"+name), db, filepath.Join(dir, "in"), filepath.Join(dir, "out"))
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Daemons on one PostgreSQL database share an input folder; a daemon with SQLite, or with
// another database, is refused on it (and refuses them when it was first).
func TestSharedDatabaseSharesTheInputAndRefusesOthers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := testenv.PGDatabase(t)
	a, err := New(ctx, sharedConfig(t, dir, "a", db), quiet, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(ctx, sharedConfig(t, dir, "b", db), quiet, "test")
	if err != nil {
		t.Fatalf("second daemon on the same database and input: %v", err)
	}
	defer b.Close()
	if len(a.servedFolders()) != 1 || len(b.servedFolders()) != 1 {
		t.Fatalf("served: a %v, b %v", a.servedFolders(), b.servedFolders())
	}
	_, err = New(ctx, sharedConfig(t, dir, "alone", ""), quiet, "test")
	if err == nil || !strings.Contains(err.Error(), "served by another mosaic-watch instance") {
		t.Fatalf("a SQLite daemon on the shared input: %v, want refused", err)
	}
	other := testenv.PGDatabase(t)
	_, err = New(ctx, sharedConfig(t, dir, "other", other), quiet, "test")
	if err == nil || !strings.Contains(err.Error(), "sharing the folder through the database") {
		t.Fatalf("a daemon on another database: %v, want refused naming the database", err)
	}
	ins, err := a.store.Instances(ctx, time.Now())
	if err != nil || len(ins) != 2 {
		t.Fatalf("registered instances: %+v, %v; want a and b", ins, err)
	}
	a.Close()
	b.Close()

	// The other way round: a SQLite daemon first refuses a PostgreSQL one.
	alone, err := New(ctx, sharedConfig(t, dir, "alone", ""), quiet, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer alone.Close()
	_, err = New(ctx, sharedConfig(t, dir, "c", db), quiet, "test")
	if err == nil || !strings.Contains(err.Error(), "alone (its own state database)") {
		t.Fatalf("a PostgreSQL daemon on an input a SQLite daemon serves: %v, want refused", err)
	}
}

// A restarted daemon takes back the jobs its own previous process held at once, and never the
// jobs of a colleague on the shared database: those only expire with the colleague's leases.
func TestRestartReleasesOnlyItsOwnLeases(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := testenv.PGDatabase(t)
	cfgA, cfgB := sharedConfig(t, dir, "a", db), sharedConfig(t, dir, "b", db)
	a, err := New(ctx, cfgA, quiet, "test")
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(ctx, cfgB, quiet, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	in := cfgA.Folders[0].Input
	for _, rel := range []string{"a.mov", "b.mov"} {
		if _, _, err := a.store.AddJob(ctx, store.NewJob{Folder: in, RelPath: rel, Size: 1, ModTime: time.Now(),
			AgentID: cfgA.Folders[0].AgentID}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	heldA, err := a.store.Claim(ctx, a.owner, nil, time.Now(), time.Hour, 1)
	if err != nil || len(heldA) != 1 {
		t.Fatalf("a claims: %v %v", heldA, err)
	}
	heldB, err := b.store.Claim(ctx, b.owner, nil, time.Now(), time.Hour, 1)
	if err != nil || len(heldB) != 1 {
		t.Fatalf("b claims: %v %v", heldB, err)
	}
	a.Close() // a's process ends (as after a crash, its leases stay)

	a2, err := New(ctx, cfgA, quiet, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	if got, _ := a2.store.Get(ctx, heldA[0].ID); got.Owner != "" {
		t.Errorf("the previous process's job is still leased to %q", got.Owner)
	}
	if got, _ := a2.store.Get(ctx, heldB[0].ID); got.Owner != b.owner {
		t.Errorf("the colleague's job was taken from it: owner %q, want %q", got.Owner, b.owner)
	}
}

// database.url that cannot be reached fails New with the database named, never the password.
func TestUnreachableDatabaseIsNamedWithoutItsPassword(t *testing.T) {
	dir := t.TempDir()
	cfg := sharedConfig(t, dir, "a", "postgres://mosaic:s3cret@127.0.0.1:1/mw?connect_timeout=2")
	_, err := New(context.Background(), cfg, quiet, "test")
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("New = %v", err)
	}
	var are *AlreadyRunningError
	if errors.As(err, &are) {
		t.Fatal(err)
	}
}

// What a daemon records for `status` about itself (folder health, a failed reload) is its own
// on a shared database: another daemon stopping does not erase it.
func TestHealthRecordIsPerDaemonOnASharedDatabase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := testenv.PGDatabase(t)
	cfgA, cfgB := sharedConfig(t, dir, "a", db), sharedConfig(t, dir, "b", db)
	if HostMetaKey(cfgA, healthMetaKey) == HostMetaKey(cfgB, healthMetaKey) {
		t.Fatal("two daemons on one database share the key of their folder health")
	}
	if k := HostMetaKey(sharedConfig(t, dir, "c", ""), healthMetaKey); k != healthMetaKey {
		t.Fatalf("SQLite key = %q, want %q", k, healthMetaKey)
	}
	a, err := New(ctx, cfgA, quiet, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(ctx, cfgB, quiet, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.writeHealth(ctx, HealthRecord{At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := b.writeHealth(ctx, HealthRecord{At: time.Now(), Degraded: map[string]string{"x": "gone"}}); err != nil {
		t.Fatal(err)
	}
	if err := a.store.SetMeta(ctx, HostMetaKey(cfgA, healthMetaKey), ""); err != nil { // a stops cleanly
		t.Fatal(err)
	}
	rec, running, err := ReadHealth(ctx, a.store, cfgB)
	if err != nil || !running || rec.Degraded["x"] != "gone" {
		t.Fatalf("b's health after a stopped: %+v %v %v", rec, running, err)
	}
}

// On a shared database the dashboard and /api/status list the live instances with the jobs
// each holds; with SQLite there is no such section.
func TestHTTPListsTheInstancesOfASharedDatabase(t *testing.T) {
	db := testenv.PGDatabase(t)
	e := startHTTPEnv(t, mosaictest.Options{}, "100ms", fmt.Sprintf("database:\n  url: %q", db))
	other := store.Instance{ID: "nas-2-4242-abcd", Host: "nas-2", PID: 4242, Version: "test"}
	if err := e.d.store.RegisterInstance(context.Background(), other, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, page, _ := e.do("GET", "/", nil)
	host, _ := os.Hostname()
	if !strings.Contains(page, `id="instances"`) || !strings.Contains(page, `data-instance="nas-2-4242-abcd"`) ||
		!strings.Contains(page, "<td>"+host+"</td>") {
		t.Fatalf("the dashboard does not list both instances:\n%s", page)
	}
	_, body, _ := e.do("GET", "/api/status", nil)
	var ov jobview.Overview
	if err := json.Unmarshal([]byte(body), &ov); err != nil || len(ov.Instances) != 2 {
		t.Fatalf("/api/status instances: %+v %v\n%s", ov.Instances, err, body)
	}

	plain := startHTTPEnv(t, mosaictest.Options{}, "100ms", "")
	if _, page, _ := plain.do("GET", "/", nil); strings.Contains(page, `id="instances"`) {
		t.Error("a SQLite daemon's dashboard shows an instances section")
	}
}

// A removed lock file of a shared input is taken again by the daemons of the database,
// together: neither gives the folder up to the other.
func TestLostSharedInputLockIsTakenAgainTogether(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := testenv.PGDatabase(t)
	a, err := New(ctx, sharedConfig(t, dir, "a", db), quiet, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(ctx, sharedConfig(t, dir, "b", db), quiet, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	in := a.servedFolders()[0].Input
	if err := os.Remove(filepath.Join(in, pipeline.LockName)); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*Daemon{a, b} {
		if err := d.checkLocks(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for name, d := range map[string]*Daemon{"a": a, "b": b} {
		if len(d.servedFolders()) != 1 || d.inputLocks[in] == nil || d.inputLocks[in].Lost() {
			t.Fatalf("daemon %s after the lock file was removed: served %v, refused %v", name, d.servedFolders(), d.refused)
		}
	}
	if _, err := New(ctx, sharedConfig(t, dir, "alone", ""), quiet, "test"); err == nil {
		t.Fatal("a SQLite daemon took the shared input after its lock file was taken again")
	}
}

// A host whose clock is off from the database server's by more than a quarter of the lease is
// refused: ahead by a lease, it took every live job of the other hosts (each claim saw their
// leases run out), so their work was done twice and their saves were refused; behind, it took
// over a dead host's jobs that much late.
func TestSharedDatabaseRefusesAHostWithAnOffClock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := testenv.PGDatabase(t)
	a, err := New(ctx, sharedConfig(t, dir, "a", db), quiet, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, off := range []time.Duration{2 * time.Minute, -2 * time.Minute} {
		hostClock = func() time.Time { return time.Now().Add(off) }
		b, err := New(ctx, sharedConfig(t, dir, "b", db), quiet, "test")
		hostClock = time.Now
		if err == nil {
			b.Close()
			t.Fatalf("a host with its clock %s off joined the shared database", off)
		}
		if !strings.Contains(err.Error(), "clock is 2m0s") || !strings.Contains(err.Error(), "NTP") {
			t.Fatalf("clock %s off: %v, want the offset and the cure named", off, err)
		}
	}
	// A few seconds off (well within a quarter of the 60s lease) is fine.
	hostClock = func() time.Time { return time.Now().Add(3 * time.Second) }
	b, err := New(ctx, sharedConfig(t, dir, "b", db), quiet, "test")
	hostClock = time.Now
	if err != nil {
		t.Fatalf("a host 3s off: %v", err)
	}
	b.Close()
}

// A copy of the shared database (a restored backup, a test database made from it) carries the
// same store id, but it is another job store: a daemon on it is refused on the input folder,
// or both databases would run (and bill) every file.
func TestCloneOfTheSharedDatabaseIsRefused(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := testenv.PGDatabase(t)
	a, err := New(ctx, sharedConfig(t, dir, "a", db), quiet, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	id, err := a.store.GetMeta(ctx, "store_id")
	if err != nil || id == "" {
		t.Fatalf("store id: %q, %v", id, err)
	}
	clone := testenv.PGDatabase(t)
	st, err := store.OpenPostgres(ctx, clone, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = st.SetMeta(ctx, "store_id", id) // as pg_dump and pg_restore would carry it over
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(ctx, sharedConfig(t, dir, "b", clone), quiet, "test")
	if err == nil {
		b.Close()
		t.Fatal("a daemon on a copy of the shared database was accepted on the shared input")
	}
	if !strings.Contains(err.Error(), "sharing the folder through the database") {
		t.Fatalf("a daemon on a copy of the database: %v, want refused naming the database", err)
	}
}
