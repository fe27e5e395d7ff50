package store

// SQLite-only: the header (application_id, user_version) and migrations of SQLite files. The
// PostgreSQL store's counterparts are in postgres_migrate_test.go.

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
)

func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", writerDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func pragmaInt(t testing.TB, db *sql.DB, name string) int {
	t.Helper()
	var v int
	if err := db.QueryRowContext(testCtx(t), "PRAGMA "+name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

func TestOpenCreatesSchema(t *testing.T) {
	s := openSQLite(t)
	if v := pragmaInt(t, s.w, "user_version"); v != len(mustMigrations(migrationFS)) || v < 1 {
		t.Errorf("user_version = %d", v)
	}
	if v := pragmaInt(t, s.w, "application_id"); v != applicationID {
		t.Errorf("application_id = %#x, want %#x", v, applicationID)
	}
	if v := pragmaInt(t, s.w, "foreign_keys"); v != 1 {
		t.Errorf("foreign_keys = %d", v)
	}
	if v := pragmaInt(t, s.w, "synchronous"); v != 1 {
		t.Errorf("synchronous = %d, want 1 (NORMAL)", v)
	}
	if v := pragmaInt(t, s.w, "busy_timeout"); v != 10000 {
		t.Errorf("busy_timeout = %d", v)
	}
	var mode string
	if err := s.r.QueryRowContext(testCtx(t), "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v", mode, err)
	}
	for _, table := range []string{"jobs", "events", "meta"} {
		var n int
		if err := s.r.QueryRowContext(testCtx(t), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}
}

func TestReopenIsIdempotent(t *testing.T) {
	path := tempDB(t)
	s, err := Open(testCtx(t), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	j := mustAdd(t, s, newJob("f", "a.mov"), t0)
	s.Close()
	for range 2 {
		s2 := openSQLiteAt(t, path, Options{})
		got := mustGet(t, s2, j.ID)
		if got.RelPath != "a.mov" {
			t.Fatalf("job after reopen = %+v", got)
		}
		if v := pragmaInt(t, s2.w, "user_version"); v != len(mustMigrations(migrationFS)) {
			t.Fatalf("user_version = %d", v)
		}
		s2.Close()
	}
}

// migrationsPlus returns the migrations in base plus extra ones numbered after them, as a future
// binary would have, and the names it gave the extra files (each extra is "name\nSQL").
func migrationsPlus(t *testing.T, base fs.FS, extra ...string) (fs.FS, []string) {
	t.Helper()
	m := fstest.MapFS{}
	ms := mustMigrations(base)
	for _, mg := range ms {
		m[mg.name] = &fstest.MapFile{Data: []byte(mg.sql)}
	}
	var names []string
	for i, e := range extra {
		name, sqlText, _ := strings.Cut(e, "\n")
		file := fmt.Sprintf("%04d_%s.sql", len(ms)+1+i, name)
		m[file] = &fstest.MapFile{Data: []byte(sqlText)}
		names = append(names, file)
	}
	return m, names
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// A database written by this binary is migrated to the next version by a newer one, keeping its
// data; this binary then refuses the newer file.
func TestMigrateV1ToV2ThenRefuseNewer(t *testing.T) {
	latest := len(mustMigrations(migrationFS))
	path := tempDB(t)
	s, err := Open(testCtx(t), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	j := mustAdd(t, s, newJob("f", "a.mov"), t0)
	s.Close()

	db := rawDB(t, path)
	v2, _ := migrationsPlus(t, migrationFS,
		"priority\nALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 5;\nCREATE INDEX jobs_priority ON jobs (priority);")
	if err := migrate(testCtx(t), db, v2, path, discard); err != nil {
		t.Fatalf("migrate to v%d: %v", latest+1, err)
	}
	if v := pragmaInt(t, db, "user_version"); v != latest+1 {
		t.Fatalf("user_version = %d, want %d", v, latest+1)
	}
	var rel string
	var prio int
	if err := db.QueryRowContext(testCtx(t), "SELECT rel_path, priority FROM jobs WHERE id = ?", j.ID).Scan(&rel, &prio); err != nil || rel != "a.mov" || prio != 5 {
		t.Fatalf("row after migration: %q %d %v", rel, prio, err)
	}
	// Migrating again is a no-op.
	if err := migrate(testCtx(t), db, v2, path, discard); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	db.Close()

	_, err = Open(testCtx(t), path, Options{})
	if err == nil || !strings.Contains(err.Error(), "newer than this mosaic-watch") {
		t.Fatalf("Open of a newer database = %v, want 'newer' error", err)
	}
	_, err = Open(testCtx(t), path, Options{ReadOnly: true})
	if err == nil || !strings.Contains(err.Error(), "newer than this mosaic-watch") {
		t.Fatalf("read-only Open of a newer database = %v, want 'newer' error", err)
	}
}

// A version 1 database (before the run window and copy columns) is brought up to date with its
// jobs intact and the new fields zero.
func TestMigrateFromVersion1(t *testing.T) {
	path := tempDB(t)
	db := rawDB(t, path)
	v1 := fstest.MapFS{}
	for _, mg := range mustMigrations(migrationFS)[:1] {
		v1[mg.name] = &fstest.MapFile{Data: []byte(mg.sql)}
	}
	if err := migrate(testCtx(t), db, v1, path, discard); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(testCtx(t), `INSERT INTO jobs (folder, rel_path, size, mtime_ns, step, status, open, created_at, updated_at, run_id)
		VALUES ('f', 'old.mov', 1, 1, 'run_started', 'active', 1, 1, 1, 'r-1')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := openSQLiteAt(t, path, Options{})
	jobs, err := s.JobsAt(testCtx(t), "f", "old.mov")
	if err != nil || len(jobs) != 1 || jobs[0].RunID != "r-1" || !jobs[0].RunWindowFrom.IsZero() || jobs[0].CopyOf != 0 || jobs[0].RunParams != "" {
		t.Fatalf("job after migration: %+v %v", jobs, err)
	}
}

func TestFutureUserVersionRefused(t *testing.T) {
	path := tempDB(t)
	s, err := Open(testCtx(t), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db := rawDB(t, path)
	if _, err := db.ExecContext(testCtx(t), "PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(testCtx(t), path, Options{})
	if err == nil || !strings.Contains(err.Error(), "schema version 99 is newer") {
		t.Fatalf("Open = %v, want refusal of version 99", err)
	}
}

func TestFailedMigrationRollsBack(t *testing.T) {
	latest := len(mustMigrations(migrationFS))
	path := tempDB(t)
	s, err := Open(testCtx(t), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db := rawDB(t, path)
	bad, names := migrationsPlus(t, migrationFS,
		"ok\nCREATE TABLE extra (x INTEGER);",
		"bad\nALTER TABLE nope ADD COLUMN y INTEGER;")
	if err := migrate(testCtx(t), db, bad, path, discard); err == nil || !strings.Contains(err.Error(), names[1]) {
		t.Fatalf("migrate = %v, want error naming %s", err, names[1])
	}
	if v := pragmaInt(t, db, "user_version"); v != latest {
		t.Fatalf("user_version = %d after failed migration, want %d", v, latest)
	}
	var n int
	if err := db.QueryRowContext(testCtx(t), "SELECT count(*) FROM sqlite_master WHERE name = 'extra'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("table from the failed batch exists: n=%d err=%v", n, err)
	}
}

func TestMigrationNamesValidated(t *testing.T) {
	_, err := loadMigrations(fstest.MapFS{"0001_a.sql": {}, "0003_c.sql": {}})
	if err == nil {
		t.Fatal("gap in versions accepted")
	}
	_, err = loadMigrations(fstest.MapFS{"init.sql": {}})
	if err == nil {
		t.Fatal("unnumbered migration accepted")
	}
}

func TestWrongApplicationIDRefused(t *testing.T) {
	path := tempDB(t)
	db := rawDB(t, path)
	if _, err := db.ExecContext(testCtx(t), "PRAGMA application_id = 1234"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, ro := range []bool{false, true} {
		_, err := Open(testCtx(t), path, Options{ReadOnly: ro})
		if err == nil || !strings.Contains(err.Error(), "is not a mosaic-watch database") {
			t.Fatalf("Open(readOnly=%v) = %v, want 'not a mosaic-watch database'", ro, err)
		}
	}
}

func TestForeignDatabaseRefused(t *testing.T) {
	path := tempDB(t)
	db := rawDB(t, path)
	if _, err := db.ExecContext(testCtx(t), "CREATE TABLE photos (id INTEGER)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err := Open(testCtx(t), path, Options{})
	if err == nil || !strings.Contains(err.Error(), "is not a mosaic-watch database") {
		t.Fatalf("Open = %v, want 'not a mosaic-watch database'", err)
	}
}

func TestNotSQLiteRefused(t *testing.T) {
	path := tempDB(t)
	if err := os.WriteFile(path, []byte(strings.Repeat("this is a video list, not a database\n", 200)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(testCtx(t), path, Options{})
	if err == nil || !strings.Contains(err.Error(), "is not a mosaic-watch database") {
		t.Fatalf("Open = %v, want 'not a mosaic-watch database'", err)
	}
}

func TestReadOnlyMissingFile(t *testing.T) {
	path := tempDB(t)
	_, err := Open(testCtx(t), path, Options{ReadOnly: true})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open read-only of a missing file = %v, want not-exist", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("read-only Open created the file")
	}
}

func TestFileURI(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/var/lib/mosaic-watch/jobs.db", "file:/var/lib/mosaic-watch/jobs.db"},
		{"C:/ProgramData/mosaic-watch/jobs.db", "file:/C:/ProgramData/mosaic-watch/jobs.db"},
		{"/tmp/a b/what?#%.db", "file:/tmp/a%20b/what%3F%23%25.db"},
	}
	for _, tt := range tests {
		if got := fileURI(tt.in); got != tt.want {
			t.Errorf("fileURI(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A path with URI-special characters really opens (and the query string is not confused).
func TestOpenOddPath(t *testing.T) {
	name := "a b#c?d%e"
	if runtime.GOOS == "windows" {
		name = "a b#c%d&e=f" // Windows allows no ? in a name
	}
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "jobs.db")
	s := openSQLiteAt(t, db, Options{})
	mustAdd(t, s, newJob("f", "a.mov"), t0)
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("database not at the given path: %v", err)
	}
}
