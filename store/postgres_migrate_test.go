package store

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// PostgreSQL-only: the schema marker, migrations and connection settings of the PostgreSQL store
// (migrate_test.go has SQLite's). Each test has a schema of its own on the test server.

func newPGDB(t *testing.T) string {
	t.Helper()
	return newPGSchema(t, pgServer(t))
}

func openPG(t *testing.T, u string, opts Options) *Postgres {
	t.Helper()
	s, err := OpenPostgres(testCtx(t), u, opts)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func pgMarker(t *testing.T, u string) (app string, version int) {
	t.Helper()
	if err := pgConn(t, u).QueryRow(testCtx(t), "SELECT application, version FROM mosaic_watch_schema").Scan(&app, &version); err != nil {
		t.Fatalf("read mosaic_watch_schema: %v", err)
	}
	return app, version
}

func TestPostgresOpenCreatesSchema(t *testing.T) {
	t.Parallel()
	u := newPGDB(t)
	openPG(t, u, Options{})
	if app, v := pgMarker(t, u); app != "mosaic-watch" || v != len(mustMigrations(pgMigrationFS)) || v < 1 {
		t.Fatalf("marker = %q version %d", app, v)
	}
	conn := pgConn(t, u)
	for _, table := range []string{"jobs", "events", "meta", "instances"} {
		var n int
		if err := conn.QueryRow(testCtx(t), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}
	// Paths compare byte by byte whatever the database's collation (List's subtree range).
	var coll string
	if err := conn.QueryRow(testCtx(t), `SELECT coalesce(collation_name, '') FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'jobs' AND column_name = 'rel_path'`).Scan(&coll); err != nil || coll != "C" {
		t.Errorf("rel_path collation = %q, %v; want C", coll, err)
	}
}

func TestPostgresReopenIsIdempotent(t *testing.T) {
	t.Parallel()
	u := newPGDB(t)
	s := openPG(t, u, Options{})
	j := mustAdd(t, s, newJob("f", "a.mov"), t0)
	s.Close()
	for range 2 {
		s2 := openPG(t, u, Options{})
		if got := mustGet(t, s2, j.ID); got.RelPath != "a.mov" {
			t.Fatalf("job after reopen = %+v", got)
		}
		s2.Close()
	}
	if _, v := pgMarker(t, u); v != len(mustMigrations(pgMigrationFS)) {
		t.Fatalf("version after reopening = %d", v)
	}
}

// A database written by this binary is migrated to the next version by a newer one, keeping its
// data; this binary then refuses it, read-write and read-only.
func TestPostgresMigrateToNextThenRefuseNewer(t *testing.T) {
	t.Parallel()
	latest := len(mustMigrations(pgMigrationFS))
	u := newPGDB(t)
	s := openPG(t, u, Options{})
	j := mustAdd(t, s, newJob("f", "a.mov"), t0)
	next, _ := migrationsPlus(t, pgMigrationFS,
		"priority\nALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 5;\nCREATE INDEX jobs_priority ON jobs (priority);")
	for range 2 { // the second run is a no-op
		if err := migratePG(testCtx(t), s.pool, next, s.name, discard); err != nil {
			t.Fatalf("migrate to v%d: %v", latest+1, err)
		}
	}
	if _, v := pgMarker(t, u); v != latest+1 {
		t.Fatalf("version = %d, want %d", v, latest+1)
	}
	var rel string
	var prio int
	if err := pgConn(t, u).QueryRow(testCtx(t), "SELECT rel_path, priority FROM jobs WHERE id = $1", j.ID).Scan(&rel, &prio); err != nil || rel != "a.mov" || prio != 5 {
		t.Fatalf("row after migration: %q %d %v", rel, prio, err)
	}
	for _, ro := range []bool{false, true} {
		_, err := OpenPostgres(testCtx(t), u, Options{ReadOnly: ro})
		if err == nil || !strings.Contains(err.Error(), "newer than this mosaic-watch") {
			t.Fatalf("Open(readOnly=%v) of a newer database = %v, want 'newer' error", ro, err)
		}
	}
}

func TestPostgresFutureVersionRefused(t *testing.T) {
	t.Parallel()
	u := newPGDB(t)
	openPG(t, u, Options{}).Close()
	if _, err := pgConn(t, u).Exec(testCtx(t), "UPDATE mosaic_watch_schema SET version = 99"); err != nil {
		t.Fatal(err)
	}
	_, err := OpenPostgres(testCtx(t), u, Options{})
	if err == nil || !strings.Contains(err.Error(), "schema version 99 is newer") {
		t.Fatalf("Open = %v, want refusal of version 99", err)
	}
}

func TestPostgresFailedMigrationRollsBack(t *testing.T) {
	t.Parallel()
	latest := len(mustMigrations(pgMigrationFS))
	u := newPGDB(t)
	s := openPG(t, u, Options{})
	bad, names := migrationsPlus(t, pgMigrationFS,
		"ok\nCREATE TABLE extra (x INTEGER);",
		"bad\nALTER TABLE nope ADD COLUMN y INTEGER;")
	if err := migratePG(testCtx(t), s.pool, bad, s.name, discard); err == nil || !strings.Contains(err.Error(), names[1]) {
		t.Fatalf("migrate = %v, want error naming %s", err, names[1])
	}
	if _, v := pgMarker(t, u); v != latest {
		t.Fatalf("version = %d after failed migration, want %d", v, latest)
	}
	var exists bool
	if err := pgConn(t, u).QueryRow(testCtx(t), "SELECT to_regclass('extra') IS NOT NULL").Scan(&exists); err != nil || exists {
		t.Fatalf("table from the failed batch exists: %v %v", exists, err)
	}
}

func TestPostgresForeignSchemaRefused(t *testing.T) {
	t.Parallel()
	u := newPGDB(t)
	conn := pgConn(t, u)
	if _, err := conn.Exec(testCtx(t), "CREATE TABLE photos (id INTEGER)"); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		_, err := OpenPostgres(testCtx(t), u, Options{ReadOnly: ro})
		if err == nil || !strings.Contains(err.Error(), "is not a mosaic-watch database") {
			t.Fatalf("Open(readOnly=%v) = %v, want 'not a mosaic-watch database'", ro, err)
		}
	}
	var jobs bool
	if err := conn.QueryRow(testCtx(t), "SELECT to_regclass('jobs') IS NOT NULL").Scan(&jobs); err != nil || jobs {
		t.Fatalf("the refused open created tables: %v %v", jobs, err)
	}
}

func TestPostgresWrongApplicationRefused(t *testing.T) {
	t.Parallel()
	u := newPGDB(t)
	openPG(t, u, Options{}).Close()
	if _, err := pgConn(t, u).Exec(testCtx(t), "UPDATE mosaic_watch_schema SET application = 'photo-sorter'"); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		_, err := OpenPostgres(testCtx(t), u, Options{ReadOnly: ro})
		if err == nil || !strings.Contains(err.Error(), "is not a mosaic-watch database") {
			t.Fatalf("Open(readOnly=%v) = %v, want 'not a mosaic-watch database'", ro, err)
		}
	}
}

// Daemons on several hosts starting at once: one migrates, the others wait and use it.
func TestPostgresConcurrentOpensMigrateOnce(t *testing.T) {
	t.Parallel()
	u := newPGDB(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			s, err := OpenPostgres(testCtx(t), u, Options{})
			if err == nil {
				_, _, err = s.AddJob(testCtx(t), newJob("f", "same.mov"), t0)
				s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent open: %v", err)
		}
	}
	var n int
	if err := pgConn(t, u).QueryRow(testCtx(t), "SELECT count(*) FROM jobs").Scan(&n); err != nil || n != 1 {
		t.Fatalf("jobs = %d, %v; want 1", n, err)
	}
}

func TestPostgresReadOnlyNeedsAMigratedDatabase(t *testing.T) {
	t.Parallel()
	u := newPGDB(t)
	_, err := OpenPostgres(testCtx(t), u, Options{ReadOnly: true})
	if err == nil || !strings.Contains(err.Error(), "start the daemon once") {
		t.Fatalf("read-only Open of an empty schema = %v", err)
	}
	var jobs bool
	if err := pgConn(t, u).QueryRow(testCtx(t), "SELECT to_regclass('jobs') IS NOT NULL").Scan(&jobs); err != nil || jobs {
		t.Fatalf("read-only Open created tables: %v %v", jobs, err)
	}
}

func TestPostgresMissingSchemaRefused(t *testing.T) {
	t.Parallel()
	u := strings.Replace(newPGDB(t), "search_path=", "search_path=no_such_", 1)
	_, err := OpenPostgres(testCtx(t), u, Options{})
	if err == nil || !strings.Contains(err.Error(), "search_path names no existing schema") {
		t.Fatalf("Open with a missing schema = %v", err)
	}
}

// Two installations in two schemas of one database do not share agent locks.
func TestPostgresAgentLocksPerSchema(t *testing.T) {
	t.Parallel()
	a, b := openPG(t, newPGDB(t), Options{}), openPG(t, newPGDB(t), Options{})
	unlock, err := a.LockAgent(testCtx(t), "agent-1")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	other, err := b.LockAgent(ctx, "agent-1")
	if err != nil {
		t.Fatalf("the same agent in another schema: %v", err)
	}
	other()
}

func TestPostgresURLErrorsHideThePassword(t *testing.T) {
	const secret = "s3cr3t-pw"
	for _, u := range []string{
		"postgres://mosaic:" + secret + "@db.internal/mosaic_watch?pool_max_conns=many",
		"postgres://mosaic:" + secret + "@db.internal/",
		"mysql://mosaic:" + secret + "@db.internal/mosaic_watch",
		"postgres://mosaic:" + secret + "@db.internal:port/mosaic_watch",
		"postgres://mosaic:" + secret + "@[::1/mosaic_watch",
	} {
		_, err := ParsePostgresURL(u)
		if err == nil {
			t.Errorf("ParsePostgresURL accepted %q", u)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows the password: %v", err)
		}
	}
	if _, err := ParsePostgresURL("postgres://mosaic:" + secret + "@db.internal:5433/mosaic_watch?search_path=mw"); err != nil {
		t.Errorf("a good URL refused: %v", err)
	}
	// A server that is not there: the connection error names the database, not the password.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := OpenPostgres(ctx, "postgres://mosaic:"+secret+"@127.0.0.1:1/mosaic_watch?connect_timeout=5", Options{})
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "postgres://mosaic@127.0.0.1:1/mosaic_watch") {
		t.Errorf("Open of an absent server = %v", err)
	}
}
