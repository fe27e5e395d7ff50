//go:build !unix && !windows

package watcher

import "io/fs"

// fileIdentity has no portable source on this platform; size and mtime still
// guard readiness.
func fileIdentity(string, fs.FileInfo) string { return "" }
