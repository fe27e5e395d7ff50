package pipeline_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// sharedStores opens two handles on one new database, as two hosts would: two SQLite handles on
// one file (claims and agent locks work across them as across processes), or two PostgreSQL
// stores on a schema of the test server (MOSAIC_WATCH_TEST_PG; skipped outside CI without it).
func sharedStores(t *testing.T, kind string) (a, b store.Store) {
	t.Helper()
	ctx := context.Background()
	open := func(loc string) store.Store {
		var s store.Store
		var err error
		if kind == "postgres" {
			s, err = store.OpenPostgres(ctx, loc, store.Options{})
		} else {
			s, err = store.Open(ctx, loc, store.Options{})
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	loc := filepath.Join(t.TempDir(), "state.db")
	if kind == "postgres" {
		loc = pgSchema(t)
	}
	return open(loc), open(loc)
}

// pgSchema creates a schema on the PostgreSQL test server, dropped at the end, and returns the
// server's URL with search_path set to it.
func pgSchema(t *testing.T) string {
	t.Helper()
	server := os.Getenv("MOSAIC_WATCH_TEST_PG")
	if server == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("MOSAIC_WATCH_TEST_PG is not set: in CI the PostgreSQL tests are required")
		}
		t.Skip("MOSAIC_WATCH_TEST_PG is not set: skipping the PostgreSQL variant (bash .ci/postgres.sh go test ./pipeline/ runs it)")
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "mwpipe_" + hex.EncodeToString(b)
	exec := func(q string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, q)
		return err
	}
	if err := exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// countingHandler passes records on and counts those with one message.
type countingHandler struct {
	slog.Handler
	msg string
	n   *atomic.Int64
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return countingHandler{h.Handler.WithAttrs(as), h.msg, h.n}
}

func (h countingHandler) WithGroup(name string) slog.Handler {
	return countingHandler{h.Handler.WithGroup(name), h.msg, h.n}
}

// Two daemons (pipelines) on one store and one input folder, against a fake that fails 5% of API
// calls and loses 30% of run-start answers: every file is run exactly once, by one host or the
// other, both hosts start runs, and every output is written once with the right bytes.
func TestSharedStoreTwoHosts(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) { testSharedStoreTwoHosts(t, kind) })
	}
}

func testSharedStoreTwoHosts(t *testing.T, kind string) {
	runFor := 150 * time.Millisecond
	fake, err := mosaictest.NewServer(mosaictest.Options{
		BasePath: "/api", Seed: 11,
		Agents: []mosaictest.AgentSpec{{Name: "two outputs", Outputs: 2, RunDuration: &runFor}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	for _, r := range mosaictest.APIRoutes {
		fake.InjectFault(r, mosaictest.Fault{Kind: mosaictest.FaultStatus, Status: 503, Probability: 0.05})
	}
	fake.InjectFault(mosaictest.RouteRunAgent, mosaictest.Fault{Kind: mosaictest.FaultLoseResponse, Probability: 0.3})
	agent := fake.AgentIDs()[0]

	dir := t.TempDir()
	folder := pipeline.Folder{Name: "in", Input: filepath.Join(dir, "in"), Output: filepath.Join(dir, "out"), AgentID: agent}
	for _, d := range []string{folder.Input, folder.Output} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	stA, stB := sharedStores(t, kind)
	type host struct {
		p       *pipeline.Pipeline
		started atomic.Int64
	}
	hosts := []*host{{}, {}}
	for i, st := range []store.Store{stA, stB} {
		client, err := mosaic.New(mosaic.Options{BaseURL: fake.URL(), APIKey: mosaictest.DefaultAPIKey, RetryBaseDelay: 5 * time.Millisecond, MaxRetries: 2})
		if err != nil {
			t.Fatal(err)
		}
		h := hosts[i]
		name := fmt.Sprintf("host-%c", 'a'+i)
		log := slog.New(countingHandler{
			Handler: slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}).WithAttrs([]slog.Attr{slog.String("host", name)}),
			msg:     "run started", n: &h.started,
		})
		h.p, err = pipeline.New(pipeline.Options{
			Folders: []pipeline.Folder{folder}, Store: st, Client: client, Owner: name, Shared: true,
			PollInterval: 20 * time.Millisecond, ClaimEvery: 20 * time.Millisecond, AuthRecheck: 50 * time.Millisecond,
			ReconcileAfter: 300 * time.Millisecond, Lease: 3 * time.Second,
			Limits: pipeline.Limits{Uploads: 2, Downloads: 2, Starts: 2},
			Retry:  pipeline.Retry{Base: 10 * time.Millisecond, Max: 100 * time.Millisecond, MaxAttempts: 8},
			Logger: log,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- h.p.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("a pipeline did not stop within 10s")
			}
		})
	}

	const files = 20
	srcs := map[string][]byte{}
	for i := range files {
		rel := fmt.Sprintf("batch%d/clip %02d.mov", i%2, i)
		srcs[rel] = video(fmt.Sprintf("shared %d", i))
		p := filepath.Join(folder.Input, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, srcs[rel], 0o644); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		// Both hosts watch the share and find the file.
		for _, h := range hosts {
			if err := h.p.FileReady(context.Background(), pipeline.File{Folder: folder.Input, Path: p, Rel: rel, Size: fi.Size(), ModTime: fi.ModTime(), FileID: "x"}); err != nil {
				t.Fatal(err)
			}
		}
	}

	deadline := time.Now().Add(60 * time.Second)
	for {
		jobs, err := stA.List(context.Background(), store.Filter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != files {
			t.Fatalf("%d jobs for %d files found by two hosts", len(jobs), files)
		}
		done := 0
		for _, j := range jobs {
			switch {
			case j.Status == store.StatusDone:
				done++
			case !j.Status.Open():
				t.Fatalf("%s ended %s: %s %s", j.RelPath, j.Status, j.LastError, j.Note)
			}
		}
		if done == files {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d files done after 60s", done, files)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for rel, src := range srcs {
		if n := fake.Stats().RunsByContent[mosaictest.RunKey{ContentSHA256: sha(src), AgentID: agent}]; n != 1 {
			t.Errorf("%s: %d runs, want 1", rel, n)
		}
		stem := strings.TrimSuffix(rel, ".mov")
		for i, name := range []string{stem + "-1.mp4", stem + "-2.mp4"} {
			got, err := os.ReadFile(filepath.Join(folder.Output, filepath.FromSlash(name)))
			if err != nil {
				t.Fatalf("output %s: %v", name, err)
			}
			if want := mosaictest.OutputBytes(agent, sha(src), i, len(got)); len(got) == 0 || string(got) != string(want) {
				t.Fatalf("output %s: content differs from what the fake rendered", name)
			}
		}
	}
	// Nothing else in the output folder: no output written twice under another name, no temps.
	var names []string
	filepath.WalkDir(folder.Output, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	if len(names) != 2*files {
		t.Errorf("%d files in the output folder, want %d: %v", len(names), 2*files, names)
	}
	a, b := hosts[0].started.Load(), hosts[1].started.Load()
	t.Logf("runs started (or adopted): host-a %d, host-b %d", a, b)
	if a == 0 || b == 0 {
		t.Errorf("work was not shared: host-a started %d runs, host-b %d", a, b)
	}
}

// A webhook may reach any host: the run it names is followed by the host it wakes, though
// another host started it and nobody polls on a timer (an hour away here).
func TestSharedStoreAnyHostFollowsAWokenRun(t *testing.T) {
	runFor := 300 * time.Millisecond
	fake, err := mosaictest.NewServer(mosaictest.Options{BasePath: "/api",
		Agents: []mosaictest.AgentSpec{{Name: "one output", Outputs: 1, RunDuration: &runFor}}})
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
	stA, stB := sharedStores(t, "postgres")
	client, err := mosaic.New(mosaic.Options{BaseURL: fake.URL(), APIKey: mosaictest.DefaultAPIKey})
	if err != nil {
		t.Fatal(err)
	}
	finished := map[string]*atomic.Int64{"host-a": {}, "host-b": {}}
	newHost := func(name string, st store.Store) *pipeline.Pipeline {
		p, err := pipeline.New(pipeline.Options{
			Folders: []pipeline.Folder{folder}, Store: st, Client: client, Owner: name, Shared: true,
			PollInterval: time.Hour, ClaimEvery: 20 * time.Millisecond, Lease: 3 * time.Second,
			Logger: slog.New(countingHandler{Handler: slog.NewTextHandler(testWriter{t}, nil),
				msg: "run finished", n: finished[name]}).With("host", name),
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		return p
	}
	a, b := newHost("host-a", stA), newHost("host-b", stB)

	src := video("woken")
	p := filepath.Join(folder.Input, "clip.mov")
	if err := os.WriteFile(p, src, 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	// Host a finds the file; whichever host starts the run polls it once, too early.
	if err := a.FileReady(context.Background(), pipeline.File{Folder: folder.Input, Path: p, Rel: "clip.mov", Size: fi.Size(), ModTime: fi.ModTime(), FileID: "x"}); err != nil {
		t.Fatal(err)
	}
	var job store.Job
	waitUntil(t, "the run to start and end on Mosaic", func() bool {
		jobs, err := stB.List(context.Background(), store.Filter{})
		if err != nil || len(jobs) != 1 || jobs[0].Step != store.StepRunStarted {
			return false
		}
		job = jobs[0]
		run, err := client.GetRun(context.Background(), job.RunID)
		return err == nil && run.Terminal()
	})
	// The webhook reaches the host that did not start the run (the owner of its last step).
	woken, name := b, "host-b"
	if job.Owner == "host-b" {
		woken, name = a, "host-a"
	}
	woken.WakePoller() // what a webhook for job.RunID does on that host
	waitUntil(t, name+" to record the run and write the output", func() bool {
		j, err := stB.Get(context.Background(), job.ID)
		return err == nil && j.Status == store.StatusDone
	})
	if finished[name].Load() != 1 {
		t.Fatalf("the run was not recorded by the woken host %s (started by %s)", name, job.Owner)
	}
	if _, err := os.Stat(filepath.Join(folder.Output, "clip.mp4")); err != nil {
		t.Fatalf("output: %v", err)
	}
}

// The daily run limit holds across hosts: two hosts with limits.max_runs_per_day 3 on one
// database start 3 runs in all, and the other files wait.
func TestSharedStoreDailyLimitCountsEveryHost(t *testing.T) {
	zero := time.Duration(0)
	fake, err := mosaictest.NewServer(mosaictest.Options{BasePath: "/api",
		Agents: []mosaictest.AgentSpec{{Name: "one output", Outputs: 1, RunDuration: &zero}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	dir := t.TempDir()
	folder := pipeline.Folder{Name: "in", Input: filepath.Join(dir, "in"), Output: filepath.Join(dir, "out"), AgentID: fake.AgentIDs()[0]}
	for _, d := range []string{folder.Input, folder.Output} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	stA, stB := sharedStores(t, "postgres")
	var hosts []*pipeline.Pipeline
	for i, st := range []store.Store{stA, stB} {
		client, err := mosaic.New(mosaic.Options{BaseURL: fake.URL(), APIKey: mosaictest.DefaultAPIKey})
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("host-%c", 'a'+i)
		p, err := pipeline.New(pipeline.Options{
			Folders: []pipeline.Folder{folder}, Store: st, Client: client, Owner: name, Shared: true,
			MaxRunsPerDay: 3, PollInterval: 20 * time.Millisecond, ClaimEvery: 20 * time.Millisecond, Lease: 3 * time.Second,
			Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)).With("host", name),
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		hosts = append(hosts, p)
	}
	const files = 8
	for i := range files {
		rel := fmt.Sprintf("clip%d.mov", i)
		p := filepath.Join(folder.Input, rel)
		if err := os.WriteFile(p, video(fmt.Sprintf("limit %d", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		// Half the files found by each host, so that both try to start runs.
		if err := hosts[i%2].FileReady(context.Background(), pipeline.File{Folder: folder.Input, Path: p, Rel: rel, Size: fi.Size(), ModTime: fi.ModTime(), FileID: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "3 files done and the others waiting for the daily limit", func() bool {
		jobs, err := stA.List(context.Background(), store.Filter{})
		if err != nil || len(jobs) != files {
			return false
		}
		done, waiting := 0, 0
		for _, j := range jobs {
			switch {
			case j.Status == store.StatusDone:
				done++
			case j.Status == store.StatusWaiting && strings.HasPrefix(j.LastError, pipeline.WaitDailyLimit):
				waiting++
			}
		}
		return done == 3 && waiting == files-3
	})
	if n := fake.Stats().RunsCreated; n != 3 {
		t.Fatalf("%d runs started by two hosts under a limit of 3 a day", n)
	}
}
