//go:build !windows

package service

import (
	"errors"
	"log/slog"
)

// Managed reports whether a service manager that drives the daemon through calls started this
// process: only the Windows one does; systemd, launchd and init scripts stop it with SIGTERM,
// which 'run' handles.
func Managed() bool { return false }

// EventLogger is the Windows Event Log; there is none here.
func EventLogger(string, slog.Level, string) (*slog.Logger, func(), error) {
	return nil, nil, errors.New("the Event Log exists only on Windows")
}

// isMappedDrive: drive letters exist only on Windows.
func isMappedDrive(string) bool { return false }
