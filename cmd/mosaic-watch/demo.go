package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/daemon"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/sample"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/store"
)

func cmdDemo(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "demo", "[--dir DIR] [--verbose]", `
See mosaic-watch work without a Mosaic account. The demo starts the bundled fake Mosaic API
in this process, writes a configuration with an input and an output folder, drops a small
sample video into the input folder, and shows it flow through: settle, upload, agent run,
outputs written into the mirror folder. The folders are kept so you can look at them, and
the printed commands show how to inspect them with 'status'.`)
	dir := fs.String("dir", "", "`folder` for the demo's files (default: a new temporary folder)")
	verbose := fs.Bool("verbose", false, "show the daemon's log")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "mosaic-watch-demo-")
		if err != nil {
			return err
		}
		*dir = d
	}
	root, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	out := env.stdout
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }

	runFor := 2 * time.Second
	fake, err := mosaictest.NewServer(mosaictest.Options{
		Agents: []mosaictest.AgentSpec{{Name: "Demo: cut highlights", Outputs: 2, RunDuration: &runFor}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return fmt.Errorf("start the fake Mosaic: %w", err)
	}
	defer fake.Close()
	agentID := fake.AgentIDs()[0]
	say("1. Started a fake Mosaic API at %s with agent %s (2 outputs per run).", fake.URL(), agentID)

	inbox := filepath.Join(root, "inbox")
	outbox := filepath.Join(root, "outbox")
	for _, d := range []string{filepath.Join(inbox, "interviews"), outbox} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	configPath := filepath.Join(root, "config.yaml")
	configText := fmt.Sprintf(`# Written by 'mosaic-watch demo'. `+
		`The fake API it points at stops with the demo.
mosaic:
  base_url: %s
  api_key: %s
  poll_interval: 500ms
state_dir: ./state
defaults:
  settle: 1s
folders:
  - name: demo
    input: ./inbox
    output: ./outbox
    agent_id: %s
`, fake.URL(), mosaictest.DefaultAPIKey, agentID)
	if err := os.WriteFile(configPath, []byte(configText), 0o600); err != nil {
		return err
	}
	cfg, err := config.Load(configPath, env.lookupEnv)
	if err != nil {
		return err
	}
	say("2. Wrote %s: %s -> agent -> %s", configPath, inbox, outbox)

	logTo := io.Discard
	if *verbose {
		logTo = env.stderr
	}
	log := newLogger(logTo, slog.LevelInfo, "text")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d, err := daemon.New(ctx, cfg, log, version)
	if err != nil {
		return fmt.Errorf("the daemon did not start: %w", err)
	}
	done := make(chan error, 1)
	go func() {
		err := d.Run(ctx)
		d.Close()
		done <- err
	}()
	say("3. The daemon is watching %s.", inbox)

	rel := "interviews/day 1.mp4"
	video := sample.MP4(12_000, 1920, 1080, bytes.Repeat([]byte("mosaic-watch demo footage "), 4096))
	if err := writeLikeACopy(filepath.Join(inbox, filepath.FromSlash(rel)), video); err != nil {
		return err
	}
	sum := sha256.Sum256(video)
	say("4. Dropped a sample video: inbox/%s (%s). Waiting for it to settle...", rel,
		humanSize(int64(len(video))))

	job, err := followJob(ctx, d.Store(), rel, say)
	cancel()
	if derr := <-done; derr != nil && err == nil {
		err = derr
	}
	if err != nil {
		return err
	}
	if job.Status != store.StatusDone {
		return fmt.Errorf("the demo file ended as %s: %s", job.Status, job.LastError)
	}
	say("6. Outputs in the mirror folder (same sub-folder as the source):")
	for i, o := range job.Outputs {
		p := filepath.Join(outbox, filepath.FromSlash(o.Path))
		got, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		want := mosaictest.OutputBytes(agentID, hex.EncodeToString(sum[:]), i, len(got))
		check := "bytes match what the fake rendered"
		if !bytes.Equal(got, want) {
			check = "UNEXPECTED CONTENT"
		}
		say("     %s  (%s, %s)", p, humanSize(int64(len(got))), check)
	}
	say("\nThe files are kept in %s. Look around with:", root)
	say("  mosaic-watch status --config %s", configPath)
	say("  mosaic-watch status --config %s %q", configPath, rel)
	say("Next: copy config.example.yaml, set your folders and agent id, export MOSAIC_API_KEY, " +
		"and run")
	say("  mosaic-watch run --config config.yaml")
	return nil
}

// writeLikeACopy writes a file in chunks, the way a copy from a camera card arrives.
func writeLikeACopy(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	for chunk := range slicesChunk(data, 16<<10) {
		if _, err := f.Write(chunk); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func slicesChunk(b []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			k := min(n, len(b))
			if !yield(b[:k]) {
				return
			}
			b = b[k:]
		}
	}
}

// followJob prints the job's recorded steps as they are committed, until it closes.
func followJob(ctx context.Context, st store.Store, rel string, say func(string, ...any)) (
	*store.Job, error) {
	deadline := time.After(90 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	shown := 0
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline:
			return nil, errors.New("the demo file was not processed within 90 seconds")
		case <-tick.C:
		}
		jobs, err := st.List(ctx, store.Filter{Path: rel, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(jobs) == 0 {
			continue
		}
		j := jobs[0]
		events, err := st.History(ctx, j.ID)
		if err != nil {
			return nil, err
		}
		if shown == 0 && len(events) > 0 {
			say("5. Job #%d, each step as it is committed to the state database:", j.ID)
		}
		for _, e := range events[shown:] {
			say("     %-16s %s", e.Step, e.Message)
		}
		shown = len(events)
		if !j.Status.Open() {
			return &j, nil
		}
	}
}
