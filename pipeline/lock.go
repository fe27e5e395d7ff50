package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// LockName is the hidden file that marks a folder as served by one mosaic-watch process: each
// input folder holds one (the watcher never reports it), and so does the state folder. The
// lock is an advisory lock of the operating system on that file (an open-file-description lock
// on Linux, flock on other unix systems, LockFileEx on Windows), so it is released when its
// holder exits or dies, however it dies; the file itself only says who holds it.
const LockName = ".mosaic-watch.lock"

// LockHolder describes the process that holds a folder lock, for the message another
// instance prints when it finds the folder taken.
type LockHolder struct {
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	Config   string    `json:"config,omitempty"`
	Instance string    `json:"instance,omitempty"`
	Since    time.Time `json:"since"`
}

func (h LockHolder) String() string {
	s := fmt.Sprintf("PID %d on %s", h.PID, h.Host)
	if h.Config != "" {
		s += " with config " + h.Config
	}
	return s
}

// LockedError is returned by LockFolder when another process holds the folder.
type LockedError struct {
	Dir    string
	Holder LockHolder // zero when the holder wrote nothing readable (yet)
}

func (e *LockedError) Error() string {
	if e.Holder.PID == 0 {
		return fmt.Sprintf("%s is in use by another mosaic-watch process", e.Dir)
	}
	return fmt.Sprintf("%s is in use by another mosaic-watch process: %s", e.Dir, e.Holder)
}

// ErrCannotLock wraps the reason a folder cannot carry a lock at all (a read-only share, a
// filesystem without locks). The caller decides whether to serve it unlocked.
var ErrCannotLock = errors.New("cannot lock the folder")

// FolderLock is a held folder lock; Close releases it.
type FolderLock struct {
	dir  string
	file lockFile
}

// LockFolder takes the exclusive lock of dir and records holder in its lock file. It fails
// with *LockedError while another process holds it, and with an error wrapping ErrCannotLock
// when dir cannot carry a lock. The lock file is opened without following links and must be a
// plain file of its own: a folder other people write to cannot redirect the write.
func LockFolder(dir string, holder LockHolder) (*FolderLock, error) {
	if holder.Since.IsZero() {
		holder.Since = time.Now().UTC().Truncate(time.Second)
	}
	info, err := json.Marshal(holder)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		lf, err := openLockFile(dir)
		if err != nil {
			return nil, err
		}
		held, err := lf.tryLock()
		if err != nil {
			lf.close()
			return nil, fmt.Errorf("lock %s: %w: %v", dir, ErrCannotLock, err)
		}
		if !held {
			h := readHolder(lf)
			lf.close()
			return nil, &LockedError{Dir: dir, Holder: h}
		}
		// A holder that was releasing may have removed the file we opened: lock the one
		// that is there now.
		if lf.stillNamed() {
			if err := lf.write(append(info, '\n')); err != nil {
				lf.close()
				return nil, fmt.Errorf("write %s: %w", filepath.Join(dir, LockName), err)
			}
			return &FolderLock{dir: dir, file: lf}, nil
		}
		lf.close()
		if attempt == 5 {
			return nil, fmt.Errorf("lock %s: the lock file keeps changing", dir)
		}
	}
}

// Close removes the lock file and releases the lock.
func (l *FolderLock) Close() error {
	if l == nil || l.file == nil {
		return nil
	}
	l.file.remove()
	err := l.file.close()
	l.file = nil
	return err
}

// Lost reports whether the folder's lock file is no longer the file this lock holds: removed
// (a sync tool, someone cleaning hidden files), replaced, or the folder unmounted or swapped
// under it. The lock then excludes nobody: another instance could take the folder.
func (l *FolderLock) Lost() bool {
	return l != nil && l.file != nil && l.file.lost(l.dir)
}

func readHolder(lf lockFile) LockHolder {
	b, _ := lf.read(4096)
	var h LockHolder
	if json.Unmarshal([]byte(strings.TrimSpace(string(b))), &h) != nil {
		return LockHolder{}
	}
	return h
}

// lockFile is the platform's handle on an open lock file.
type lockFile interface {
	tryLock() (held bool, err error)
	stillNamed() bool     // the folder's lock file is still the file we hold open
	lost(dir string) bool // the lock file at dir, looked up by path now, is not the file we hold
	read(max int) ([]byte, error)
	write(b []byte) error // replaces the content
	remove()              // removes the name, if it is still ours
	close() error         // releases the lock
}
