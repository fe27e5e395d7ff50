package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

// BenchmarkPipeline1000 pushes 1,000 small files through the whole daemon (the real binary, built
// without -race unless the benchmark runs with it) against the fake Mosaic with zero-length runs
// and a short settle window, and reports files per second from the first file written to the
// last output in place, and the daemon process's peak RSS. Goals: ≥ 100 files/s and ≤ 80 MiB on
// a 2-core machine. It runs with the jobs in SQLite, then (with MOSAIC_WATCH_TEST_PG) in a
// PostgreSQL database with one daemon, and with two daemons sharing the input folder.
//
//	go test -run '^$' -bench Pipeline1000 -benchtime 1x ./cmd/mosaic-watch/
//	bash .ci/postgres.sh go test -run '^$' -bench Pipeline1000 -benchtime 1x ./cmd/mosaic-watch/
func BenchmarkPipeline1000(b *testing.B) {
	const files = 1000
	for _, bc := range []struct {
		name    string
		pg      bool
		daemons int
	}{{"sqlite", false, 1}, {"postgres-1-daemon", true, 1}, {"postgres-2-daemons", true, 2}} {
		b.Run(bc.name, func(b *testing.B) {
			dbURL := ""
			if bc.pg {
				dbURL = testenv.PGDatabase(b)
			}
			dir := b.TempDir()
			bin := binary(b)
			for i := 0; i < b.N; i++ {
				run := filepath.Join(dir, strconv.Itoa(i))
				fps, rss := benchPipelineOnce(b, bin, run, files, dbURL, bc.daemons)
				b.ReportMetric(fps, "files/s")
				b.ReportMetric(rss, "peak-RSS-MiB")
				fmt.Printf("pipeline (%s): %d files, %.0f files/s (goal >= 100), daemon peak RSS %.1f MiB (goal <= "+
					"80)\n", bc.name, files, fps, rss)
			}
		})
	}
}

// benchPipelineOnce runs daemons daemons on one input folder, with their jobs in dbURL
// (PostgreSQL) or, when it is "", in SQLite (one daemon).
func benchPipelineOnce(b *testing.B, bin, dir string, files int, dbURL string, daemons int) (filesPerSec, peakRSSMiB float64) {
	zero := time.Duration(0)
	fake, err := mosaictest.NewServer(mosaictest.Options{
		Agents:     []mosaictest.AgentSpec{{Name: "bench", RunDuration: &zero}},
		OutputSize: 4096,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer fake.Close()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	for _, d := range []string{in, out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	database := ""
	if dbURL != "" {
		database = fmt.Sprintf("database:\n  url: %q\n", dbURL)
	}
	var procs []*exec.Cmd
	defer func() {
		for _, cmd := range procs {
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
		}
	}()
	logs := &testenv.SyncBuffer{}
	for d := range daemons {
		state := fmt.Sprintf("state-%d", d)
		cfg := filepath.Join(dir, state+".yaml")
		os.WriteFile(cfg, []byte(fmt.Sprintf(`mosaic:
  base_url: %s
  api_key: %s
  poll_interval: 100ms
state_dir: ./%s
%slog:
  level: warn
limits:
  uploads: 8
  active_runs: 64
  downloads: 8
defaults:
  settle: 200ms
folders:
  - input: ./in
    output: ./out
    agent_id: %s
`, fake.URL(), mosaictest.DefaultAPIKey, state, database, fake.AgentIDs()[0])), 0o600)
		cmd := exec.Command(bin, "run", "--config", cfg)
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		procs = append(procs, cmd)
		// The daemon has opened (and created) its store once it records its instance id.
		testenv.WaitFor(b, 30*time.Second, "the daemon to open its store", func() bool {
			_, err := os.Stat(filepath.Join(dir, state, "instance-id"))
			return err == nil
		})
	}

	b.ResetTimer()
	start := time.Now()
	for i := range files {
		p := filepath.Join(in, fmt.Sprintf("d%02d", i%20), fmt.Sprintf("clip%04d.mp4", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, testenv.Clip(fmt.Sprintf("bench %d", i)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	countOutputs := func() int {
		n := 0
		filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".mp4") &&
				!strings.HasPrefix(d.Name(), ".") {
				n++
			}
			return nil
		})
		return n
	}
	for deadline := time.Now().Add(5 * time.Minute); countOutputs() < files; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			// What the daemons warned about says where the work stopped.
			l := logs.String()
			l = l[max(0, len(l)-20000):]
			b.Fatalf("%d of %d outputs after 5m; the daemons' last warnings:\n%s", countOutputs(), files, l)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	var rss float64
	for _, cmd := range procs {
		rss = max(rss, peakRSS(b, cmd.Process.Pid))
	}
	if st := fake.Stats(); st.RunsCreated != files {
		b.Fatalf("runs created: %d, want %d\n%s", st.RunsCreated, files, logs.String())
	}
	return float64(files) / elapsed.Seconds(), rss
}

// peakRSS reads a process's high-water resident set size (Linux).
func peakRSS(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Logf("peak RSS unavailable: %v", err)
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}
