//go:build darwin

package watcher

import (
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// statEntry lstats one entry of an open folder with fstatat relative to the
// folder's descriptor: the kernel resolves one name instead of the whole path,
// which is most of the cost of a scan.
func statEntry(dir *os.File, _ string, name string) (entryInfo, error) {
	rc, err := dir.SyscallConn()
	if err != nil {
		return entryInfo{}, err
	}
	var st unix.Stat_t
	var statErr error
	if err := rc.Control(func(fd uintptr) {
		statErr = unix.Fstatat(int(fd), name, &st, unix.AT_SYMLINK_NOFOLLOW)
	}); err != nil {
		return entryInfo{}, err
	}
	if statErr != nil {
		return entryInfo{}, &fs.PathError{Op: "fstatat", Path: name, Err: statErr}
	}
	return statInfo(&st), nil
}
