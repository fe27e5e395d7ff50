//go:build unix

package watcher

import (
	"io/fs"
	"strconv"
	"syscall"
)

// fileIdentity returns "dev:ino" from the stat data already in fi.
func fileIdentity(_ string, fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return strconv.FormatUint(uint64(st.Dev), 10) + ":" + strconv.FormatUint(uint64(st.Ino), 10)
}
