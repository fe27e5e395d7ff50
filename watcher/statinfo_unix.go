//go:build linux || darwin

package watcher

import (
	"io/fs"
	"time"

	"golang.org/x/sys/unix"
)

// statInfo turns a stat result into what the scan keeps about an entry.
func statInfo(st *unix.Stat_t) entryInfo {
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
		id: fileID{hi: uint64(st.Dev), lo: uint64(st.Ino)}}
}
