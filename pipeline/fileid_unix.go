//go:build unix

package pipeline

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// fileIdentity names the file behind f (device and inode), or "" when unknown.
func fileIdentity(f *os.File) string {
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	dev, ino, ok := devIno(fi)
	if !ok {
		return ""
	}
	return strconv.FormatUint(dev, 10) + ":" + strconv.FormatUint(ino, 10)
}

func devIno(fi os.FileInfo) (dev, ino uint64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return uint64(st.Dev), uint64(st.Ino), true
}

// matchIdentity compares the file behind fi with the identity recorded for a job.
func matchIdentity(recorded string, fi os.FileInfo) idMatch {
	d, i, ok := strings.Cut(recorded, ":")
	if !ok {
		return idUnknown
	}
	rdev, err1 := strconv.ParseUint(d, 10, 64)
	rino, err2 := strconv.ParseUint(i, 10, 64)
	dev, ino, known := devIno(fi)
	switch {
	case err1 != nil || err2 != nil || !known:
		return idUnknown
	case dev != rdev:
		return idRemounted
	case ino != rino:
		return idOther
	}
	return idSame
}
