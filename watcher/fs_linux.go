//go:build linux

package watcher

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// remoteMagic maps statfs f_type values of filesystems that deliver no (or only
// local) inotify events to a readable name.
var remoteMagic = map[int64]string{
	0x6969:     "nfs",
	0x517B:     "smb",
	0xFE534D42: "smb2",
	0xFF534D42: "cifs",
	0x65735546: "fuse (also virtiofs, sshfs, rclone mount)",
	0x01021997: "9p",
	0x00C36400: "ceph",
	0x5346414F: "afs",
	0x6B414653: "kafs",
	0x73757245: "coda",
	0x564C:     "ncp",
	0x0BD00BD0: "lustre",
	0x47504653: "gpfs",
	0x786F4256: "vboxsf",
	0x7C7C6673: "prl_fs",
	0x013111A8: "ibrix",
	0x19830326: "fhgfs/beegfs",
	0xA501FCF5: "vxfs",
}

// filesystemKind reports the filesystem of path and whether inotify is
// unreliable on it, so auto mode polls instead.
func filesystemKind(path string) (name string, remote bool, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "", false, fmt.Errorf("statfs %s: %w", path, err)
	}
	t := int64(st.Type) & 0xFFFFFFFF
	if n, ok := remoteMagic[t]; ok {
		return n, true, nil
	}
	return fmt.Sprintf("0x%x", t), false, nil
}

// watchLimitHint recognises the inotify limit errors from Add and says which
// sysctl to raise.
func watchLimitHint(err error) (string, bool) {
	switch {
	case errors.Is(err, unix.ENOSPC):
		return "the inotify watch limit is reached: raise it with `sudo sysctl fs.inotify.max_user_watches=524288` " +
			"and persist it with `echo fs.inotify.max_user_watches=524288 | sudo tee /etc/sysctl.d/90-mosaic-watch.conf`", true
	case errors.Is(err, unix.EMFILE):
		return "the inotify instance limit is reached: raise it with `sudo sysctl fs.inotify.max_user_instances=1024` " +
			"and persist it with `echo fs.inotify.max_user_instances=1024 | sudo tee /etc/sysctl.d/90-mosaic-watch.conf`", true
	}
	return "", false
}
