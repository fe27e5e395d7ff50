//go:build unix

package pipeline

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// unixLockFile is the lock file opened relative to its folder.
type unixLockFile struct {
	dir  *os.File // the folder, pinned
	file *os.File
}

func openLockFile(dir string) (lockFile, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Openat(int(d.Fd()), LockName, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		d.Close()
		switch {
		case errors.Is(err, unix.EACCES), errors.Is(err, unix.EROFS), errors.Is(err, unix.EPERM):
			if le := heldElsewhere(dir); le != nil {
				return nil, le // read-only here, but another instance holds it
			}
			return nil, fmt.Errorf("lock %s: %w: the folder is not writable (%v)", dir, ErrCannotLock, err)
		case errors.Is(err, unix.ELOOP):
			return nil, fmt.Errorf("lock %s: %s is a symbolic link; remove it", dir, LockName)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	f := os.NewFile(uintptr(fd), LockName)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 {
		f.Close()
		d.Close()
		return nil, fmt.Errorf("lock %s: %s is not a plain file of its own; remove it", dir, LockName)
	}
	return &unixLockFile{dir: d, file: f}, nil
}

func (l *unixLockFile) tryLock() (bool, error) {
	err := lockExclusive(int(l.file.Fd()))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EACCES), errors.Is(err, unix.EWOULDBLOCK):
		return false, nil
	}
	return false, err // ENOLCK: no locks on this filesystem
}

func (l *unixLockFile) tryLockShared() (bool, error) {
	err := lockShared(int(l.file.Fd()))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EACCES), errors.Is(err, unix.EWOULDBLOCK):
		return false, nil
	}
	return false, err
}

// downgrade turns the exclusive lock into a shared one (a lock on the same open file is
// converted in place).
func (l *unixLockFile) downgrade() error { return lockShared(int(l.file.Fd())) }

// lastHolder converts the shared lock into an exclusive one, which succeeds only when nobody
// else holds it; the lock is given up at close anyway.
func (l *unixLockFile) lastHolder() bool { return lockExclusive(int(l.file.Fd())) == nil }

func (l *unixLockFile) stillNamed() bool {
	var a, b unix.Stat_t
	if unix.Fstat(int(l.file.Fd()), &a) != nil {
		return false
	}
	if unix.Fstatat(int(l.dir.Fd()), LockName, &b, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// lost looks the lock file up by path, not through the pinned folder, which may be a share
// unmounted (lazily) since or a folder renamed away.
func (l *unixLockFile) lost(dir string) bool {
	var a, b unix.Stat_t
	if unix.Fstat(int(l.file.Fd()), &a) != nil {
		return true
	}
	if unix.Lstat(dir+"/"+LockName, &b) != nil {
		return true
	}
	return a.Dev != b.Dev || a.Ino != b.Ino
}

func (l *unixLockFile) read(max int) ([]byte, error) {
	b := make([]byte, max)
	n, err := l.file.ReadAt(b, 0)
	if n > 0 {
		err = nil
	}
	return b[:n], err
}

func (l *unixLockFile) write(b []byte) error {
	if err := l.file.Truncate(0); err != nil {
		return err
	}
	if _, err := l.file.WriteAt(b, 0); err != nil {
		return err
	}
	return l.file.Sync()
}

func (l *unixLockFile) remove() {
	if l.stillNamed() {
		_ = unix.Unlinkat(int(l.dir.Fd()), LockName, 0)
	}
}

func (l *unixLockFile) close() error {
	err := l.file.Close() // closing the only descriptor releases the lock
	l.dir.Close()
	return err
}

// heldElsewhere looks, without writing, whether another process holds the lock of a folder
// this process cannot write to (a share mounted read-only here, writable elsewhere).
func heldElsewhere(dir string) *LockedError {
	fd, err := unix.Open(dir+"/"+LockName, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	f := os.NewFile(uintptr(fd), LockName)
	defer f.Close()
	if err := lockShared(fd); err == nil || !(errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EWOULDBLOCK) || errors.Is(err, unix.EACCES)) {
		return nil // free (our shared lock goes with the close)
	}
	l := &unixLockFile{file: f}
	return &LockedError{Dir: dir, Holder: readHolder(l)}
}
