//go:build !unix && !windows

package watcher

import "io/fs"

// fileIdentity has no portable source on this platform; size and mtime still
// guard readiness.
func fileIdentity(string, fs.FileInfo) fileID { return fileID{} }

func (fileID) String() string { return "" }
