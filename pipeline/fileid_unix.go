//go:build unix

package pipeline

import (
	"fmt"
	"os"
	"syscall"
)

// fileIdentity names the file behind fi (device and inode), or "" when unknown.
func fileIdentity(fi os.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
