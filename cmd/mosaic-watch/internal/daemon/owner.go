package daemon

// One owner per state folder and per input folder: two daemons on one state_dir would both
// follow (and the second would release) the same runs, and two instances with different state
// folders on one input would each process, and bill, every file.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
	"github.com/mosaic-watch/mosaic-watch/watcher"
)

// AlreadyRunningError is New's error when another process uses the same state folder.
type AlreadyRunningError struct {
	StateDir string
	Holder   pipeline.LockHolder
}

func (e *AlreadyRunningError) Error() string {
	if e.Holder.PID == 0 {
		return fmt.Sprintf("mosaic-watch is already running with state_dir %s; stop it first, "+
			"or give this configuration its own state_dir", e.StateDir)
	}
	return fmt.Sprintf("mosaic-watch is already running as PID %d on %s with state_dir %s "+
		"(config %s); stop it first, or give this configuration its own state_dir",
		e.Holder.PID, e.Holder.Host, e.StateDir, e.Holder.Config)
}

// newInstanceID names this process for job leases and locks: every process gets its own, so
// that no other process's leases are ever taken for ours.
func newInstanceID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

func holderFor(cfg *config.Config, id string) pipeline.LockHolder {
	host, _ := os.Hostname()
	return pipeline.LockHolder{Host: host, PID: os.Getpid(), Config: cfg.File, Instance: id}
}

// lockState takes the state folder for this process.
func lockState(dir string, h pipeline.LockHolder) (*pipeline.FolderLock, error) {
	l, err := pipeline.LockFolder(dir, h)
	var le *pipeline.LockedError
	if errors.As(err, &le) {
		return nil, &AlreadyRunningError{StateDir: dir, Holder: le.Holder}
	}
	if err != nil {
		return nil, fmt.Errorf("lock state_dir: %w", err)
	}
	return l, nil
}

// instanceFile keeps, in the state folder, the instance id of the last process that used it.
const instanceFile = "instance-id"

// takeOver records this process as the state folder's owner and releases the leases of the
// previous process on this state folder at once (it is gone: we hold the state lock), so its
// unfinished jobs resume now rather than when their leases run out. The previous id is kept in
// the state folder, not in the store: a store shared with other hosts holds their live leases,
// which only expire. (A state folder of an older version kept it in the SQLite store's meta.)
func (d *Daemon) takeOver(ctx context.Context, st store.Store, stateDir string) error {
	path := filepath.Join(stateDir, instanceFile)
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read the previous instance id: %w", err)
	}
	prev := strings.TrimSpace(string(b))
	if _, sqlite := st.(*store.SQLite); prev == "" && sqlite {
		if prev, err = st.GetMeta(ctx, "instance_id"); err != nil {
			return fmt.Errorf("read the previous instance id: %w", err)
		}
	}
	if prev != "" && prev != d.owner {
		n, err := st.ReleaseOwner(ctx, prev)
		if err != nil {
			return fmt.Errorf("take back the previous run's jobs: %w", err)
		}
		if n > 0 {
			d.log.Info("resuming unfinished jobs of the previous run", "jobs", n)
		}
		_ = st.RemoveInstance(ctx, prev)
	}
	if err := writeFileAtomic(path, []byte(d.owner+"\n")); err != nil {
		return fmt.Errorf("save instance id: %w", err)
	}
	return nil
}

// writeFileAtomic replaces path with data: a crash leaves the old content or the new.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// lockInputs takes the lock of every input folder in folders that this process does not hold
// yet, and returns the folders it serves. A folder another instance serves is refused (and
// shown degraded, naming that instance) and tried again at the next reload; one that cannot
// carry a lock (a read-only share) is served unlocked, with a warning.
func (d *Daemon) lockInputs(folders []config.Folder) ([]config.Folder, error) {
	d.locksMu.Lock()
	defer d.locksMu.Unlock()
	var served []config.Folder
	for _, f := range folders {
		if d.inputLocks[f.Input] != nil {
			served = append(served, f)
			continue
		}
		l, err := d.lockInput(f.Input)
		var le *pipeline.LockedError
		switch {
		case err == nil:
			d.inputLocks[f.Input] = l
		case errors.As(err, &le):
			why := fmt.Sprintf("served by another mosaic-watch instance (%s); not served here",
				le.Holder)
			if le.Holder.PID == 0 {
				why = "served by another mosaic-watch instance; not served here"
			}
			d.log.Error("folder refused: another mosaic-watch instance serves it; the other folders "+
				"are served", "folder", f.Name, "input", f.Input, "holder", le.Holder.String())
			d.refused[f.Input] = why
			continue
		default:
			d.log.Warn("serving the folder without its lock: another mosaic-watch instance on the "+
				"same folder would process its files too", "folder", f.Name, "input", f.Input,
				"err", err)
		}
		delete(d.refused, f.Input)
		served = append(served, f)
	}
	if len(served) == 0 {
		return nil, fmt.Errorf("every input folder is served by another mosaic-watch instance: %s",
			d.refusedSummaryLocked())
	}
	return served, nil
}

// lockInput takes an input folder's lock: alone with SQLite, together with the daemons on the
// same database with PostgreSQL.
func (d *Daemon) lockInput(input string) (*pipeline.FolderLock, error) {
	if d.inputHolder.Store != "" {
		return pipeline.LockFolderShared(input, d.inputHolder)
	}
	return pipeline.LockFolder(input, d.holder)
}

// releaseInputs lets go of the locks of inputs not in keep (folders no longer served). Why a
// folder was refused is kept while it is configured (see forgetRefused): it is still not served.
func (d *Daemon) releaseInputs(keep []config.Folder) {
	d.locksMu.Lock()
	defer d.locksMu.Unlock()
	for in, l := range d.inputLocks {
		if !hasInput(keep, in) {
			l.Close()
			delete(d.inputLocks, in)
		}
	}
}

// forgetRefused forgets why folders no longer in configured were refused.
func (d *Daemon) forgetRefused(configured []config.Folder) {
	d.locksMu.Lock()
	defer d.locksMu.Unlock()
	for in := range d.refused {
		if !hasInput(configured, in) {
			delete(d.refused, in)
		}
	}
}

// servedFolders is the folders this process watches and processes now.
func (d *Daemon) servedFolders() []config.Folder {
	d.locksMu.Lock()
	defer d.locksMu.Unlock()
	return d.served
}

func (d *Daemon) refusedSummaryLocked() string {
	s := ""
	for in, why := range d.refused {
		if s != "" {
			s += "; "
		}
		s += in + " " + why
	}
	return s
}

// unlock releases the input and state locks (the state lock last).
func (d *Daemon) unlock() {
	d.releaseInputs(nil)
	d.locksMu.Lock()
	defer d.locksMu.Unlock()
	if d.stateLock != nil {
		d.stateLock.Close()
		d.stateLock = nil
	}
}

// lockCheckEvery is how often the input locks are checked: a lock file removed or replaced under
// a running daemon (a sync tool, someone cleaning hidden files, a share remounted) excludes
// nobody, so a second instance could take the folder. A stat per input per second is cheap.
const lockCheckEvery = time.Second

// guardLocks keeps the input locks held while the daemon runs; see checkLocks. It returns an
// error when no folder is left to serve.
func (d *Daemon) guardLocks(ctx context.Context) error {
	t := time.NewTicker(lockCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := d.checkLocks(ctx); err != nil {
			return err
		}
		d.releaseFinished(ctx)
	}
}

// busyFolders returns the folders among removed whose runs are underway (or cannot be told).
func (d *Daemon) busyFolders(ctx context.Context, removed []config.Folder) []config.Folder {
	var busy []config.Folder
	for _, f := range removed {
		if underway, err := d.pipe.RunsUnderway(ctx, f.Input); underway || err != nil {
			busy = append(busy, f)
		}
	}
	return busy
}

// releaseFinished lets go of the locks of folders no longer served (removed from the
// configuration) once their last runs are done.
func (d *Daemon) releaseFinished(ctx context.Context) {
	d.locksMu.Lock()
	var retired []string
	for in := range d.inputLocks {
		if !slices.ContainsFunc(d.served, func(f config.Folder) bool { return f.Input == in }) {
			retired = append(retired, in)
		}
	}
	d.locksMu.Unlock()
	for _, in := range retired {
		if underway, err := d.pipe.RunsUnderway(ctx, in); err != nil || underway {
			continue
		}
		d.reload.mu.Lock() // a reload may be serving the folder again meanwhile
		d.locksMu.Lock()
		if l := d.inputLocks[in]; l != nil &&
			!slices.ContainsFunc(d.served, func(f config.Folder) bool { return f.Input == in }) {
			l.Close()
			delete(d.inputLocks, in)
			d.log.Info("the runs of a folder removed from the configuration are done; its lock is released",
				"input", in)
		}
		d.locksMu.Unlock()
		d.reload.mu.Unlock()
	}
}

// checkStateLock takes a lost state folder lock again: without it a second daemon could open
// the same database and take this one's leases. If one did meanwhile, this daemon stops.
func (d *Daemon) checkStateLock() error {
	d.locksMu.Lock()
	defer d.locksMu.Unlock()
	if d.stateLock == nil || !d.stateLock.Lost() {
		return nil
	}
	dir := d.config().StateDir
	l, err := lockState(dir, d.holder)
	var are *AlreadyRunningError
	switch {
	case err == nil:
		d.stateLock.Close()
		d.stateLock = l
		d.log.Warn("the state folder's lock file was removed or replaced; it is locked again", "state_dir", dir)
	case errors.As(err, &are):
		return fmt.Errorf("another mosaic-watch took the state folder after its lock file was removed: %w", err)
	default:
		d.log.Debug("cannot lock the state folder again yet", "state_dir", dir, "err", err)
	}
	return nil
}

// checkLocks takes a lost input lock again. If another instance took the folder meanwhile, this
// one stops serving it, as if it had been refused at start: two instances would each process,
// and bill, every file. A folder that cannot be locked right now (a share that is away) keeps
// its old lock and is tried again at the next check.
func (d *Daemon) checkLocks(ctx context.Context) error {
	if err := d.checkStateLock(); err != nil {
		return err
	}
	d.locksMu.Lock()
	var lost []string
	for in, l := range d.inputLocks {
		if l.Lost() {
			lost = append(lost, in)
		}
	}
	d.locksMu.Unlock()
	if len(lost) == 0 {
		return nil
	}
	d.reload.mu.Lock() // no reload changes the served folders meanwhile
	defer d.reload.mu.Unlock()
	d.locksMu.Lock()
	yielded := false
	for _, in := range lost {
		old := d.inputLocks[in]
		if old == nil || !old.Lost() {
			continue
		}
		l, err := d.lockInput(in)
		var le *pipeline.LockedError
		switch {
		case err == nil:
			old.Close()
			d.inputLocks[in] = l
			d.log.Warn("the input folder's lock file was removed or replaced; it is locked again",
				"input", in)
		case errors.As(err, &le):
			old.Close()
			delete(d.inputLocks, in)
			d.refused[in] = fmt.Sprintf("served by another mosaic-watch instance (%s), which took "+
				"it after its lock file was removed; not served here", le.Holder)
			d.served = slices.DeleteFunc(slices.Clone(d.served), func(f config.Folder) bool { return f.Input == in })
			yielded = true
			d.log.Error("folder given up: its lock file was removed and another mosaic-watch instance "+
				"took it; runs already started here are followed to the end", "input", in,
				"holder", le.Holder.String())
		default:
			d.log.Debug("cannot lock the input folder again yet", "input", in, "err", err)
		}
	}
	served := d.served
	d.locksMu.Unlock()
	if !yielded {
		return nil
	}
	if len(served) == 0 {
		return errors.New("every input folder is now served by another mosaic-watch instance")
	}
	roots := make([]watcher.Root, len(served))
	for i := range served {
		roots[i] = served[i].WatchRoot()
	}
	if err := d.watcher.SetRoots(roots); err != nil {
		return fmt.Errorf("stop watching a folder another instance took: %w", err)
	}
	if err := d.pipe.SetFolders(ctx, pipelineFolders(served)); err != nil {
		return fmt.Errorf("stop serving a folder another instance took: %w", err)
	}
	return nil
}
