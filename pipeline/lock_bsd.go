//go:build unix && !linux

package pipeline

import "golang.org/x/sys/unix"

// lockExclusive takes a flock lock, released when the holder's file is closed or it dies.
func lockExclusive(fd int) error { return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) }

// lockShared takes a shared lock: it fails while another process holds the exclusive one.
func lockShared(fd int) error { return unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB) }
