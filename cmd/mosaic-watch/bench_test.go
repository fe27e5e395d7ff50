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

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/daemon"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

// BenchmarkPipeline1000 pushes 1,000 small files through the whole daemon (the real binary, built
// without -race unless the benchmark runs with it) against the fake Mosaic with zero-length runs
// and a short settle window, and reports files per second from the first file written to the
// last output in place, and the daemon process's peak RSS. Goals: ≥ 100 files/s and ≤ 80 MiB on
// a 2-core machine.
//
//	go test -run '^$' -bench Pipeline1000 -benchtime 1x ./cmd/mosaic-watch/
func BenchmarkPipeline1000(b *testing.B) {
	const files = 1000
	dir := b.TempDir()
	bin := binary(b)
	for i := 0; i < b.N; i++ {
		run := filepath.Join(dir, strconv.Itoa(i))
		fps, rss := benchPipelineOnce(b, bin, run, files)
		b.ReportMetric(fps, "files/s")
		b.ReportMetric(rss, "peak-RSS-MiB")
		fmt.Printf("pipeline: %d files, %.0f files/s (goal >= 100), daemon peak RSS %.1f MiB (goal <= "+
			"80)\n", files, fps, rss)
	}
}

func benchPipelineOnce(b *testing.B, bin, dir string, files int) (filesPerSec, peakRSSMiB float64) {
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
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`mosaic:
  base_url: %s
  api_key: %s
  poll_interval: 100ms
state_dir: ./state
log:
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
`, fake.URL(), mosaictest.DefaultAPIKey, fake.AgentIDs()[0])), 0o600)

	logs := &testenv.SyncBuffer{}
	cmd := exec.Command(bin, "run", "--config", cfg)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	testenv.WaitFor(b, 30*time.Second, "the database", func() bool {
		_, err := os.Stat(filepath.Join(dir, "state", daemon.DBFileName))
		return err == nil
	})

	b.ResetTimer()
	start := time.Now()
	for i := range files {
		p := filepath.Join(in, fmt.Sprintf("d%02d", i%20), fmt.Sprintf("clip%04d.mp4", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, testenv.Clip(fmt.Sprintf("bench %d", i)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	testenv.WaitFor(b, 5*time.Minute, "all outputs", func() bool {
		n := 0
		filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".mp4") &&
				!strings.HasPrefix(d.Name(), ".") {
				n++
			}
			return nil
		})
		return n == files
	})
	elapsed := time.Since(start)
	b.StopTimer()
	rss := peakRSS(b, cmd.Process.Pid)
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
