package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
)

// runAsService runs the daemon under the Windows Service Control Manager when the SCM started
// this process, logging to the Event Log; handled is false otherwise (a console run).
func runAsService(_ context.Context, env *cliEnv, cfg *Config) (handled bool, err error) {
	if is, err := svc.IsWindowsService(); err != nil || !is {
		return false, nil
	}
	name := defaultServiceName
	if v, ok := env.lookupEnv(serviceEnvName); ok && v != "" {
		name = v
	}
	log, closeLog, err := newEventLogLogger(name, cfg.LogLevel, cfg.LogFormat)
	if err != nil { // source not registered (service created without 'service install')
		log, closeLog = newLogger(env.stderr, cfg.LogLevel, cfg.LogFormat), func() {}
	}
	defer closeLog()
	return true, serveDaemon(name, cfg, log, os.Exit)
}

// newEventLogLogger logs to the Application log under source name, registered at install.
func newEventLogLogger(name, level, format string) (*slog.Logger, func(), error) {
	el, err := eventlog.Open(name)
	if err != nil {
		return nil, nil, err
	}
	return slog.New(newEventLogHandler(el, level, format)), func() { el.Close() }, nil
}

// isMappedDrive reports whether path is on a network drive letter, which services cannot see.
func isMappedDrive(path string) bool {
	vol := filepath.VolumeName(path)
	if len(vol) != 2 || vol[1] != ':' {
		return false // UNC paths and others
	}
	root, err := windows.UTF16PtrFromString(vol + `\`)
	if err != nil {
		return false
	}
	return windows.GetDriveType(root) == windows.DRIVE_REMOTE
}
