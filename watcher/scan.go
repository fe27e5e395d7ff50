package watcher

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

const scanBatch = 256

// scanSpec is the loop's view of a root when it starts a scan.
type scanSpec struct {
	gen        uint64
	mode       Mode   // "" = not resolved yet (auto)
	prevRootID string // identity seen by the previous healthy scan
}

// scanRoot checks the root, resolves the mode, adds watches (events mode) and
// reports every candidate file. It runs in its own goroutine.
func (w *Watcher) scanRoot(ctx context.Context, r *rootState, spec scanSpec) {
	defer w.wg.Done()
	started := time.Now()
	ok, id, reason := rootIdentity(r.clean)
	start := result{kind: resScanStart, root: r, gen: spec.gen, ok: ok, rootID: id, reason: reason, mode: spec.mode,
		ack: make(chan struct{})}
	if !ok || (spec.prevRootID != "" && id != spec.prevRootID) {
		r.watches.forgetAll() // the folders behind those watches are gone or replaced
	}
	if ok && start.mode == "" {
		start.mode, start.modeWhy = resolveAuto(r.clean)
	}
	if ok && start.mode == ModeEvents {
		err := r.watches.ensure(func(fsw *fsnotify.Watcher) { w.startReader(ctx, r, fsw) })
		if err != nil && !errors.Is(err, errShutdown) {
			start.mode, start.modeWhy = ModePoll, fallbackWhy(err)
		}
	}
	if !w.send(ctx, start) {
		return
	}
	select { // wait until the loop knows the root's health before events can flow
	case <-start.ack:
	case <-ctx.Done():
		return
	}
	if !ok {
		w.send(ctx, result{kind: resScanDone, root: r, gen: spec.gen, started: started})
		return
	}
	files, err := w.walk(ctx, r, r.clean, start.mode == ModeEvents, spec.gen)
	if errors.Is(err, errWatchLimit) {
		files, err = w.walk(ctx, r, r.clean, false, spec.gen)
	}
	done := result{kind: resScanDone, root: r, gen: spec.gen, started: started, ok: err == nil,
		took: time.Since(started), files: files}
	if err != nil && ctx.Err() == nil {
		w.log.Warn("watcher: scan incomplete", "root", r.cfg.Path, "err", err)
	}
	w.send(ctx, done)
}

// resolveAuto picks events or polling for an auto root from its filesystem.
func resolveAuto(root string) (Mode, string) {
	name, remote, err := filesystemKind(root)
	switch {
	case err != nil:
		return ModeEvents, ""
	case remote:
		return ModePoll, "filesystem " + name + " does not deliver change events reliably; polling instead"
	}
	return ModeEvents, ""
}

func fallbackWhy(err error) string {
	if hint, ok := watchLimitHint(err); ok {
		return "cannot watch for events (" + err.Error() + "), polling instead; " + hint
	}
	return "cannot watch for events (" + err.Error() + "), polling instead"
}

var errWatchLimit = errors.New("watch limit reached")

// walk lists candidate files below start (a folder inside r), adding a watch
// to every folder before reading it when watch is set, so nothing created
// after the listing can be missed. Symlinks are never followed. It returns the
// number of files reported; errWatchLimit means the root fell back to polling.
func (w *Watcher) walk(ctx context.Context, r *rootState, start string, watch bool, gen uint64) (int, error) {
	batch := make([]observation, 0, scanBatch)
	files := 0
	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		ok := w.send(ctx, result{kind: resObs, root: r, gen: gen, obs: batch})
		batch = make([]observation, 0, scanBatch)
		return ok
	}
	walkStart := start
	if start == r.clean && r.prefix != r.clean {
		walkStart = r.prefix // trailing separator: a root that is itself a symlink is followed
	}
	err := filepath.WalkDir(walkStart, func(p string, d fs.DirEntry, err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if err != nil {
			if p == walkStart {
				return err
			}
			w.log.Debug("watcher: skip unreadable entry", "path", p, "err", err)
			if d != nil && d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel := ""
		if p == walkStart && start == r.clean {
			p = r.clean
		} else {
			var ok bool
			if rel, ok = r.rel(p); !ok {
				return nil
			}
		}
		switch {
		case d.IsDir():
			if rel != "" && !r.filter.dirAllowed(rel) {
				return filepath.SkipDir
			}
			if watch {
				fi, err := d.Info()
				if err != nil {
					return filepath.SkipDir
				}
				if _, err := r.watches.add(p, fileIdentity(p, fi)); err != nil {
					if _, isLimit := watchLimitHint(err); isLimit {
						r.watches.stop()
						w.send(ctx, result{kind: resFallback, root: r, reason: fallbackWhy(err)})
						return errWatchLimit
					}
					w.log.Debug("watcher: cannot watch folder", "path", p, "err", err)
				}
			}
			return nil
		case !d.Type().IsRegular():
			return nil // symlinks, devices, sockets: never followed or reported
		case !r.filter.fileAllowed(rel):
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil // vanished between listing and stat
		}
		batch = append(batch, observation{rel: rel, at: time.Now(), size: fi.Size(), mtime: fi.ModTime(), id: fileIdentity(p, fi)})
		files++
		if len(batch) == scanBatch && !flush() {
			return ctx.Err()
		}
		return nil
	})
	if !flush() && err == nil {
		err = ctx.Err()
	}
	return files, err
}
