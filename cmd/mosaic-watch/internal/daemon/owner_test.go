package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// ownerConfig writes and loads a configuration with one folder; nothing needs to answer at
// base_url, since these tests never run the daemon.
func ownerConfig(t *testing.T, dir string) *config.Config {
	t.Helper()
	for _, d := range []string{"in", "out"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	body := fmt.Sprintf(`mosaic:
  base_url: http://127.0.0.1:9
  api_key: mk_test
state_dir: %s
folders:
  - input: %s
    output: %s
    agent_id: 123e4567-e89b-12d3-a456-789012345678
`, filepath.Join(dir, "state"), filepath.Join(dir, "in"), filepath.Join(dir, "out"))
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Every process gets its own instance id; the next one on the state folder releases the
// previous one's leases at once, and two at once are refused.
func TestEveryDaemonHasItsOwnInstance(t *testing.T) {
	dir := t.TempDir()
	cfg := ownerConfig(t, dir)
	ctx := context.Background()
	first, err := New(ctx, cfg, quiet, "test")
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(ctx, cfg, quiet, "test")
	var are *AlreadyRunningError
	want := fmt.Sprintf("already running as PID %d", os.Getpid())
	if !errors.As(err, &are) || !strings.Contains(err.Error(), want) {
		t.Fatalf("second New on the same state_dir: %v", err)
	}
	// A job the first daemon holds when it dies.
	job, _, err := first.store.AddJob(ctx, store.NewJob{Folder: cfg.Folders[0].Input, RelPath: "a.mov",
		Size: 1, ModTime: time.Now(), AgentID: cfg.Folders[0].AgentID}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.store.Claim(ctx, first.owner, nil, time.Now(), time.Hour, 10); err != nil {
		t.Fatal(err)
	}
	firstOwner := first.owner
	first.Close()

	second, err := New(ctx, cfg, quiet, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if second.owner == firstOwner {
		t.Fatalf("two processes share the instance id %q", firstOwner)
	}
	got, err := second.store.Get(ctx, job.ID)
	if err != nil || got.Owner != "" {
		t.Fatalf("the previous instance's lease was kept: owner %q (%v)", got.Owner, err)
	}
}

// The state folder is created for the daemon's user only.
func TestStateFolderIsPrivate(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("permission bits do not apply on Windows")
	}
	dir := t.TempDir()
	cfg := ownerConfig(t, dir)
	d, err := New(context.Background(), cfg, quiet, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fi, err := os.Stat(cfg.StateDir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state_dir mode %v (%v), want drwx------", fi.Mode().Perm(), err)
	}
	db, err := os.Stat(filepath.Join(cfg.StateDir, DBFileName))
	if err != nil || db.Mode().Perm() != 0o600 {
		t.Fatalf("database mode %v (%v), want -rw-------", db.Mode().Perm(), err)
	}
}

// A folder another instance serves is refused and shown degraded with that instance named;
// the others are served.
func TestInputServedElsewhereIsRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := ownerConfig(t, dir)
	other, err := pipeline.LockFolder(cfg.Folders[0].Input,
		pipeline.LockHolder{Host: "nas-box", PID: 4242, Config: "/etc/mosaic-watch/config.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, err = New(context.Background(), cfg, quiet, "test")
	if err == nil || !strings.Contains(err.Error(), "PID 4242 on nas-box") {
		t.Fatalf("New with its only folder served elsewhere: %v", err)
	}
}
