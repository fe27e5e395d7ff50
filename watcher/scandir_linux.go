//go:build linux

package watcher

import (
	"encoding/binary"
	"io/fs"
	"sync"

	"golang.org/x/sys/unix"
)

// scanDir is a folder opened for a scan. On Linux it is a bare descriptor:
// entries come from getdents64 with their types, and candidates are
// lstat'ed with fstatat relative to it, so the kernel resolves one name
// instead of the whole path. No os.File: that would cost an fcntl per folder
// and an allocation per entry.
type scanDir struct {
	fd   int
	path string // for errors
}

func openScanDir(path string) (*scanDir, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return &scanDir{fd: fd, path: path}, nil
	}
}

func (d *scanDir) close() { unix.Close(d.fd) }

var direntBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// entries calls fn for every entry except "." and ".."; name is only valid
// during the call. typ is 0 for a
// regular file, fs.ModeDir, fs.ModeIrregular for anything else, or
// fs.ModeType when the filesystem did not say (lstat to find out).
func (d *scanDir) entries(fn func(name []byte, typ fs.FileMode)) error {
	bp := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(bp)
	buf := *bp
	for {
		n, err := unix.Getdents(d.fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "getdents", Path: d.path, Err: err}
		}
		if n <= 0 {
			return nil
		}
		for off := 0; off+19 <= n; {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name
			reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
			if reclen < 19 || off+reclen > n {
				return &fs.PathError{Op: "getdents", Path: d.path, Err: unix.EINVAL}
			}
			typ, raw := buf[off+18], buf[off+19:off+reclen]
			off += reclen
			nameLen := 0
			for nameLen < len(raw) && raw[nameLen] != 0 {
				nameLen++
			}
			raw = raw[:nameLen]
			if (len(raw) == 1 && raw[0] == '.') || (len(raw) == 2 && raw[0] == '.' && raw[1] == '.') {
				continue
			}
			fn(raw, direntType(typ))
		}
	}
}

func direntType(t uint8) fs.FileMode {
	switch t {
	case unix.DT_REG:
		return 0
	case unix.DT_DIR:
		return fs.ModeDir
	case unix.DT_UNKNOWN:
		return fs.ModeType
	}
	return fs.ModeIrregular
}

// stat lstats one entry of the folder.
func (d *scanDir) stat(name string) (entryInfo, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return entryInfo{}, &fs.PathError{Op: "fstatat", Path: name, Err: err}
		}
		break
	}
	return statInfo(&st), nil
}
