package pipeline_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// freezingStore stands for a host frozen (SIGSTOP, a suspended VM) right after it durably
// marked a job "starting run" and before its POST left: the save returns only when the test
// thaws it, and meanwhile the host's heartbeat renews nothing.
type freezingStore struct {
	store.Store
	frozen atomic.Bool
	once   sync.Once
	froze  chan struct{} // closed when the host freezes
	thaw   chan struct{} // closed by the test
}

func (s *freezingStore) SaveDurable(ctx context.Context, j *store.Job, msg string) error {
	err := s.Store.SaveDurable(ctx, j, msg)
	if err == nil && j.Step == store.StepStartingRun {
		s.once.Do(func() {
			s.frozen.Store(true)
			close(s.froze)
			<-s.thaw
			s.frozen.Store(false)
		})
	}
	return err
}

func (s *freezingStore) Renew(ctx context.Context, owner string, ids []int64, until time.Time) error {
	if s.frozen.Load() {
		return nil
	}
	return s.Store.Renew(ctx, owner, ids, until)
}

// A host frozen between recording a run start and sending it, for longer than its lease and
// the start's reconcile window: the other host takes the job over, finds no run and starts
// one. The frozen host, thawed, must not send its stale start: that is a second billed run.
func TestSharedStoreFrozenHostDoesNotStartAStaleRun(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) { testFrozenHostStaleRun(t, kind) })
	}
}

func testFrozenHostStaleRun(t *testing.T, kind string) {
	runFor := 50 * time.Millisecond
	fake, err := mosaictest.NewServer(mosaictest.Options{
		BasePath: "/api", Seed: 3,
		Agents: []mosaictest.AgentSpec{{Name: "one output", Outputs: 1, RunDuration: &runFor}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	agent := fake.AgentIDs()[0]
	dir := t.TempDir()
	folder := pipeline.Folder{Name: "in", Input: filepath.Join(dir, "in"), Output: filepath.Join(dir, "out"), AgentID: agent}
	for _, d := range []string{folder.Input, folder.Output} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	stA, stB := sharedStores(t, kind)
	frozenA := &freezingStore{Store: stA, froze: make(chan struct{}), thaw: make(chan struct{})}
	var thawOnce sync.Once
	thaw := func() { thawOnce.Do(func() { close(frozenA.thaw) }) }
	t.Cleanup(thaw)

	start := func(name string, st store.Store) *pipeline.Pipeline {
		client, err := mosaic.New(mosaic.Options{BaseURL: fake.URL(), APIKey: mosaictest.DefaultAPIKey, RetryBaseDelay: 5 * time.Millisecond, MaxRetries: 2})
		if err != nil {
			t.Fatal(err)
		}
		p, err := pipeline.New(pipeline.Options{
			Folders: []pipeline.Folder{folder}, Store: st, Client: client, Owner: name, Shared: true,
			PollInterval: 50 * time.Millisecond, ClaimEvery: 20 * time.Millisecond, AuthRecheck: 50 * time.Millisecond,
			ReconcileAfter: 300 * time.Millisecond, Lease: 2 * time.Second,
			Retry:  pipeline.Retry{Base: 10 * time.Millisecond, Max: 100 * time.Millisecond, MaxAttempts: 8},
			Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)).With("host", name),
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		t.Cleanup(func() {
			thaw()
			cancel()
			select {
			case <-done:
			case <-time.After(40 * time.Second):
				t.Error("a pipeline did not stop within 40s")
			}
		})
		return p
	}

	src := video("frozen host")
	rel := "clip.mov"
	path := filepath.Join(folder.Input, rel)
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	a := start("host-a", frozenA)
	if err := a.FileReady(context.Background(), pipeline.File{Folder: folder.Input, Path: path, Rel: rel, Size: fi.Size(), ModTime: fi.ModTime(), FileID: "x"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-frozenA.froze:
	case <-time.After(30 * time.Second):
		t.Fatal("host-a never marked the run start")
	}
	start("host-b", stB)

	// host-b takes the job over once host-a's lease ran out, finds no run for the start and,
	// after the start's window, starts the run again (it waits for the agent meanwhile).
	waitFor(t, 90*time.Second, "host-b to conclude that no run was started", func() bool {
		evs, err := stB.History(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Message == "no run was created by the unanswered start; starting again" {
				return true
			}
		}
		return false
	})
	thaw()
	waitFor(t, 60*time.Second, "the file to be done", func() bool {
		j, err := stB.Get(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if !j.Status.Open() && j.Status != store.StatusDone {
			t.Fatalf("job ended %s: %s", j.Status, j.LastError)
		}
		return j.Status == store.StatusDone
	})
	if n := fake.Stats().RunsByContent[mosaictest.RunKey{ContentSHA256: sha(src), AgentID: agent}]; n != 1 {
		t.Fatalf("%d runs billed for one file, want 1", n)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
