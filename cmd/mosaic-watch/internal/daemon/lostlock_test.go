package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// instance is one running daemon of these tests; runErr receives what Run returned.
type instance struct {
	d      *Daemon
	runErr chan error
}

// startInstance starts a daemon with its own state_dir and output folder serving inputs (one
// folder each) against fake, as the system service and a `--user` service beside it would.
func startInstance(t *testing.T, fake *mosaictest.Server, inputs ...string) *instance {
	t.Helper()
	dir := t.TempDir()
	body := fmt.Sprintf(`mosaic:
  base_url: %s
  api_key: %s
  poll_interval: 100ms
state_dir: ./state
scan_interval: 1h
retry:
  base: 50ms
  max: 500ms
  attempts: 30
defaults:
  settle: 300ms
folders:
`, fake.URL(), mosaictest.DefaultAPIKey)
	for i, in := range inputs {
		body += fmt.Sprintf("  - name: f%d\n    input: %s\n    output: ./out%d\n    agent_id: %s\n",
			i, in, i, fake.AgentIDs()[0])
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.SyncBuffer{}
	d, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)), "test")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{d: d, runErr: make(chan error, 1)}
	stopped := make(chan struct{})
	go func() { in.runErr <- d.Run(ctx); close(stopped) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(20 * time.Second):
			t.Error("daemon did not stop within 20s")
		}
		d.Close()
		if t.Failed() {
			t.Logf("log of the instance on %v:\n%s", inputs, logs.String())
		}
	})
	return in
}

func mkdirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// The input's lock file is removed while the daemon runs (a sync tool mirroring the folder, a
// user cleaning hidden files, a share remounted under it), and a second instance with its own
// state_dir starts on the same input and takes the lock. The first must notice that it no longer
// holds the folder and stop serving it (its other folders go on); otherwise both process, and
// bill, every file.
func TestLostInputLockIsNotServedTwice(t *testing.T) {
	skipWhereHeldLocksCannotBeRemoved(t)
	fake := testenv.StartFake(t, mosaictest.Options{})
	dir := t.TempDir()
	shared, own := filepath.Join(dir, "shared"), filepath.Join(dir, "own")
	mkdirs(t, shared, own)
	first := startInstance(t, fake, shared, own)
	waitFirstHealthReport(t, first.d, shared)
	if err := os.Remove(filepath.Join(shared, pipeline.LockName)); err != nil {
		t.Fatal(err)
	}
	second := startInstance(t, fake, shared)
	testenv.WaitFor(t, 10*time.Second, "the first instance to give the folder up", func() bool {
		return strings.Contains(first.d.folderHealth()[shared], "another mosaic-watch instance")
	})

	clip := testenv.Clip("served twice?")
	testenv.DropFile(t, filepath.Join(shared, "clip.mov"), clip)
	testenv.WaitFor(t, 30*time.Second, "the second instance to process the clip", func() bool {
		jobs, err := second.d.store.JobsAt(context.Background(), shared, "clip.mov")
		return err == nil && len(jobs) > 0 && jobs[0].Status == store.StatusDone
	})
	key := mosaictest.RunKey{ContentSHA256: testenv.ShaHex(clip), AgentID: fake.AgentIDs()[0]}
	if jobs, _ := first.d.store.JobsAt(context.Background(), shared, "clip.mov"); len(jobs) != 0 {
		t.Fatalf("the first instance processed the clip too (job %s, %s; %d run(s) billed so far)",
			jobs[0].Status, jobs[0].Step, fake.Stats().RunsByContent[key])
	}
	if n := fake.Stats().RunsByContent[key]; n != 1 {
		t.Fatalf("%d runs billed for one file", n)
	}

	// The first instance's other folder is still served.
	other := testenv.Clip("still mine")
	testenv.DropFile(t, filepath.Join(own, "other.mov"), other)
	testenv.WaitFor(t, 30*time.Second, "the first instance to process its own folder's clip", func() bool {
		jobs, err := first.d.store.JobsAt(context.Background(), own, "other.mov")
		return err == nil && len(jobs) > 0 && jobs[0].Status == store.StatusDone
	})
}

// A lock file removed with no other instance around is simply taken again.
func TestLostInputLockIsTakenAgain(t *testing.T) {
	skipWhereHeldLocksCannotBeRemoved(t)
	fake := testenv.StartFake(t, mosaictest.Options{})
	in := filepath.Join(t.TempDir(), "in")
	mkdirs(t, in)
	first := startInstance(t, fake, in)
	waitFirstHealthReport(t, first.d, in)
	lock := filepath.Join(in, pipeline.LockName)
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the lock file to be back", func() bool {
		_, err := os.Stat(lock)
		return err == nil
	})
	_, err := New(context.Background(), startConfig(t, fake, in), quiet, "test")
	if err == nil || !strings.Contains(err.Error(), "served by another mosaic-watch instance") {
		t.Fatalf("a second instance on the folder after the lock was taken again: %v", err)
	}
}

// startConfig is a configuration of its own (state_dir, output) serving in.
func startConfig(t *testing.T, fake *mosaictest.Server, in string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	body := fmt.Sprintf("mosaic:\n  base_url: %s\n  api_key: %s\n  poll_interval: 100ms\n"+
		"state_dir: ./state\ndefaults:\n  settle: 300ms\nfolders:\n"+
		"  - input: %s\n    output: ./out\n    agent_id: %s\n",
		fake.URL(), mosaictest.DefaultAPIKey, in, fake.AgentIDs()[0])
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

// The state folder's lock file is removed while the daemon runs: it is taken again, so a
// second daemon on the same state_dir is still refused (it would release this one's leases and
// both would work the same jobs).
func TestLostStateLockIsTakenAgain(t *testing.T) {
	skipWhereHeldLocksCannotBeRemoved(t)
	fake := testenv.StartFake(t, mosaictest.Options{})
	in := filepath.Join(t.TempDir(), "in")
	mkdirs(t, in)
	first := startInstance(t, fake, in)
	waitFirstHealthReport(t, first.d, in)
	lock := filepath.Join(first.d.config().StateDir, pipeline.LockName)
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the state lock file to be back", func() bool {
		_, err := os.Stat(lock)
		return err == nil
	})
	second, err := New(context.Background(), first.d.config(), quiet, "test")
	if err == nil {
		second.Close()
	}
	if !strings.Contains(fmt.Sprint(err), "already running as PID") {
		t.Fatalf("a second daemon on the same state_dir after its lock file was removed: %v", err)
	}
}

// A folder removed from the configuration while one of its runs is underway: that run is still
// followed to the end (its outputs written, its source handled), so the folder's lock is kept
// until then. Released at once, another instance configured for the folder could take it and
// process, and bill, the same file again.
func TestRemovedFolderKeepsItsLockWhileItsRunsFinish(t *testing.T) {
	fake := testenv.StartFake(t, mosaictest.Options{ManualRuns: true})
	dir := t.TempDir()
	shared, own := filepath.Join(dir, "shared"), filepath.Join(dir, "own")
	mkdirs(t, shared, own)
	first := startInstance(t, fake, shared, own)
	clip := testenv.Clip("moved between instances")
	testenv.DropFile(t, filepath.Join(shared, "clip.mp4"), clip)
	var runID string
	testenv.WaitFor(t, 30*time.Second, "the run to start", func() bool {
		jobs, err := first.d.store.JobsAt(context.Background(), shared, "clip.mp4")
		if err == nil && len(jobs) > 0 {
			runID = jobs[0].RunID
		}
		return runID != ""
	})

	// The folder moves to another instance's configuration: removed here first.
	cfgFile := first.d.config().File
	body := readFile(t, cfgFile)
	i := strings.Index(body, "  - name: f0\n")
	j := strings.Index(body, "  - name: f1\n")
	if i < 0 || j < i {
		t.Fatalf("unexpected configuration:\n%s", body)
	}
	if err := os.WriteFile(cfgFile, []byte(body[:i]+body[j:]), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := first.d.Reload(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	key := mosaictest.RunKey{ContentSHA256: testenv.ShaHex(clip), AgentID: fake.AgentIDs()[0]}
	second, err := New(context.Background(), startConfig(t, fake, shared), quiet, "test")
	if err == nil {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- second.Run(ctx) }()
		defer func() { cancel(); <-done; second.Close() }()
		deadline := time.Now().Add(10 * time.Second)
		for fake.Stats().RunsByContent[key] < 2 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("another instance took the folder while its run was underway here: %d run(s) billed for one file",
			fake.Stats().RunsByContent[key])
	}
	if !strings.Contains(err.Error(), "served by another mosaic-watch instance") {
		t.Fatalf("second instance: %v", err)
	}

	// Once the run is finished and its outputs written, the folder is free.
	if err := fake.FinishRun(runID, mosaictest.OutcomeCompleted); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the folder to be released", func() bool {
		d, err := New(context.Background(), startConfig(t, fake, shared), quiet, "test")
		if err == nil {
			d.Close()
		}
		return err == nil
	})
	jobs, _ := first.d.store.JobsAt(context.Background(), shared, "clip.mp4")
	if len(jobs) == 0 || jobs[0].Status != store.StatusDone {
		t.Fatalf("the removed folder's run was not finished: %+v", jobs)
	}
}

// skipWhereHeldLocksCannotBeRemoved skips on Windows: a lock file is open while held, and
// Windows refuses to delete an open file (sharing violation), so it cannot be lost that way.
func skipWhereHeldLocksCannotBeRemoved(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("Windows does not delete a lock file while it is held open")
	}
}
