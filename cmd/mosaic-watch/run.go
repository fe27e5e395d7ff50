package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/daemon"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/service"
)

func cmdRun(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "run", "--config FILE", `
Watch the configured folders and process every finished video: upload it, run the folder's
agent, follow the run and write the outputs into the output folder. Runs until SIGINT or
SIGTERM: the first signal stops taking new work and exits within the configured
shutdown_timeout; a second signal exits at once. Every step is recorded in the state
database, so the next start resumes where this one stopped.

The configuration is reloaded while running on SIGHUP ('mosaic-watch service reload') and about
a second after the file is saved. A file that does not validate changes nothing: the error is
logged and shown by /healthz, the dashboard and 'status' until the file is fixed.`)
	configPath := configFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// Catch signals before anything else, so a stop during start-up is orderly too.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	hups := make(chan os.Signal, 1) // reload; caught from the start, as SIGHUP would end the process
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)
	cfg, err := loadConfigFlag(env, "run", *configPath)
	if err != nil {
		return err
	}
	if service.Managed() {
		return runManaged(env, cfg) // started by the Windows service manager
	}
	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel)
	log := newLogger(env.stderr, level, cfg.LogFormat)

	ctx, stop := signalContext(ctx, sigs, log)
	defer stop()
	return runDaemon(ctx, cfg, log, level, hups)
}

// runDaemon runs one daemon until ctx ends; level (optional) follows log.level on reloads, and
// each value on hups (nil: none) reloads the configuration.
func runDaemon(ctx context.Context, cfg *config.Config, log *slog.Logger,
	level *slog.LevelVar, hups <-chan os.Signal) error {
	d, err := daemon.New(ctx, cfg, log, version)
	if err != nil {
		return err
	}
	defer d.Close()
	if level != nil {
		d.SetLogLevelVar(level)
	}
	runCtx, cancel := context.WithCancel(ctx)
	var reloads sync.WaitGroup
	reloads.Go(func() {
		for {
			select {
			case <-runCtx.Done():
				return
			case <-hups:
				_ = d.Reload(runCtx, "SIGHUP") // a failure is logged and reported by the daemon
			}
		}
	})
	err = d.Run(runCtx)
	cancel()
	reloads.Wait() // before Close: a reload uses the store
	return err
}

// runManaged runs the daemon for the Windows service manager, which drives it through calls
// rather than signals and waits only so long for a stop; it logs to the Event Log.
func runManaged(env *cliEnv, cfg *config.Config) error {
	name := service.DefaultName
	if v, ok := env.lookupEnv(service.EnvName); ok && v != "" {
		name = v
	}
	log, closeLog, err := service.EventLogger(name, cfg.LogLevel, cfg.LogFormat)
	if err != nil { // source not registered (service created without 'service install')
		log, closeLog = newLogger(env.stderr, cfg.LogLevel, cfg.LogFormat), func() {}
	}
	defer closeLog()
	c := *cfg
	c.ShutdownTimeout = min(c.ShutdownTimeout, service.WindowsStopCap)
	run := func(ctx context.Context) error { return runDaemon(ctx, &c, log, nil, nil) }
	return service.Serve(name, run, c.ShutdownTimeout+3*time.Second, log,
		func() { os.Exit(exitFailure) })
}

// signalContext ends ctx at the first SIGINT/SIGTERM; a second one exits the process at once
// (the next start resumes from the database).
func signalContext(parent context.Context, sigs chan os.Signal, log *slog.Logger) (
	context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		select {
		case s := <-sigs:
			log.Info("stopping: finishing in-flight steps (signal again to exit at once)",
				"signal", s.String())
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
