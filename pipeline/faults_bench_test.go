package pipeline_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// BenchmarkFaults20Files2Agents is issue 10's faults run: 20 files on two folders with their own
// agents, while the fake answers 10% of all requests with 503, 5% with 429, drops 3% of the
// connections and loses 15% of the run-start answers (the run is made, the answer lost).
// reconcile_after is the default (2m). Goal: every file done, exactly one run per file, in
// under 150 s on the 2-core development machine.
//
//	go test -run '^$' -bench Faults20Files2Agents -benchtime 1x ./pipeline/
func BenchmarkFaults20Files2Agents(b *testing.B) {
	for i := range b.N {
		took := faultsRun(b, int64(i)*7+1+benchSeed())
		b.ReportMetric(took.Seconds(), "s/run")
		b.Logf("20 files, 2 agents, default reconcile_after: all done, one run each, in %.1f s (goal < 150 s)", took.Seconds())
	}
}

func faultsRun(b *testing.B, seed int64) time.Duration {
	b.Helper()
	runFor := 2 * time.Second
	fake, err := mosaictest.NewServer(mosaictest.Options{
		Seed:   seed,
		Agents: []mosaictest.AgentSpec{{Name: "one", RunDuration: &runFor}, {Name: "two", Outputs: 2, RunDuration: &runFor}},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer fake.Close()
	fake.InjectFault(mosaictest.RouteRunAgent, mosaictest.Fault{Kind: mosaictest.FaultLoseResponse, Probability: 0.15})
	fake.InjectFault(mosaictest.RouteAny, mosaictest.Fault{Kind: mosaictest.FaultStatus, Status: 503, Probability: 0.10})
	fake.InjectFault(mosaictest.RouteAny, mosaictest.Fault{Kind: mosaictest.FaultRateLimit, RetryAfter: time.Second, Probability: 0.025})
	fake.InjectFault(mosaictest.RouteAny, mosaictest.Fault{Kind: mosaictest.FaultRateLimit, Probability: 0.025})
	fake.InjectFault(mosaictest.RouteAny, mosaictest.Fault{Kind: mosaictest.FaultDrop, Probability: 0.03})

	dir := b.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "state.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	client, err := mosaic.New(mosaic.Options{BaseURL: fake.URL(), APIKey: mosaictest.DefaultAPIKey, RetryBaseDelay: 50 * time.Millisecond, MaxRetryDelay: 500 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	var folders []pipeline.Folder
	for i, agent := range fake.AgentIDs() {
		f := pipeline.Folder{Name: fmt.Sprint("f", i), Input: filepath.Join(dir, fmt.Sprint("in", i)), Output: filepath.Join(dir, fmt.Sprint("out", i)), AgentID: agent}
		for _, d := range []string{f.Input, f.Output} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		folders = append(folders, f)
	}
	// The end-to-end tests' settings, with reconcile_after at its default.
	p, err := pipeline.New(pipeline.Options{
		Folders: folders, Store: st, Client: client, Owner: "bench",
		PollInterval: 100 * time.Millisecond,
		Retry:        pipeline.Retry{Base: 50 * time.Millisecond, Max: 500 * time.Millisecond, MaxAttempts: 30},
		Logger:       benchLogger(),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	start := time.Now()
	type file struct {
		folder pipeline.Folder
		rel    string
		src    []byte
	}
	var files []file
	for i := range 20 {
		f := folders[i%2]
		rel := fmt.Sprintf("clip %02d.mov", i)
		src := video(fmt.Sprint("faults ", seed, " ", i))
		path := filepath.Join(f.Input, rel)
		if err := os.WriteFile(path, src, 0o644); err != nil {
			b.Fatal(err)
		}
		fi, _ := os.Stat(path)
		if err := p.FileReady(ctx, pipeline.File{Folder: f.Input, Path: path, Rel: rel, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			b.Fatal(err)
		}
		files = append(files, file{f, rel, src})
	}
	deadline := time.Now().Add(5 * time.Minute)
	for _, f := range files {
		for {
			jobs, err := st.JobsAt(ctx, f.folder.Input, f.rel)
			if err == nil && len(jobs) == 1 && !jobs[0].Status.Open() {
				if jobs[0].Status != store.StatusDone {
					b.Fatalf("%s: %s %s", f.rel, jobs[0].Status, jobs[0].LastError)
				}
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s not done after 5 minutes", f.rel)
			}
			time.Sleep(50 * time.Millisecond) // polling the store for the outcome, with a deadline
		}
	}
	took := time.Since(start)
	stats := fake.Stats()
	for _, f := range files {
		if n := stats.RunsByContent[mosaictest.RunKey{ContentSHA256: sha(f.src), AgentID: f.folder.AgentID}]; n != 1 {
			b.Fatalf("%s: %d runs", f.rel, n)
		}
	}
	return took
}

// benchLogger writes the pipeline's log to $FAULTS_LOG when set (to study a slow run).
func benchLogger() *slog.Logger {
	if path := os.Getenv("FAULTS_LOG"); path != "" {
		if f, err := os.Create(path); err == nil {
			return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func benchSeed() int64 {
	var n int64
	fmt.Sscan(os.Getenv("FAULTS_SEED"), &n)
	return n
}
