//go:build !linux && !darwin && !windows

package watcher

// filesystemKind cannot tell remote filesystems apart here; auto mode uses events.
func filesystemKind(string) (name string, remote bool, err error) { return "", false, nil }

func watchLimitHint(error) (string, bool) { return "", false }
