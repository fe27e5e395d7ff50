//go:build !windows

package main

import "context"

// runAsService: only the Windows service manager needs the daemon to talk to it; systemd,
// launchd and init scripts stop it with SIGTERM, which 'run' handles.
func runAsService(context.Context, *cliEnv, *Config) (handled bool, err error) { return false, nil }

// isMappedDrive: drive letters exist only on Windows.
func isMappedDrive(string) bool { return false }
