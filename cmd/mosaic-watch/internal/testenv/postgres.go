package testenv

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

// PGEnv names the PostgreSQL server of the tests (a URL); .ci/postgres.sh starts one.
const PGEnv = "MOSAIC_WATCH_TEST_PG"

// PGDatabase returns the URL of an empty schema of its own on the test server, dropped when
// the test ends: what database.url of several daemons names. Outside CI a missing server skips
// the test; in CI (CI=true) it fails it.
func PGDatabase(t testing.TB) string {
	t.Helper()
	server := os.Getenv(PGEnv)
	if server == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: in CI the PostgreSQL tests are required (.ci/run starts a server with .ci/postgres.sh)", PGEnv)
		}
		t.Skipf("%s is not set: skipping a PostgreSQL test (run it with: bash .ci/postgres.sh go test ./cmd/...)", PGEnv)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "mwtest_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatalf("connect to the test server (%s): %v", PGEnv, err)
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
		t.Fatalf("%s: %v", PGEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
