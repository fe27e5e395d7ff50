//go:build unix

package watcher

import (
	"io/fs"
	"strconv"
	"syscall"
)

// fileIdentity returns (dev, ino) from the stat data already in fi.
func fileIdentity(_ string, fi fs.FileInfo) fileID {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}
	}
	return fileID{hi: uint64(st.Dev), lo: uint64(st.Ino)}
}

// String is "dev:ino".
func (id fileID) String() string {
	var buf [41]byte
	b := strconv.AppendUint(buf[:0], id.hi, 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, id.lo, 10)
	return string(b)
}
