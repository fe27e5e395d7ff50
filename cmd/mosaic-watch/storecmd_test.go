package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// store copy moves a SQLite state into an empty PostgreSQL database, refuses a target with
// jobs, and refuses a source a running daemon holds.
func TestStoreCopyCommand(t *testing.T) {
	ctx := context.Background()
	db := testenv.PGDatabase(t)
	state := t.TempDir()
	path := filepath.Join(state, "mosaic-watch.db")
	src, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"a.mov", "b.mov"} {
		j, _, err := src.AddJob(ctx, store.NewJob{Folder: "/in", RelPath: rel, Size: 1, ModTime: time.Now(), AgentID: "ag"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		j.Step, j.Status, j.RunID = store.StepDone, store.StatusDone, "run-"+rel
		if err := src.Save(ctx, &j, "done"); err != nil {
			t.Fatal(err)
		}
	}
	src.Close()

	code, out, errOut := runCLI(t, "store", "copy", "--from", "sqlite:"+path, "--to", db)
	if code != 0 || !strings.Contains(out, "Copied 2 jobs") {
		t.Fatalf("store copy = %d\n%s%s", code, out, errOut)
	}
	dst, err := store.OpenPostgres(ctx, db, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if taken, err := dst.RunIDTaken(ctx, "run-b.mov"); err != nil || !taken {
		t.Fatalf("the copied run is not known to the target: %v %v", taken, err)
	}

	code, _, errOut = runCLI(t, "store", "copy", "--from", "sqlite:"+path, "--to", db)
	if code != 1 || !strings.Contains(errOut, "already has jobs") {
		t.Fatalf("second copy into the same database = %d %s, want refused", code, errOut)
	}

	lock, err := pipeline.LockFolder(state, pipeline.LockHolder{Host: "h", PID: 77})
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	code, _, errOut = runCLI(t, "store", "copy", "--from", "sqlite:"+path, "--to", testenv.PGDatabase(t))
	if code != 1 || !strings.Contains(errOut, "stop it first") {
		t.Fatalf("copy of a store in use = %d %s, want refused", code, errOut)
	}
}

func TestStoreCopyUsage(t *testing.T) {
	for _, args := range [][]string{
		{"store"},
		{"store", "copy", "--to", "postgres://u@h/db"},
		{"store", "copy", "--from", "/var/lib/x.db", "--to", "postgres://u@h/db"},
		{"store", "copy", "--from", "sqlite:x.db", "--to", "mysql://u:pw@h/db"},
	} {
		code, _, errOut := runCLI(t, args...)
		if code != 2 || strings.Contains(errOut, "pw@") {
			t.Errorf("%v = %d %s, want a usage error", args, code, errOut)
		}
	}
	if _, err := os.Stat("x.db"); err == nil {
		t.Fatal("a usage error created the source file")
	}
	code, out, _ := runCLI(t, "store", "--help")
	if code != 0 || !strings.Contains(out, "refuses a target that already has jobs") {
		t.Fatalf("store --help = %d\n%s", code, out)
	}
}

// validate --online connects to database.url and says what schema it holds; the password in
// the URL is never printed.
func TestValidateOnlineChecksTheDatabase(t *testing.T) {
	db := testenv.PGDatabase(t)
	fake := testenv.StartFake(t, mosaictest.Options{})
	dir := t.TempDir()
	cfg := writeServiceTestConfig(t, dir, fake.AgentIDs()[0],
		"  base_url: "+fake.URL()+"\n", fmt.Sprintf("database:\n  url: %q\n", db))
	// The fake's key: the one writeServiceTestConfig sets is not known to it.
	body, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(body), "mk_test_0123456789abcdef", mosaictest.DefaultAPIKey, 1)), 0o600)

	code, out, errOut := runCLI(t, "validate", "--online", "--config", cfg)
	if code != 0 || !strings.Contains(out, "reachable, no mosaic-watch tables yet") {
		t.Fatalf("validate --online on an empty database = %d\n%s%s", code, out, errOut)
	}
	st, err := store.OpenPostgres(context.Background(), db, store.Options{}) // what the daemon's first start does
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, out, errOut = runCLI(t, "validate", "--online", "--config", cfg)
	if code != 0 || !strings.Contains(out, "mosaic-watch schema version 1 (this binary: 1)") {
		t.Fatalf("validate --online = %d\n%s%s", code, out, errOut)
	}

	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "s3cret-pw")
	u.Path = "/no_such_database"
	bad := u.String()
	body, _ = os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(body), db, bad, 1)), 0o600)
	code, out, errOut = runCLI(t, "validate", "--online", "--config", cfg)
	if code != 1 || !strings.Contains(errOut, "check database.url") || strings.Contains(out+errOut, "s3cret-pw") {
		t.Fatalf("validate --online on a missing database = %d\n%s%s", code, out, errOut)
	}
}

// A password given as the URL's password parameter (which libpq and pgx accept) is as secret
// as one in its user info: validate and status named the database with it.
func TestDatabasePasswordParameterIsNeverPrinted(t *testing.T) {
	dir := t.TempDir()
	cfg := writeServiceTestConfig(t, dir, "123e4567-e89b-12d3-a456-789012345678", "",
		"database:\n  url: \"postgres://mosaic@127.0.0.1:1/mosaic_watch?sslmode=disable&password=s3cret-pw\"\n")
	for _, args := range [][]string{{"validate"}, {"validate", "--online"}, {"status"}} {
		_, out, errOut := runCLI(t, append(args, "--config", cfg)...)
		if strings.Contains(out+errOut, "s3cret-pw") {
			t.Errorf("%s printed the database password:\n%s%s", args, out, errOut)
		}
	}
}
