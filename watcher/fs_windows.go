//go:build windows

package watcher

import (
	"path/filepath"
	"strings"

	"golang.org/x/sys/windows"
)

// filesystemKind reports whether path is a UNC path or on a remote (mapped
// network) drive; change notifications from other machines are unreliable there.
func filesystemKind(path string) (name string, remote bool, err error) {
	if strings.HasPrefix(path, `\\`) || strings.HasPrefix(path, `//`) {
		if strings.HasPrefix(path, `\\?\`) && !strings.HasPrefix(strings.ToUpper(path), `\\?\UNC\`) {
			// long-path prefix on a local drive: look at the drive below
			path = path[4:]
		} else {
			return "unc", true, nil
		}
	}
	vol := filepath.VolumeName(path)
	if vol == "" {
		return "", false, nil
	}
	p, err := windows.UTF16PtrFromString(vol + `\`)
	if err != nil {
		return "", false, err
	}
	if windows.GetDriveType(p) == windows.DRIVE_REMOTE {
		return "remote drive", true, nil
	}
	return "local", false, nil
}

// watchLimitHint: ReadDirectoryChangesW has no per-user watch limit.
func watchLimitHint(error) (string, bool) { return "", false }
