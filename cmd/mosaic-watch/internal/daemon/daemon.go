// Package daemon wires one running mosaic-watch from its configuration: the job store, the
// Mosaic client, the watcher, the pipeline, metrics and the optional HTTP surface. New builds
// it, Run works until its context ends, Close releases what New opened.
package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/httpapi"
	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
	"github.com/mosaic-watch/mosaic-watch/watcher"
)

// DBFileName is the job database's name inside state_dir.
const DBFileName = "mosaic-watch.db"

// Daemon is one instance: store, API client, watcher and pipeline wired together.
type Daemon struct {
	cfg     *config.Config
	log     *slog.Logger
	version string
	store   *store.SQLite
	client  *mosaic.Client
	watcher *watcher.Watcher
	pipe    *pipeline.Pipeline
	metrics *metrics
	http    *httpapi.Server // nil unless http.listen is set

	healthMu sync.Mutex
	health   map[string]string // folder input -> reason it is degraded ("" = healthy)
}

// New opens the state database and builds every part from cfg; it binds http.listen, so a
// taken port fails here. It starts no work. version names the build in logs, on the dashboard
// and in the client's User-Agent.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, version string) (
	*Daemon, error) {
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state_dir: %w", err)
	}
	st, err := store.Open(ctx, filepath.Join(cfg.StateDir, DBFileName), store.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("open the state database: %w", err)
	}
	d := &Daemon{cfg: cfg, log: log, version: version, store: st, health: make(map[string]string),
		metrics: newMetrics(folderNames(cfg))}
	if err := d.wire(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return d, nil
}

func folderNames(cfg *config.Config) []string {
	names := make([]string, len(cfg.Folders))
	for i, f := range cfg.Folders {
		names[i] = f.Name
	}
	return names
}

// wire builds the client, watcher, pipeline and HTTP surface on the open store.
func (d *Daemon) wire(ctx context.Context) error {
	cfg := d.cfg
	owner, err := instanceID(ctx, d.store)
	if err != nil {
		return err
	}
	d.client, err = mosaic.New(mosaic.Options{
		BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, UserAgent: "mosaic-watch/" + d.version,
		Logger: d.log, OnResponse: d.metrics.apiResponse,
	})
	if err != nil {
		return err
	}
	roots := make([]watcher.Root, len(cfg.Folders))
	folders := make([]pipeline.Folder, len(cfg.Folders))
	for i := range cfg.Folders {
		roots[i], folders[i] = cfg.Folders[i].WatchRoot(), cfg.Folders[i].PipelineFolder()
	}
	d.watcher, err = watcher.New(watcher.Options{
		Roots: roots, ScanInterval: cfg.ScanInterval, Logger: d.log,
	})
	if err != nil {
		return fmt.Errorf("watcher: %w", err)
	}
	d.pipe, err = pipeline.New(pipeline.Options{
		Folders:        folders,
		Store:          d.store,
		Client:         d.client,
		Owner:          owner,
		UploadAPI:      cfg.UploadAPI,
		PollInterval:   cfg.PollInterval,
		ReconcileAfter: cfg.ReconcileAfter,
		CallbackURL:    callbackURL(cfg),
		Limits: pipeline.Limits{
			Uploads: cfg.Limits.Uploads, ActiveRuns: cfg.Limits.ActiveRuns, Downloads: cfg.Limits.Downloads,
		},
		Retry: pipeline.Retry{
			Base: cfg.Retry.Base, Max: cfg.Retry.Max, MaxAttempts: cfg.Retry.Attempts,
		},
		Observer: d.metrics,
		Logger:   d.log,
	})
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	d.metrics.reg.MustRegister(newStateCollector(d))
	if cfg.HTTPListen != "" {
		d.http = httpapi.New(d.httpOptions())
		if err := d.http.Listen(); err != nil {
			return err
		}
	}
	return nil
}

// httpOptions hands the HTTP surface the parts it serves, each behind a narrow interface.
func (d *Daemon) httpOptions() httpapi.Options {
	o := httpapi.Options{
		Listen: d.cfg.HTTPListen, Token: d.cfg.HTTPToken, Exposed: d.cfg.HTTPExposed(),
		AllowedHosts: d.cfg.HTTPAllowedHosts, WebhookSecret: d.cfg.WebhookSecret,
		WebhookURL: d.cfg.WebhookPublicURL, Version: d.version, StateDir: d.cfg.StateDir,
		Jobs: d.store, Work: d.pipe,
		FolderHealth: d.folderHealth, Metrics: d.metrics.reg, Logger: d.log,
	}
	for _, f := range d.cfg.Folders {
		o.Folders = append(o.Folders, httpapi.Folder{Name: f.Name, Input: f.Input, Output: f.Output})
	}
	return o
}

// callbackURL is the callback_url runs are started with: webhook.public_url, but only when
// webhook.secret is set, since the webhook route is off without one.
func callbackURL(cfg *config.Config) string {
	if cfg.WebhookSecret == "" || cfg.HTTPListen == "" {
		return ""
	}
	return cfg.WebhookPublicURL
}

// Store is the daemon's job store (the demo follows its job there).
func (d *Daemon) Store() store.Store { return d.store }

// Run works until ctx ends or a part fails, then stops taking new work and lets in-flight steps
// reach a safe point within shutdown_timeout: every step is resumable, so what does not finish
// in time resumes at the next start.
func (d *Daemon) Run(ctx context.Context) error {
	cfg, log := d.cfg, d.log
	log.Info("mosaic-watch started", "version", d.version, "config", cfg.File,
		"folders", len(cfg.Folders), "state_dir", cfg.StateDir, "api", mosaic.RedactURL(cfg.BaseURL))

	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() {
		if err := d.watcher.Run(workCtx); err != nil && workCtx.Err() == nil {
			errs <- fmt.Errorf("watcher: %w", err)
		}
	})
	wg.Go(func() {
		if err := d.pipe.Run(workCtx); err != nil && workCtx.Err() == nil {
			errs <- fmt.Errorf("pipeline: %w", err)
		}
	})
	wg.Go(func() { d.intake(workCtx) })
	if d.http != nil {
		wg.Go(func() { d.http.Serve(workCtx) })
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
		log.Error("stopping after a fatal error", "err", runErr)
	}
	cancelWork()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		log.Info("stopped cleanly")
	case <-time.After(cfg.ShutdownTimeout):
		log.Warn("in-flight work did not stop in time; it resumes at the next start",
			"timeout", cfg.ShutdownTimeout)
	}
	return runErr
}

// Close releases the database and an HTTP address Run never served.
func (d *Daemon) Close() error {
	if d.http != nil {
		d.http.Close()
	}
	return d.store.Close()
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
func (d *Daemon) intake(ctx context.Context) {
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
func (d *Daemon) intakeOne(ctx context.Context, ev watcher.Event,
	ready []pipeline.File) []pipeline.File {
	f := pipeline.File{Folder: ev.Root, Path: ev.Path, Rel: ev.Rel, Size: ev.Size, ModTime: ev.ModTime,
		FileID: ev.FileID}
	switch ev.Kind {
	case watcher.Ready:
		return append(ready, f)
	case watcher.Incomplete:
		d.retry(ctx, "record incomplete file", func() error {
			return d.pipe.FileIncomplete(ctx, f, ev.Reason)
		})
	case watcher.Vanished:
		d.log.Debug("file vanished", "folder", ev.Root, "path", ev.Rel, "reason", ev.Reason)
	case watcher.Health:
		d.setHealth(ev.Root, ev.Healthy, ev.Reason)
	}
	return ready
}

// Database writes are retried from retryBase, doubling up to retryMax.
const (
	retryBase = 100 * time.Millisecond
	retryMax  = 30 * time.Second
)

// retry repeats a database write until it works or the daemon stops: the watcher reports a
// file once, so an event dropped here would leave the file unprocessed until a restart.
func (d *Daemon) retry(ctx context.Context, what string, fn func() error) {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || ctx.Err() != nil {
			return
		}
		delay := mosaic.Backoff(retryBase, retryMax, attempt, 0)
		d.log.Error(what+"; trying again", "err", err, "attempt", attempt, "in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

func (d *Daemon) setHealth(root string, healthy bool, reason string) {
	d.healthMu.Lock()
	prev, seen := d.health[root]
	if healthy {
		reason = ""
	}
	d.health[root] = reason
	d.healthMu.Unlock()
	switch {
	case !healthy && (!seen || prev != reason):
		d.log.Error("folder is unavailable; its files are left alone until it is back",
			"folder", root, "reason", reason)
	case healthy && seen && prev != "":
		d.log.Info("folder is available again", "folder", root)
	}
}

// folderHealth copies the watcher's folder health: input -> reason it is degraded ("" = healthy).
func (d *Daemon) folderHealth() map[string]string {
	d.healthMu.Lock()
	defer d.healthMu.Unlock()
	return maps.Clone(d.health)
}
