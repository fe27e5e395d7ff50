package pipeline

import (
	"io"

	"golang.org/x/sys/unix"
)

// lockExclusive takes an open-file-description lock: like flock it belongs to this open file
// (two opens in one process exclude each other), and like fcntl locks it reaches NFS and SMB
// servers, so instances on two hosts sharing a folder exclude each other too.
func lockExclusive(fd int) error {
	return unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart})
}

// lockShared takes a shared lock: it fails while another process holds the exclusive one.
func lockShared(fd int) error {
	return unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &unix.Flock_t{Type: unix.F_RDLCK, Whence: io.SeekStart})
}
