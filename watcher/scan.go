package watcher

import (
	"context"
	"errors"
	"time"

	"github.com/fsnotify/fsnotify"
)

// scanSpec is the loop's view of a root when it starts a scan.
type scanSpec struct {
	gen        uint64
	mode       Mode   // "" = not resolved yet (auto)
	prevRootID string // identity seen by the previous healthy scan
	mountPoint bool   // the root was a mount point when first seen: it must still be one
}

// scanRoot checks the root, resolves the mode, adds watches (events mode) and
// reports every candidate file. It runs in its own goroutine.
func (w *Watcher) scanRoot(ctx context.Context, r *rootState, spec scanSpec) {
	defer w.wg.Done()
	started := time.Now()
	ok, id, reason, mount := rootIdentity(r.clean, spec.mountPoint)
	start := result{kind: resScanStart, root: r, gen: spec.gen, ok: ok, rootID: id, reason: reason, mode: spec.mode,
		mount: mount, ack: make(chan struct{})}
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

// probeRoot looks at the root's identity between scans (a few stats): an
// unmount, remount or re-creation must not wait for the next full scan, since
// events stop or point at the old filesystem once the mount changed.
func (w *Watcher) probeRoot(ctx context.Context, r *rootState, mountPoint bool) {
	defer w.wg.Done()
	ok, id, _, _ := rootIdentity(r.clean, mountPoint)
	w.send(ctx, result{kind: resRootProbe, root: r, ok: ok, rootID: id})
}
