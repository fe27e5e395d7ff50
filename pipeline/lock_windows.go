package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
)

// lockOffset is where the locked byte lies: past any content, because a byte range locked
// with LockFileEx cannot be read by other processes, and they must read who holds the lock.
const lockOffset = 1 << 30

type windowsLockFile struct {
	path     string
	file     *os.File
	held     bool // tryLock took the lock
	removeIt bool // delete the file once closed (a file open here cannot be deleted)
}

func openLockFile(dir string) (lockFile, error) {
	path := filepath.Join(dir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("lock %s: %w: the folder is not writable (%v)", dir, ErrCannotLock, err)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return &windowsLockFile{path: path, file: f}, nil
}

func (l *windowsLockFile) tryLock() (bool, error) {
	ol := windows.Overlapped{Offset: lockOffset}
	err := windows.LockFileEx(windows.Handle(l.file.Fd()),
		windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
	switch {
	case err == nil:
		l.held = true
		return true, nil
	case errors.Is(err, windows.ERROR_LOCK_VIOLATION), errors.Is(err, windows.ERROR_IO_PENDING):
		return false, nil
	}
	return false, err
}

func (l *windowsLockFile) tryLockShared() (bool, error) {
	ol := windows.Overlapped{Offset: lockOffset}
	err := windows.LockFileEx(windows.Handle(l.file.Fd()), windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
	switch {
	case err == nil:
		l.held = true
		return true, nil
	case errors.Is(err, windows.ERROR_LOCK_VIOLATION), errors.Is(err, windows.ERROR_IO_PENDING):
		return false, nil
	}
	return false, err
}

// downgrade adds a shared lock on the same handle (allowed over one's own exclusive lock) and
// then unlocks once, which releases the exclusive lock first.
func (l *windowsLockFile) downgrade() error {
	ol := windows.Overlapped{Offset: lockOffset}
	if err := windows.LockFileEx(windows.Handle(l.file.Fd()), windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol); err != nil {
		return err
	}
	ol = windows.Overlapped{Offset: lockOffset}
	return windows.UnlockFileEx(windows.Handle(l.file.Fd()), 0, 1, 0, &ol)
}

// lastHolder: the file is removed at close, which fails harmlessly while another instance has
// it open, so removing is always safe to ask for.
func (l *windowsLockFile) lastHolder() bool { return true }

// stillNamed: Go opens files without FILE_SHARE_DELETE, so while we hold the file open nobody
// can delete or rename it.
func (l *windowsLockFile) stillNamed() bool { return true }

// lost: the file cannot be deleted or renamed while we hold it open (see stillNamed).
func (l *windowsLockFile) lost(dir string) bool { return false }

func (l *windowsLockFile) read(max int) ([]byte, error) {
	b := make([]byte, max)
	n, err := l.file.ReadAt(b, 0)
	if n > 0 {
		err = nil
	}
	return b[:n], err
}

func (l *windowsLockFile) write(b []byte) error {
	if err := l.file.Truncate(0); err != nil {
		return err
	}
	if _, err := l.file.WriteAt(b, 0); err != nil {
		return err
	}
	return l.file.Sync()
}

// remove is done by close: the file cannot be deleted while it is open.
func (l *windowsLockFile) remove() { l.removeIt = true }

func (l *windowsLockFile) close() error {
	if l.held {
		ol := windows.Overlapped{Offset: lockOffset}
		_ = windows.UnlockFileEx(windows.Handle(l.file.Fd()), 0, 1, 0, &ol)
	}
	err := l.file.Close()
	if l.removeIt {
		_ = os.Remove(l.path) // fails harmlessly while another instance has it open
	}
	return err
}
