package watcher

import (
	"container/heap"
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// loop owns all settle and root state. It never does file I/O: it turns hints
// and results into scheduled checks, hands them to workers, and emits events.
type loop struct {
	w         *Watcher
	ctx       context.Context
	heap      settleHeap
	queue     []checkJob
	qhead     int
	untracked map[untrackedKey]*untrackedCheck
	pastReady map[readyKey]stamp // Ready keys reported earlier that are no longer current, and since when
	timer     *time.Timer
	timerAt   time.Time
	nextProbe time.Time // next look at every healthy root's identity
}

type untrackedKey struct {
	root *rootState
	rel  string
}

type untrackedCheck struct{ redo bool }

func newLoop(w *Watcher) *loop {
	return &loop{
		w:         w,
		untracked: map[untrackedKey]*untrackedCheck{},
		pastReady: map[readyKey]stamp{},
	}
}

func (l *loop) run(ctx context.Context) {
	l.ctx = ctx
	l.timer = time.NewTimer(time.Hour)
	defer l.timer.Stop()
	now := time.Now()
	for _, r := range l.w.roots {
		l.requestScan(r, now)
	}
	for {
		now = time.Now()
		l.dispatchDue(now)
		l.armTimer(now)
		var sendCh chan<- checkJob
		var next checkJob
		if l.qhead < len(l.queue) {
			sendCh, next = l.w.work, l.queue[l.qhead]
		}
		select {
		case <-ctx.Done():
			return
		case h := <-l.w.hints:
			l.onHint(h)
		case set := <-l.w.rootsCh:
			l.setRoots(set.roots)
			close(set.done)
		case res := <-l.w.results:
			l.onResult(res)
		case sendCh <- next:
			l.queue[l.qhead] = checkJob{}
			l.qhead++
			if l.qhead == len(l.queue) {
				l.queue, l.qhead = l.queue[:0], 0
			}
		case <-l.timer.C:
			l.timerAt = time.Time{}
		}
	}
}

// armTimer points the single timer at the earliest settle check or scan.
func (l *loop) armTimer(now time.Time) {
	var at time.Time
	if t := l.heap.peek(); t != nil && !l.queueFull() {
		at = l.w.timeOf(t.due)
	}
	for _, r := range l.w.roots {
		if !r.scanning && !r.nextScan.IsZero() && (at.IsZero() || r.nextScan.Before(at)) {
			at = r.nextScan
		}
	}
	if !l.nextProbe.IsZero() && (at.IsZero() || l.nextProbe.Before(at)) {
		at = l.nextProbe
	}
	if at.IsZero() || at.Equal(l.timerAt) {
		return
	}
	l.timerAt = at
	l.timer.Reset(max(at.Sub(now), 0))
}

// maxQueued bounds the checks handed out ahead of the workers; due files wait
// in the heap instead (after a scan of 100k files all of them are due at once).
const maxQueued = 256

func (l *loop) queueFull() bool { return len(l.queue)-l.qhead >= maxQueued }

func (l *loop) dispatchDue(now time.Time) {
	nowS := l.w.stamp(now)
	for t := l.heap.peek(); t != nil && t.due <= nowS && !l.queueFull(); t = l.heap.peek() {
		heap.Pop(&l.heap)
		if t.inflight {
			t.redo = true
			continue
		}
		t.inflight = true
		probe := !t.ready && !t.isMissing && t.seen >= 1 && nowS >= t.stable.add(t.root.cfg.Settle)
		l.enqueue(checkJob{root: t.root, rel: t.rel, probe: probe, t: t})
	}
	for _, r := range l.w.roots {
		if !r.scanning && !r.nextScan.IsZero() && !r.nextScan.After(now) {
			l.startScan(r)
		}
	}
	if !now.Before(l.nextProbe) {
		l.nextProbe = now.Add(l.w.opts.DegradedRecheck)
		for _, r := range l.w.roots {
			if r.healthy && !r.scanning && !r.probing {
				r.probing = true
				l.w.wg.Add(1)
				go l.w.probeRoot(l.ctx, r, r.mountKnown && r.mountPoint)
			}
		}
	}
}

func (l *loop) enqueue(j checkJob) { l.queue = append(l.queue, j) }

// --- timings derived from the root's settle window ---

func clampDur(d, lo, hi time.Duration) time.Duration { return min(max(d, lo), hi) }

// hintDelay coalesces bursts of write events into one stat.
func hintDelay(r *rootState) time.Duration {
	return clampDur(r.cfg.Settle/20, 5*time.Millisecond, 100*time.Millisecond)
}

// vanishGrace is how long a file must stay missing (with its root healthy)
// before Vanished: it lets a removed or unmounted root be noticed first.
func vanishGrace(r *rootState) time.Duration {
	return clampDur(r.cfg.Settle, 100*time.Millisecond, 2*time.Second)
}

// blockedRecheck is how often a stable but not-ready file is looked at again.
func blockedRecheck(r *rootState) time.Duration {
	return clampDur(2*r.cfg.Settle, 500*time.Millisecond, time.Minute)
}

func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.75 + rand.Float64()*0.5))
}

// --- scans ---

func (l *loop) requestScan(r *rootState, at time.Time) {
	if r.scanning {
		r.scanAgain = true
		return
	}
	if r.nextScan.IsZero() || at.Before(r.nextScan) {
		r.nextScan = at
	}
}

func (l *loop) startScan(r *rootState) {
	r.scanning, r.scanAgain, r.nextScan = true, false, time.Time{}
	r.scanGen++
	spec := scanSpec{gen: r.scanGen, mode: r.mode, prevRootID: r.rootID, mountPoint: r.mountKnown && r.mountPoint}
	l.w.wg.Add(1)
	go l.w.scanRoot(l.ctx, r, spec)
}

func (l *loop) onScanStart(res result) {
	r := res.root
	if !res.ok {
		if !r.healthKnown || r.healthy {
			l.w.log.Warn("watcher: root degraded; files are kept, not reported vanished", "root", r.cfg.Path, "reason", res.reason)
			l.dropAll(r)
			r.healthKnown, r.healthy = true, false
			l.emit(Event{Kind: Health, Root: r.cfg.Path, Path: r.clean, Healthy: false, Reason: res.reason})
		}
		return
	}
	if !r.mountKnown {
		r.mountKnown, r.mountPoint = true, res.mount
		if res.mount {
			l.w.log.Info("watcher: root is a mount point; it is degraded whenever it is not mounted", "root", r.cfg.Path)
		}
	}
	if res.mode != "" && res.mode != r.mode && res.gen > r.modeSetGen { // not from before a mode change
		r.mode = res.mode
		if res.modeWhy != "" {
			l.w.log.Info("watcher: using polling", "root", r.cfg.Path, "interval", r.cfg.PollInterval, "why", res.modeWhy)
		}
	}
	switch {
	case r.healthKnown && r.healthy && r.rootID != "" && res.rootID != r.rootID:
		reason := "root folder was replaced (unmounted, remounted or re-created)"
		l.w.log.Warn("watcher: "+reason, "root", r.cfg.Path)
		l.dropAll(r)
		l.emit(Event{Kind: Health, Root: r.cfg.Path, Path: r.clean, Healthy: false, Reason: reason})
		l.emit(Event{Kind: Health, Root: r.cfg.Path, Path: r.clean, Healthy: true})
	case !r.healthKnown || !r.healthy:
		if r.healthKnown {
			l.w.log.Info("watcher: root available again; rescanning", "root", r.cfg.Path)
		}
		r.healthKnown, r.healthy = true, true
		l.emit(Event{Kind: Health, Root: r.cfg.Path, Path: r.clean, Healthy: true})
	}
	r.rootID = res.rootID
}

func (l *loop) onScanDone(res result) {
	r := res.root
	r.scanning = false
	now := time.Now()
	l.prunePastReady(now)
	if res.ok && r.healthy {
		if fn := l.w.onScanDone; fn != nil {
			fn(r.cfg.Path, res.took, res.files)
		}
		// files not seen by this scan: look at them (missing => Vanished after grace)
		started, nowS := l.w.stamp(res.started), l.w.stamp(now)
		for _, t := range r.files {
			if t.scanGen != res.gen && t.lastAt < started {
				l.heap.schedule(t, nowS)
			}
		}
	}
	var next time.Time
	switch {
	case r.scanAgain:
		next = now
	case !r.healthy || !res.ok:
		next = now.Add(l.w.opts.DegradedRecheck)
	case r.mode == ModePoll:
		next = now.Add(r.cfg.PollInterval)
	default:
		next = now.Add(jitter(l.w.opts.ScanInterval))
	}
	r.scanAgain = false
	l.requestScan(r, next)
}

// dropAll forgets every file of a degraded or replaced root without Vanished
// events: a missing root is not "every file was deleted".
func (l *loop) dropAll(r *rootState) {
	for _, t := range r.files {
		l.drop(t)
	}
}

// --- hints ---

func (l *loop) onHint(h hint) {
	r := h.root
	if r.removed {
		return
	}
	now := time.Now()
	if h.err != nil {
		if errors.Is(h.err, fsnotify.ErrEventOverflow) {
			l.w.log.Warn("watcher: event queue overflowed; rescanning", "root", r.cfg.Path)
		} else {
			l.w.log.Warn("watcher: watch error; rescanning", "root", r.cfg.Path, "err", h.err)
		}
		l.requestScan(r, now)
		return
	}
	if filepath.Clean(h.path) == r.clean {
		l.requestScan(r, now) // the root itself was removed or renamed: check it
		return
	}
	if r.healthKnown && !r.healthy {
		return
	}
	rel, ok := r.rel(h.path)
	if !ok || !r.filter.Load().hintAllowed(rel) {
		return
	}
	if t := r.files[rel]; t != nil {
		l.heap.schedule(t, l.w.stamp(now.Add(hintDelay(r))))
		return
	}
	k := untrackedKey{root: r, rel: rel}
	if u := l.untracked[k]; u != nil {
		u.redo = true
		return
	}
	l.untracked[k] = &untrackedCheck{}
	l.enqueue(checkJob{root: r, rel: rel})
}

// --- results ---

func (l *loop) onResult(res result) {
	r := res.root
	if r.removed { // results of a root SetRoots took out
		if res.kind == resScanStart {
			close(res.ack)
		}
		return
	}
	switch res.kind {
	case resScanStart:
		l.onScanStart(res)
		close(res.ack) // the scan may now add watches: hints will find the root healthy
	case resScanDone:
		l.onScanDone(res)
	case resRootProbe:
		r.probing = false
		if r.healthy && !r.scanning && (!res.ok || res.rootID != r.rootID) {
			l.requestScan(r, time.Now()) // the scan decides: degraded, or replaced and rescanned
		}
	case resFallback:
		if res.gen != 0 && res.gen <= r.modeSetGen {
			return // a walk of the mode before the last change
		}
		if r.mode != ModePoll {
			r.mode = ModePoll
			l.w.log.Warn("watcher: falling back to polling", "root", r.cfg.Path, "interval", r.cfg.PollInterval, "why", res.reason)
		}
		l.requestScan(r, time.Now())
	case resDirGone:
		now := l.w.stamp(time.Now())
		prefix := res.path + "/"
		for rel, t := range r.files {
			if strings.HasPrefix(rel, prefix) {
				l.heap.schedule(t, now)
			}
		}
	case resObs:
		for i := range res.obs {
			l.observe(r, &res.obs[i], res.gen)
		}
	case resUntracked:
		k := untrackedKey{root: r, rel: res.path}
		for i := range res.obs {
			l.observe(r, &res.obs[i], 0)
		}
		if u := l.untracked[k]; u != nil && u.redo {
			u.redo = false
			l.enqueue(checkJob{root: r, rel: res.path})
		} else {
			delete(l.untracked, k)
		}
	}
}

// observe applies one observation to the settle state of its file.
func (l *loop) observe(r *rootState, o *observation, gen uint64) {
	now := l.w.stamp(time.Now())
	t := r.files[o.rel]
	fromCheck := o.t != nil && o.t == t
	if fromCheck {
		t.inflight = false
	}
	if !r.healthy {
		return
	}
	if t == nil {
		if o.missing || o.failed || o.t != nil { // o.t: a check of an entry dropped meanwhile
			return
		}
		if r.filterSetGen != 0 && (gen == 0 || gen <= r.filterSetGen) && !r.filter.Load().fileAllowed(o.rel) {
			return // seen through the settings before the last change
		}
		at := l.w.stamp(o.at)
		t = &tracked{root: r, rel: o.rel, hidx: -1,
			lastAt: at, stable: at, firstSeen: at, seen: 1, scanGen: gen}
		t.setState(o)
		r.files[o.rel] = t
		l.w.pending.Add(1)
		l.heap.schedule(t, at.add(r.cfg.Settle))
		return
	}
	if gen != 0 {
		t.scanGen = gen
	}
	l.apply(t, o, now)
	if fromCheck && t.redo && r.files[o.rel] == t {
		t.redo = false
		l.heap.schedule(t, now.add(hintDelay(r)))
	}
}

func (l *loop) apply(t *tracked, o *observation, now stamp) {
	r := t.root
	at := l.w.stamp(o.at)
	if at < t.lastAt {
		return // a scan's stat older than what a check already saw
	}
	if o.failed {
		l.heap.schedule(t, now.add(blockedRecheck(r)))
		return
	}
	t.lastAt = at
	if o.missing {
		l.missing(t, o, at, now)
		return
	}
	t.isMissing = false
	if !t.sameState(o) {
		if o.id != t.id {
			t.firstSeen, t.incompleteSent = at, false
		}
		if t.ready {
			l.rememberReady(t) // reported; a return to it is not new
			t.ready = false
			l.w.pending.Add(1)
		}
		t.setState(o)
		t.stable, t.seen = at, 1
		l.heap.schedule(t, at.add(r.cfg.Settle))
		return
	}
	t.seen++
	if t.ready {
		return
	}
	settledAt := t.stable.add(r.cfg.Settle)
	if t.seen < 2 || at < settledAt {
		l.heap.schedule(t, settledAt)
		return
	}
	if t.size == 0 {
		if !t.incompleteSent {
			t.incompleteSent = true
			l.emitFile(Incomplete, t, "empty file")
		}
		l.heap.schedule(t, now.add(blockedRecheck(r)))
		return
	}
	if !o.probed {
		l.heap.schedule(t, now)
		return
	}
	if o.verdict != "" {
		incompleteAt := t.firstSeen.add(r.cfg.IncompleteAfter)
		if !t.incompleteSent && now >= incompleteAt {
			t.incompleteSent = true
			l.emitFile(Incomplete, t, o.verdict)
		}
		next := now.add(blockedRecheck(r))
		if !t.incompleteSent && incompleteAt < next {
			next = incompleteAt
		}
		l.heap.schedule(t, next)
		return
	}
	l.markReady(t)
}

func (l *loop) missing(t *tracked, o *observation, at, now stamp) {
	r := t.root
	grace := vanishGrace(r)
	if !o.rootOK || (r.rootID != "" && o.rootID != r.rootID) {
		// the root is gone or replaced, not this file: let the scan decide
		l.requestScan(r, l.w.timeOf(now))
		l.heap.schedule(t, now.add(grace))
		return
	}
	if !t.isMissing {
		t.missing, t.isMissing = at, true
	}
	if at-t.missing < stamp(grace) {
		l.heap.schedule(t, t.missing.add(grace))
		return
	}
	reason := "deleted or moved away before it became ready"
	if t.ready {
		reason = "deleted or moved away after it was reported ready"
	}
	l.emitFile(Vanished, t, reason)
	l.drop(t)
}

// markReady reports t's current state Ready unless that exact state was
// reported before: a state that stops being current is moved to pastReady.
func (l *loop) markReady(t *tracked) {
	t.ready = true
	l.w.pending.Add(-1)
	if _, past := l.pastReady[t.key()]; !past {
		l.emitFile(Ready, t, "")
	}
}

func (l *loop) drop(t *tracked) {
	l.heap.remove(t)
	delete(t.root.files, t.rel)
	if t.ready {
		l.rememberReady(t)
	} else {
		l.w.pending.Add(-1)
	}
}

// defaultPastReadyTTL bounds how long pastReady remembers a state. It only spares a
// duplicate Ready for a file that returns to a state reported before (the store ignores a
// file it knows), so forgetting is safe; keeping forever is not: with after_success move or
// delete every processed file ends there.
const defaultPastReadyTTL = time.Hour

func (l *loop) rememberReady(t *tracked) {
	l.pastReady[t.key()] = l.w.stamp(time.Now())
	l.w.pastReadySize.Store(int64(len(l.pastReady)))
}

// prunePastReady forgets states remembered longer than the TTL.
func (l *loop) prunePastReady(now time.Time) {
	cutoff := l.w.stamp(now.Add(-l.w.pastReadyTTL))
	for k, at := range l.pastReady {
		if at < cutoff {
			delete(l.pastReady, k)
		}
	}
	l.w.pastReadySize.Store(int64(len(l.pastReady)))
}

func (l *loop) emitFile(k Kind, t *tracked, reason string) {
	l.emit(Event{Kind: k, Root: t.root.cfg.Path, Path: t.root.abs(t.rel), Rel: t.rel,
		Size: t.size, ModTime: t.modTime(), FileID: t.id.String(), Reason: reason})
}

func (l *loop) emit(e Event) { l.w.emit(l.ctx, e) }
