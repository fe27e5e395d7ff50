package watcher

import (
	"errors"
	"path/filepath"
	"slices"
	"time"
)

// rootsSet is one SetRoots call handed to the loop.
type rootsSet struct {
	roots []Root // validated, defaults applied
	done  chan struct{}
}

// ErrStopped is returned by SetRoots once Run has returned.
var ErrStopped = errors.New("watcher: stopped")

// SetRoots replaces the watched roots, before or while Run runs, and returns once the watcher
// uses them. Roots are matched by path:
//   - a new root is scanned at once (its health is reported like at start);
//   - a removed root stops reporting: the files it was settling are forgotten without events;
//   - a kept root keeps what it knows. Its new settle window, include and exclude patterns,
//     recursion, mode and intervals apply to files not yet ready, and it is rescanned so files
//     that now match are found. Files already reported ready are not reported again.
func (w *Watcher) SetRoots(roots []Root) error {
	o := w.opts
	o.Roots = roots
	valid, err := o.validate()
	if err != nil {
		return err
	}
	w.rootsMu.Lock()
	if w.stopped {
		w.rootsMu.Unlock()
		return ErrStopped
	}
	if !w.running { // Run has not started: nothing else reads the roots yet
		defer w.rootsMu.Unlock()
		w.opts.Roots = valid.Roots
		w.roots = w.roots[:0]
		for i, r := range valid.Roots {
			w.roots = append(w.roots, newRootState(i, r))
		}
		return nil
	}
	loopDone := w.loopDone
	w.rootsMu.Unlock()
	set := rootsSet{roots: valid.Roots, done: make(chan struct{})}
	select {
	case w.rootsCh <- set:
	case <-loopDone:
		return ErrStopped
	}
	select {
	case <-set.done:
		return nil
	case <-loopDone:
		return ErrStopped
	}
}

// setRoots applies a SetRoots call in the loop.
func (l *loop) setRoots(roots []Root) {
	now := time.Now()
	old := make(map[string]*rootState, len(l.w.roots))
	for _, r := range l.w.roots {
		old[r.clean] = r
	}
	next := make([]*rootState, 0, len(roots))
	for i, cfg := range roots {
		clean := filepath.Clean(cfg.Path)
		if r := old[clean]; r != nil {
			delete(old, clean)
			r.idx = i
			l.updateRoot(r, cfg, now)
			next = append(next, r)
			continue
		}
		r := newRootState(i, cfg)
		next = append(next, r)
		l.requestScan(r, now)
		l.w.log.Info("watcher: root added", "root", cfg.Path)
	}
	for _, r := range old {
		l.removeRoot(r)
	}
	l.w.roots = next
	l.w.opts.Roots = roots
}

// removeRoot forgets a root: no events, no watches; late results of its scans and checks are
// dropped (see dropLate).
func (l *loop) removeRoot(r *rootState) {
	r.removed = true
	for _, t := range r.files {
		l.heap.remove(t)
		if !t.ready {
			l.w.pending.Add(-1)
		}
	}
	clear(r.files)
	for k := range l.untracked {
		if k.root == r {
			delete(l.untracked, k)
		}
	}
	for k := range l.pastReady {
		if k.root == r {
			delete(l.pastReady, k)
		}
	}
	r.watches.shutdown()
	l.w.log.Info("watcher: root removed", "root", r.cfg.Path)
}

// updateRoot applies changed settings to a kept root. Only the loop reads these fields, except
// the filter, which workers and walkers load atomically.
func (l *loop) updateRoot(r *rootState, cfg Root, now time.Time) {
	old := r.cfg
	filterChanged := old.Recursive != cfg.Recursive || !slices.Equal(old.Include, cfg.Include) ||
		(old.Include == nil) != (cfg.Include == nil) || !slices.Equal(old.Exclude, cfg.Exclude)
	modeChanged := old.Mode != cfg.Mode
	r.cfg.Recursive, r.cfg.Include, r.cfg.Exclude = cfg.Recursive, cfg.Include, cfg.Exclude
	r.cfg.Settle, r.cfg.Mode = cfg.Settle, cfg.Mode
	r.cfg.PollInterval, r.cfg.IncompleteAfter = cfg.PollInterval, cfg.IncompleteAfter
	if !filterChanged && !modeChanged && old.Settle == cfg.Settle &&
		old.PollInterval == cfg.PollInterval && old.IncompleteAfter == cfg.IncompleteAfter {
		return
	}
	if filterChanged {
		f := newFilter(cfg)
		r.filter.Store(f)
		r.filterSetGen = max(r.scanGen, 1)
		for _, t := range r.files {
			if !t.ready && !f.fileAllowed(t.rel) {
				l.drop(t) // never reported: it simply stops being a candidate
			}
		}
	}
	if modeChanged {
		r.watches.stop() // the next scan adds watches again if the new mode uses events
		r.modeSetGen = r.scanGen
		r.mode = ""
		if cfg.Mode != ModeAuto {
			r.mode = cfg.Mode
		}
	}
	nowS := l.w.stamp(now)
	for _, t := range r.files { // a shorter window may make files due earlier
		if !t.ready && !t.isMissing {
			l.heap.schedule(t, max(nowS, t.stable.add(cfg.Settle)))
		}
	}
	if r.scanning {
		r.scanAgain = true
	} else {
		r.nextScan = time.Time{}
		l.requestScan(r, now)
	}
	l.w.log.Info("watcher: root settings changed; rescanning", "root", cfg.Path)
}
