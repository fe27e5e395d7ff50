//go:build darwin

package watcher

import (
	"io/fs"
	"os"
	"time"

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
	var typ fs.FileMode
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFDIR:
		typ = fs.ModeDir
	default:
		typ = fs.ModeIrregular // links, devices, sockets: never followed or reported
	}
	sec, nsec := st.Mtim.Unix()
	return entryInfo{typ: typ, size: st.Size, mtime: time.Unix(sec, nsec),
		id: fileID{hi: uint64(st.Dev), lo: uint64(st.Ino)}}, nil
}
