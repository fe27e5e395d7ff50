// Package daemon wires one running mosaic-watch from its configuration: the job store, the
// Mosaic client, the watcher, the pipeline, metrics and the optional HTTP surface. New builds
// it, Run works until its context ends, Close releases what New opened.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
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
	cfgMu   sync.RWMutex
	cfg     *config.Config // the configuration in effect; a reload replaces it (config())
	log     *slog.Logger
	version string
	store   store.Store
	client  *mosaic.Client
	watcher *watcher.Watcher
	pipe    *pipeline.Pipeline
	metrics *metrics
	http    *httpapi.Server // nil unless http.listen is set

	owner  string              // this process's instance id (job leases, locks)
	holder pipeline.LockHolder // what this process's lock files say
	// inputHolder is holder with the shared store's identity (PostgreSQL): input folders are
	// then held together with the other daemons on that database.
	inputHolder pipeline.LockHolder
	stateLock   *pipeline.FolderLock            // held for the daemon's life (under locksMu)
	locksMu     sync.Mutex                      // inputLocks and refused (a reload changes them)
	inputLocks  map[string]*pipeline.FolderLock // by input: served inputs that can carry a lock
	refused     map[string]string               // input -> why it is not served (another instance has it)
	served      []config.Folder                 // the folders this process watches and processes

	healthMu sync.Mutex
	health   map[string]string // folder input -> reason it is degraded ("" = healthy)

	reload  reloadState
	backlog backlogState
}

// New locks the state folder and the input folders, opens the state database and builds every
// part from cfg; it binds http.listen, so a taken port fails here. It starts no work. version
// names the build in logs, on the dashboard and in the client's User-Agent. A state folder
// another process uses gives an *AlreadyRunningError.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, version string) (
	*Daemon, error) {
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state_dir: %w", err)
	}
	d := &Daemon{cfg: cfg, log: log, version: version, owner: newInstanceID(),
		health: make(map[string]string), refused: make(map[string]string),
		inputLocks: make(map[string]*pipeline.FolderLock), metrics: newMetrics(folderNames(cfg))}
	d.holder = holderFor(cfg, d.owner)
	lock, err := lockState(cfg.StateDir, d.holder)
	if err != nil {
		return nil, err
	}
	d.stateLock = lock
	st, err := OpenStore(ctx, cfg, log, false)
	if err != nil {
		d.unlock()
		return nil, fmt.Errorf("open the job store: %w", err)
	}
	d.store = st
	fail := func(err error) (*Daemon, error) { st.Close(); d.unlock(); return nil, err }
	d.inputHolder = d.holder
	if err := d.storeIdentity(ctx); err != nil {
		return fail(err)
	}
	if err := checkClock(ctx, st, cfg.Database.Lease); err != nil {
		return fail(err)
	}
	if err := d.takeOver(ctx, st, cfg.StateDir); err != nil {
		return fail(err)
	}
	if err := d.register(ctx); err != nil {
		return fail(fmt.Errorf("register this instance: %w", err))
	}
	if d.served, err = d.lockInputs(cfg.Folders); err != nil {
		return fail(err)
	}
	d.backlog.init()
	d.noteLoaded()
	if err := d.wire(); err != nil {
		return fail(err)
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

// wire builds the client, watcher, pipeline and HTTP surface on the open store, for the
// folders this process serves.
func (d *Daemon) wire() error {
	cfg := d.config()
	var err error
	d.client, err = mosaic.New(mosaic.Options{
		BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, UserAgent: "mosaic-watch/" + d.version,
		Logger: d.log, OnResponse: d.metrics.apiResponse,
	})
	if err != nil {
		return err
	}
	roots := make([]watcher.Root, len(d.served))
	for i := range d.served {
		roots[i] = d.served[i].WatchRoot()
	}
	folders := pipelineFolders(d.served)
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
		Owner:          d.owner,
		Shared:         cfg.Database.Shared(),
		Lease:          cfg.Database.Lease,
		UploadAPI:      cfg.UploadAPI,
		PollInterval:   cfg.PollInterval,
		ReconcileAfter: cfg.ReconcileAfter,
		MaxRetryAfter:  cfg.MaxRetryAfter,
		CallbackURL:    callbackURL(cfg),
		Limits: pipeline.Limits{
			Uploads: cfg.Limits.Uploads, ActiveRuns: cfg.Limits.ActiveRuns, Downloads: cfg.Limits.Downloads,
		},
		MaxRunsPerDay: cfg.Limits.MaxRunsPerDay,
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
	cfg := d.config()
	return httpapi.Options{
		Listen: cfg.HTTPListen, Token: cfg.HTTPToken, Exposed: cfg.HTTPExposed(),
		AllowedHosts: cfg.HTTPAllowedHosts, WebhookSecret: cfg.WebhookSecret,
		WebhookURL: cfg.WebhookPublicURL, Version: d.version, StateDir: cfg.StateDir,
		Jobs: d.store, Work: d.pipe, Live: live{d}, Instances: d.instances(),
		FolderHealth: d.folderHealth, Metrics: d.metrics.reg, Logger: d.log,
	}
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

// config is the configuration in effect.
func (d *Daemon) config() *config.Config {
	d.cfgMu.RLock()
	defer d.cfgMu.RUnlock()
	return d.cfg
}

// Run works until ctx ends or a part fails, then stops taking new work and lets in-flight steps
// reach a safe point within shutdown_timeout: every step is resumable, so what does not finish
// in time resumes at the next start.
func (d *Daemon) Run(ctx context.Context) error {
	cfg, log := d.config(), d.log
	log.Info("mosaic-watch started", "version", d.version, "config", cfg.File,
		"folders", len(d.servedFolders()), "state_dir", cfg.StateDir, "api", mosaic.RedactURL(cfg.BaseURL))

	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	// The HTTP surface answers from the start: /healthz (the container's HEALTHCHECK, the
	// `health` command) must not hang while the agents are checked below.
	if d.http != nil {
		wg.Go(func() { d.http.Serve(workCtx) })
	}

	// Every folder's agent is checked before any file is run: a configuration Mosaic refuses
	// stops the start with the file and line; no answer only warns.
	all := make([]int, len(cfg.Folders))
	for i := range all {
		all[i] = i
	}
	unchecked, err := d.preflight(ctx, cfg, all)
	if err != nil {
		cancelWork()
		wg.Wait()
		if ctx.Err() != nil {
			log.Info("stopped cleanly", "before", "the agents were checked")
			return nil
		}
		return err
	}
	d.clearReloadError(ctx) // a start with a valid file ends any earlier failed reload

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
	wg.Go(func() { d.publishHealth(workCtx) })
	wg.Go(func() { d.creditsLoop(workCtx) })
	if len(unchecked) > 0 {
		wg.Go(func() { d.preflightLater(workCtx, cfg, unchecked, func(err error) { errs <- err }) })
	}
	wg.Go(func() { d.watchConfigFile(workCtx) })
	wg.Go(func() { d.heartbeatLoop(workCtx) })
	wg.Go(func() {
		if err := d.guardLocks(workCtx); err != nil && workCtx.Err() == nil {
			errs <- err
		}
	})

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
		log.Error("stopping after a fatal error", "err", runErr.Error())
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

// Close releases the database, an HTTP address Run never served, and the folder locks.
func (d *Daemon) Close() error {
	if d.http != nil {
		d.http.Close()
	}
	d.unregister()
	err := d.store.Close()
	d.unlock()
	return err
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
		if d.admit(ctx, &f) {
			return append(ready, f)
		}
	case watcher.Incomplete:
		d.retry(ctx, "record incomplete file", func() error {
			return d.pipe.FileIncomplete(ctx, f, ev.Reason)
		})
	case watcher.Vanished:
		d.log.Debug("file vanished", "folder", ev.Root, "path", ev.Rel, "reason", ev.Reason)
	case watcher.Health:
		d.setHealth(ev.Root, ev.Healthy, ev.Reason)
		if ev.Healthy {
			d.firstWatch(ctx, ev.Root) // before the watcher reports any of its files
		}
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
