//go:build darwin

package watcher

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// filesystemKind reports the filesystem type name of path and whether kqueue
// events are unreliable on it (network and FUSE filesystems).
func filesystemKind(path string) (name string, remote bool, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "", false, fmt.Errorf("statfs %s: %w", path, err)
	}
	b := st.Fstypename[:]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	name = string(b)
	switch {
	case name == "nfs", name == "smbfs", name == "afpfs", name == "webdav", name == "cifs",
		name == "ftp", name == "osxfuse", name == "macfuse", strings.HasPrefix(name, "fuse"),
		strings.Contains(name, "fuse"):
		return name, true, nil
	}
	return name, false, nil
}

// watchLimitHint recognises kqueue's descriptor exhaustion.
func watchLimitHint(err error) (string, bool) {
	if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) {
		return "kqueue needs one open file per watched file and the descriptor limit is reached: raise it " +
			"(`ulimit -n 65536`, or SoftResourceLimits/NumberOfFiles in the launchd plist)", true
	}
	return "", false
}
