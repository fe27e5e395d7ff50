package store

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// TestSQLite runs the conformance suite against the SQLite store.
func TestSQLite(t *testing.T) { runSuite(t, sqliteBackend) }

var sqliteBackend = &backend{
	name:  "sqlite",
	newDB: tempDB,
	open: func(ctx context.Context, path string, opts Options) (testStore, error) {
		return Open(ctx, path, opts)
	},
}

// openSQLiteAt opens the SQLite store at path for a SQLite-only test, closed at its end.
func openSQLiteAt(t testing.TB, path string, opts Options) *SQLite {
	t.Helper()
	s, err := Open(testCtx(t), path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openSQLite opens a new SQLite store for a SQLite-only test, its clock stopped at t0.
func openSQLite(t testing.TB) *SQLite {
	t.Helper()
	s := openSQLiteAt(t, tempDB(t), Options{})
	s.now = func() time.Time { return t0 }
	return s
}

func (s *SQLite) setClock(now func() time.Time) { s.now = now }

func (s *SQLite) openColumn(ctx context.Context, id int64) (int, error) {
	var o int
	err := s.r.QueryRowContext(ctx, "SELECT open FROM jobs WHERE id = ?", id).Scan(&o)
	return o, err
}

type sqlRawTx struct{ tx *sql.Tx }

func (x sqlRawTx) exec(ctx context.Context, q string, args ...any) error {
	_, err := x.tx.ExecContext(ctx, q, args...)
	return err
}

func (x sqlRawTx) commit() error { return x.tx.Commit() }

func (s *SQLite) beginRaw(ctx context.Context) (rawTx, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	return sqlRawTx{tx}, err
}

func (s *SQLite) rawExecRead(ctx context.Context, q string, args ...any) error {
	_, err := s.r.ExecContext(ctx, q, args...)
	return err
}

// checkSession: SaveDurable's synchronous=FULL must not outlive its commit.
func (s *SQLite) checkSession(t testing.TB) {
	t.Helper()
	if m := pragmaInt(t, s.w, "synchronous"); m != 1 { // the pool's only connection
		t.Fatalf("synchronous = %d after SaveDurable, want NORMAL (1)", m)
	}
}

func (s *SQLite) checkIntegrity(t testing.TB) {
	t.Helper()
	var check string
	if err := s.w.QueryRowContext(testCtx(t), "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check = %q, %v", check, err)
	}
	rows, err := s.w.QueryContext(testCtx(t), "PRAGMA foreign_key_check")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if rows.Next() {
		t.Fatal("foreign_key_check reports violations")
	}
}
