package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgTestEnv names the PostgreSQL server of the tests: a connection URL of a throwaway database
// in which each test creates and drops a schema of its own. .ci/postgres.sh starts one.
const pgTestEnv = "MOSAIC_WATCH_TEST_PG"

// TestPostgres runs the conformance suite against the PostgreSQL store.
func TestPostgres(t *testing.T) { runSuite(t, postgresBackend(t)) }

// pgServer returns the test server's URL. Outside CI a missing server skips the test; in CI
// (CI=true) the PostgreSQL tests are required and a missing server fails it.
func pgServer(t testing.TB) string {
	t.Helper()
	u := os.Getenv(pgTestEnv)
	if u != "" {
		return u
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not set: in CI the PostgreSQL store tests are required (.ci/run starts a server with .ci/postgres.sh)", pgTestEnv)
	}
	t.Skipf("%s is not set: skipping the PostgreSQL store tests (run them with: bash .ci/postgres.sh go test ./store/)", pgTestEnv)
	return ""
}

func postgresBackend(t testing.TB) *backend {
	server := pgServer(t)
	return &backend{
		name:     "postgres",
		parallel: true,
		newDB:    func(t testing.TB) string { return newPGSchema(t, server) },
		open: func(ctx context.Context, u string, opts Options) (testStore, error) {
			return OpenPostgres(ctx, u, opts)
		},
	}
}

// newPGSchema creates an empty schema on the test server, dropped when the test ends, and
// returns the server's URL with search_path set to it.
func newPGSchema(t testing.TB, server string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "mwtest_" + hex.EncodeToString(b)
	ctx := testCtx(t)
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatalf("connect to the test server (%s): %v", pgTestEnv, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("%s: %v", pgTestEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// pgConn connects to the database at u outside the store (schema set by u), closed at the end.
func pgConn(t testing.TB, u string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(testCtx(t), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func (s *Postgres) setClock(now func() time.Time) { s.now = now }

func (s *Postgres) openColumn(ctx context.Context, id int64) (int, error) {
	var o int
	err := s.pool.QueryRow(ctx, "SELECT open FROM jobs WHERE id = $1", id).Scan(&o)
	return o, err
}

type pgRawTx struct{ tx pgx.Tx }

func (x pgRawTx) exec(ctx context.Context, q string, args ...any) error {
	_, err := x.tx.Exec(ctx, rebind(q), args...)
	return err
}

func (x pgRawTx) commit() error { return x.tx.Commit(context.Background()) }

func (s *Postgres) beginRaw(ctx context.Context) (rawTx, error) {
	tx, err := s.pool.Begin(ctx)
	return pgRawTx{tx}, err
}

func (s *Postgres) rawExecRead(ctx context.Context, q string, args ...any) error {
	_, err := s.pool.Exec(ctx, rebind(q), args...)
	return err
}

// checkSession: SaveDurable's SET LOCAL must end with its transaction, on every pooled session.
func (s *Postgres) checkSession(t testing.TB) {
	t.Helper()
	ctx := testCtx(t)
	for _, c := range s.pool.AcquireAllIdle(ctx) {
		var v string
		err := c.QueryRow(ctx, "SELECT setting FROM pg_settings WHERE name = 'synchronous_commit'").Scan(&v)
		var def string
		if err == nil {
			err = c.QueryRow(ctx, "SELECT reset_val FROM pg_settings WHERE name = 'synchronous_commit'").Scan(&def)
		}
		c.Release()
		if err != nil {
			t.Fatal(err)
		}
		if v != def {
			t.Fatalf("synchronous_commit = %q on a pooled session after SaveDurable, want the session default %q", v, def)
		}
	}
}

// checkIntegrity: PostgreSQL recovers by itself; the constraints must still hold.
func (s *Postgres) checkIntegrity(t testing.TB) {
	t.Helper()
	var orphans int
	if err := s.pool.QueryRow(testCtx(t),
		"SELECT count(*) FROM events e LEFT JOIN jobs j ON j.id = e.job_id WHERE j.id IS NULL").Scan(&orphans); err != nil || orphans != 0 {
		t.Fatalf("events without a job: %d, %v", orphans, err)
	}
}
