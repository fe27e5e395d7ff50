package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
	"github.com/mosaic-watch/mosaic-watch/watcher"
)

const dbFileName = "mosaic-watch.db"

func cmdRun(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "run", "--config FILE", `
Watch the configured folders and process every finished video: upload it, run the folder's
agent, follow the run and write the outputs into the output folder. Runs until SIGINT or
SIGTERM: the first signal stops taking new work and exits within the configured
shutdown_timeout; a second signal exits at once. Every step is recorded in the state
database, so the next start resumes where this one stopped.`)
	cfgPath := configFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// Catch signals before anything else, so a stop during start-up is orderly too.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	cfg, err := loadConfigFlag(env, "run", *cfgPath)
	if err != nil {
		return err
	}
	if handled, err := runAsService(ctx, env, cfg); handled {
		return err // started by the Windows service manager (a no-op elsewhere)
	}
	log := newLogger(env.stderr, cfg.LogLevel, cfg.LogFormat)

	ctx, stop := signalContext(ctx, sigs, log)
	defer stop()
	return runDaemon(ctx, cfg, log, daemonHooks{})
}

// signalContext ends ctx at the first SIGINT/SIGTERM; a second one exits the process at once
// (the next start resumes from the database).
func signalContext(parent context.Context, sigs chan os.Signal, log *slog.Logger) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		select {
		case s := <-sigs:
			log.Info("stopping: finishing in-flight steps (signal again to exit at once)", "signal", s.String())
			cancel()
		case <-ctx.Done():
			return
		}
		<-sigs
		log.Warn("second signal: exiting now; the next start resumes")
		os.Exit(exitFailure)
	}()
	return ctx, cancel
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// daemonHooks lets the demo and tests observe a running daemon.
type daemonHooks struct {
	started func(d *daemon) // called once everything runs
}

// daemon is one running instance: store, API client, watcher and pipeline wired together.
type daemon struct {
	cfg     *Config
	log     *slog.Logger
	store   *store.SQLite
	client  *mosaic.Client
	watcher *watcher.Watcher
	pipe    *pipeline.Pipeline
	metrics *metrics

	healthMu sync.Mutex
	health   map[string]string // folder input -> reason it is degraded ("" = healthy)
}

func runDaemon(ctx context.Context, cfg *Config, log *slog.Logger, hooks daemonHooks) error {
	d, err := newDaemon(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer d.store.Close()
	var hs *httpServer
	if cfg.HTTPListen != "" {
		hs = newHTTPServer(d)
		if err := hs.listen(); err != nil {
			return err
		}
	}

	log.Info("mosaic-watch started", "version", version, "config", cfg.File, "folders", len(cfg.Folders),
		"state_dir", cfg.StateDir, "api", mosaic.RedactURL(cfg.BaseURL))

	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := d.watcher.Run(workCtx); err != nil && workCtx.Err() == nil {
			errs <- fmt.Errorf("watcher: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := d.pipe.Run(workCtx); err != nil && workCtx.Err() == nil {
			errs <- fmt.Errorf("pipeline: %w", err)
		}
	}()
	go func() { defer wg.Done(); d.intake(workCtx) }()
	if hs != nil {
		wg.Add(1)
		go func() { defer wg.Done(); hs.serve(workCtx) }()
	}
	if hooks.started != nil {
		hooks.started(d)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
		log.Error("stopping after a fatal error", "err", runErr)
	}
	// Stop taking new work and let in-flight steps reach a safe point, bounded in time: every
	// step is resumable, so what does not finish in time resumes at the next start.
	cancelWork()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		log.Info("stopped cleanly")
	case <-time.After(cfg.ShutdownTimeout):
		log.Warn("in-flight work did not stop in time; it resumes at the next start", "timeout", cfg.ShutdownTimeout)
	}
	return runErr
}

func newDaemon(ctx context.Context, cfg *Config, log *slog.Logger) (*daemon, error) {
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state_dir: %w", err)
	}
	st, err := store.Open(ctx, filepath.Join(cfg.StateDir, dbFileName), store.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("open the state database: %w", err)
	}
	d := &daemon{cfg: cfg, log: log, store: st, health: make(map[string]string), metrics: newMetrics()}
	fail := func(err error) (*daemon, error) { st.Close(); return nil, err }

	owner, err := instanceID(ctx, st)
	if err != nil {
		return fail(err)
	}
	d.client, err = mosaic.New(mosaic.Options{
		BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, UserAgent: "mosaic-watch/" + version, Logger: log,
		OnResponse: d.metrics.apiResponse,
	})
	if err != nil {
		return fail(err)
	}
	roots := make([]watcher.Root, len(cfg.Folders))
	folders := make([]pipeline.Folder, len(cfg.Folders))
	for i, f := range cfg.Folders {
		roots[i] = watcher.Root{
			Path: f.Input, Recursive: f.Recursive, Include: f.Include, Exclude: f.Exclude,
			Settle: f.Settle, Mode: watcher.Mode(f.Mode), PollInterval: f.PollInterval, IncompleteAfter: f.IncompleteAfter,
		}
		folders[i] = pipeline.Folder{
			Name: f.Name, Input: f.Input, Output: f.Output, AgentID: f.AgentID,
			UpdateParams: f.UpdateParams, IgnoreNodes: f.IgnoreNodes,
			AfterSuccess: f.AfterSuccess, AfterSuccessMoveTo: f.AfterSuccessMoveTo,
			AfterFailure: f.AfterFailure, AfterFailureMoveTo: f.AfterFailureMoveTo,
			MaxFileSize: f.MaxFileSize,
		}
	}
	d.watcher, err = watcher.New(watcher.Options{Roots: roots, ScanInterval: cfg.ScanInterval, Logger: log})
	if err != nil {
		return fail(fmt.Errorf("watcher: %w", err))
	}
	d.pipe, err = pipeline.New(pipeline.Options{
		Folders:        folders,
		Store:          st,
		Client:         d.client,
		Owner:          owner,
		UploadAPI:      mosaic.UploadAPI(cfg.UploadAPI),
		PollInterval:   cfg.PollInterval,
		ReconcileAfter: cfg.ReconcileAfter,
		CallbackURL:    cfg.WebhookPublicURL,
		Limits: pipeline.Limits{
			Uploads: cfg.Limits.Uploads, ActiveRuns: cfg.Limits.ActiveRuns, Downloads: cfg.Limits.Downloads,
		},
		Retry:    pipeline.Retry{Base: cfg.Retry.Base, Max: cfg.Retry.Max, MaxAttempts: cfg.Retry.Attempts},
		Observer: d.metrics,
		Logger:   log,
	})
	if err != nil {
		return fail(fmt.Errorf("pipeline: %w", err))
	}
	return d, nil
}

// instanceID is this state directory's stable owner name for job leases, so a restarted daemon
// takes back its own unfinished jobs at once.
func instanceID(ctx context.Context, st store.Store) (string, error) {
	id, err := st.GetMeta(ctx, "instance_id")
	if err != nil {
		return "", fmt.Errorf("read instance id: %w", err)
	}
	if id != "" {
		return id, nil
	}
	host, _ := os.Hostname()
	var b [6]byte
	_, _ = rand.Read(b[:])
	id = host + "-" + hex.EncodeToString(b[:])
	if err := st.SetMeta(ctx, "instance_id", id); err != nil {
		return "", fmt.Errorf("save instance id: %w", err)
	}
	return id, nil
}

// intakeBatch bounds how many ready files are recorded in one database write.
const intakeBatch = 256

// intake feeds the watcher's events to the pipeline. Ready files that arrive together (a folder
// copied in, the start-up scan) are recorded in one write.
func (d *daemon) intake(ctx context.Context) {
	events := d.watcher.Events()
	var ready []pipeline.File
	for ev := range events {
		ready = d.intakeOne(ctx, ev, ready[:0])
	drain:
		for len(ready) < intakeBatch {
			select {
			case more, ok := <-events:
				if !ok {
					break drain
				}
				ready = d.intakeOne(ctx, more, ready)
			default:
				break drain
			}
		}
		if len(ready) > 0 {
			batch := ready
			d.retry(ctx, "record ready files", func() error { return d.pipe.FilesReady(ctx, batch) })
		}
	}
}

// intakeOne handles one watcher event; ready files are appended to ready for a batched write.
func (d *daemon) intakeOne(ctx context.Context, ev watcher.Event, ready []pipeline.File) []pipeline.File {
	f := pipeline.File{Folder: ev.Root, Path: ev.Path, Rel: ev.Rel, Size: ev.Size, ModTime: ev.ModTime, FileID: ev.FileID}
	switch ev.Kind {
	case watcher.Ready:
		return append(ready, f)
	case watcher.Incomplete:
		d.retry(ctx, "record incomplete file", func() error { return d.pipe.FileIncomplete(ctx, f, ev.Reason) })
	case watcher.Vanished:
		d.log.Debug("file vanished", "folder", ev.Root, "path", ev.Rel, "reason", ev.Reason)
	case watcher.Health:
		d.setHealth(ev.Root, ev.Healthy, ev.Reason)
	}
	return ready
}

// retry repeats a database write until it works or the daemon stops: the watcher reports a
// file once, so an event dropped here would leave the file unprocessed until a restart.
func (d *daemon) retry(ctx context.Context, what string, fn func() error) {
	delay := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || ctx.Err() != nil {
			return
		}
		d.log.Error(what+"; trying again", "err", err, "attempt", attempt, "in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

func (d *daemon) setHealth(root string, healthy bool, reason string) {
	d.healthMu.Lock()
	prev, seen := d.health[root]
	if healthy {
		reason = ""
	}
	d.health[root] = reason
	d.healthMu.Unlock()
	switch {
	case !healthy && (!seen || prev != reason):
		d.log.Error("folder is unavailable; its files are left alone until it is back", "folder", root, "reason", reason)
	case healthy && seen && prev != "":
		d.log.Info("folder is available again", "folder", root)
	}
}
