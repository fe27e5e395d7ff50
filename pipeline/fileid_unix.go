//go:build unix

package pipeline

import (
	"fmt"
	"os"
	"syscall"
)

// fileIdentity names the file behind f (device and inode), or "" when unknown.
func fileIdentity(f *os.File) string {
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
