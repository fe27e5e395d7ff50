package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
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
database, so the next start resumes where this one stopped.`)
	configPath := configFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// Catch signals before anything else, so a stop during start-up is orderly too.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	cfg, err := loadConfigFlag(env, "run", *configPath)
	if err != nil {
		return err
	}
	if service.Managed() {
		return runManaged(env, cfg) // started by the Windows service manager
	}
	log := newLogger(env.stderr, cfg.LogLevel, cfg.LogFormat)

	ctx, stop := signalContext(ctx, sigs, log)
	defer stop()
	return runDaemon(ctx, cfg, log)
}

// runDaemon runs one daemon until ctx ends.
func runDaemon(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	d, err := daemon.New(ctx, cfg, log, version)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Run(ctx)
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
	run := func(ctx context.Context) error { return runDaemon(ctx, &c, log) }
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
