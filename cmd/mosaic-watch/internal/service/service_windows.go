package service

import (
	"log/slog"
	"path/filepath"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
)

// Managed reports whether the Windows Service Control Manager started this process (rather
// than a console).
func Managed() bool {
	is, err := svc.IsWindowsService()
	return err == nil && is
}

// EventLogger logs to the Application log under source name, registered at install; it fails
// when the source is not registered (a service created without 'service install').
func EventLogger(name string, level slog.Level, format string) (*slog.Logger, func(), error) {
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
