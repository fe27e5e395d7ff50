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
	// Store identifies the shared job store (a PostgreSQL database) of a holder that shares
	// the folder with the other instances on that store (LockFolderShared); "" for a holder
	// that serves the folder alone. Database names it for people (never a password).
	Store    string `json:"store,omitempty"`
	Database string `json:"database,omitempty"`
	// Input is the folder's path as the first instance of the shared store named it: jobs are
	// keyed by that path, so every instance of the store must use the same one.
	Input string `json:"input,omitempty"`
}

func (h LockHolder) String() string {
	s := fmt.Sprintf("PID %d on %s", h.PID, h.Host)
	if h.Config != "" {
		s += " with config " + h.Config
	}
	switch {
	case h.Database != "":
		s += ", sharing the folder through the database " + h.Database
	case h.Store == "" && h.PID != 0:
		s += ", alone (its own state database)"
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
	dir    string
	file   lockFile
	shared bool
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

// sharedLockTries bounds how often LockFolderShared looks again while an instance of the same
// store holds the lock exclusively for the moment it takes to write the lock file.
const sharedLockTries = 50

// LockFolderShared takes dir's lock for an instance on the shared job store holder.Store:
// instances on the same store hold it together (a shared lock of the operating system) and
// cooperate on the folder; an instance that serves it alone (LockFolder), or one on another
// store, is refused with *LockedError, and refuses them. The first instance records itself in
// the lock file; the others check its store.
func LockFolderShared(dir string, holder LockHolder) (*FolderLock, error) {
	if holder.Store == "" {
		return nil, errors.New("LockFolderShared: no store named")
	}
	holder.Input = filepath.Clean(dir)
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
		if held {
			// Alone on the folder: record our store, then let the others of the store in.
			if !lf.stillNamed() {
				lf.close()
				continue
			}
			if err := lf.write(append(info, '\n')); err != nil {
				lf.close()
				return nil, fmt.Errorf("write %s: %w", filepath.Join(dir, LockName), err)
			}
			if err := lf.downgrade(); err != nil {
				lf.close()
				return nil, fmt.Errorf("lock %s: %w: %v", dir, ErrCannotLock, err)
			}
			return &FolderLock{dir: dir, file: lf, shared: true}, nil
		}
		shared, err := lf.tryLockShared()
		if err != nil {
			lf.close()
			return nil, fmt.Errorf("lock %s: %w: %v", dir, ErrCannotLock, err)
		}
		h := readHolder(lf)
		same := h.Store == holder.Store
		if shared && same && h.Input != "" && h.Input != holder.Input {
			// Another path to the same folder (the share mounted elsewhere, a link): jobs are
			// keyed by the path, so this instance would run every file a second time.
			lf.close()
			return nil, fmt.Errorf("lock %s: the instances of this database use this folder as %s (%s): every host of a database must name an input folder by the same path (mount the share at the same path)",
				dir, h.Input, h)
		}
		if shared && same && lf.stillNamed() {
			return &FolderLock{dir: dir, file: lf, shared: true}, nil
		}
		lf.close()
		// An instance of our store holds it exclusively for the moment it writes the file, the
		// file is being written, or it was released meanwhile: look again.
		if (same || h.PID == 0) && attempt < sharedLockTries {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if same {
			return nil, fmt.Errorf("lock %s: the lock file keeps changing", dir)
		}
		return nil, &LockedError{Dir: dir, Holder: h}
	}
}

// Close removes the lock file and releases the lock. A shared lock removes the file only when
// no other instance holds it.
func (l *FolderLock) Close() error {
	if l == nil || l.file == nil {
		return nil
	}
	if !l.shared || l.file.lastHolder() {
		l.file.remove()
	}
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
	tryLockShared() (held bool, err error) // held means no exclusive holder
	downgrade() error                      // exclusive to shared, without letting go
	lastHolder() bool                      // the shared lock held can become exclusive: nobody else holds it
	stillNamed() bool                      // the folder's lock file is still the file we hold open
	lost(dir string) bool                  // the lock file at dir, looked up by path now, is not the file we hold
	read(max int) ([]byte, error)
	write(b []byte) error // replaces the content
	remove()              // removes the name, if it is still ours
	close() error         // releases the lock
}
