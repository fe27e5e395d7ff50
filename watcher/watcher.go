package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher watches the configured roots and reports files that are ready.
type Watcher struct {
	opts   Options
	log    *slog.Logger
	roots  []*rootState
	events chan Event

	epoch   time.Time      // origin of the loop's compact timestamps
	hints   chan hint      // fsnotify readers -> loop
	results chan result    // workers and scans -> loop
	work    chan checkJob  // loop -> check workers
	wg      sync.WaitGroup // every goroutine Run starts
	pending atomic.Int64   // files settling (not ready yet)
	started atomic.Bool

	// SetRoots hands new roots to the running loop; before Run it replaces them directly.
	rootsMu  sync.Mutex
	running  bool          // the loop accepts changes on rootsCh
	stopped  bool          // Run has returned
	rootsCh  chan rootsSet // SetRoots -> loop
	loopDone chan struct{} // closed when the loop returns

	// test hooks (unexported): drop fsnotify events as if the kernel lost them,
	// and observe scan completion.
	dropEvents    atomic.Bool
	droppedEvents atomic.Int64
	onScanDone    func(root string, took time.Duration, files int)
	pastReadyTTL  time.Duration // how long a reported state that stopped being current is remembered
	pastReadySize atomic.Int64  // entries in the loop's pastReady (observed by tests)
}

// hint is an fsnotify event or error, turned into "look at this path".
type hint struct {
	root *rootState
	path string
	op   fsnotify.Op
	err  error
}

const eventBuffer = 1024

// New validates opts and prepares a Watcher; it starts nothing.
func New(opts Options) (*Watcher, error) {
	o, err := opts.validate()
	if err != nil {
		return nil, err
	}
	w := &Watcher{
		opts:    o,
		log:     o.Logger,
		epoch:   time.Now(),
		events:  make(chan Event, eventBuffer),
		hints:   make(chan hint, 4096),
		results: make(chan result, 64),
		work:    make(chan checkJob),

		pastReadyTTL: defaultPastReadyTTL,
		rootsCh:      make(chan rootsSet),
	}
	for i, r := range o.Roots {
		w.roots = append(w.roots, newRootState(i, r))
	}
	return w, nil
}

// Events returns the channel of watcher events; it is closed after Run returns.
func (w *Watcher) Events() <-chan Event { return w.events }

// Pending returns the number of files currently settling (seen, not ready).
func (w *Watcher) Pending() int { return int(w.pending.Load()) }

// Run watches until ctx ends, then stops every goroutine it started, closes
// the Events channel and returns ctx's error. Run may be called once.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("watcher: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	w.rootsMu.Lock()
	w.running, w.loopDone = true, make(chan struct{})
	w.rootsMu.Unlock()
	defer func() {
		cancel()
		w.rootsMu.Lock()
		w.running, w.stopped = false, true
		w.rootsMu.Unlock()
		for _, r := range w.roots {
			r.watches.shutdown()
		}
		w.wg.Wait()
		close(w.events)
	}()
	workers := max(4, runtime.GOMAXPROCS(0))
	for range workers {
		w.wg.Add(1)
		go w.checkWorker(ctx)
	}
	l := newLoop(w)
	func() {
		defer close(w.loopDone)
		l.run(ctx)
	}()
	return ctx.Err()
}

// emit sends e, blocking while the consumer is slow, unless ctx ends.
func (w *Watcher) emit(ctx context.Context, e Event) {
	select {
	case w.events <- e:
	case <-ctx.Done():
	}
}

// send delivers a result to the loop unless ctx ends.
func (w *Watcher) send(ctx context.Context, res result) bool {
	select {
	case w.results <- res:
		return true
	case <-ctx.Done():
		return false
	}
}

// rootState is one root: configuration (read-only), loop-owned state, and the
// watch set shared with workers.
type rootState struct {
	cfg    Root
	idx    int
	clean  string                 // filepath.Clean(cfg.Path)
	prefix string                 // clean + separator
	filter atomic.Pointer[filter] // replaced when the root's settings change while running

	// owned by the loop goroutine
	removed      bool                // taken out by SetRoots: its late results are dropped
	modeSetGen   uint64              // scanGen when SetRoots changed the mode: older scans' modes are stale
	filterSetGen uint64              // scanGen when SetRoots changed the filter (0 = never)
	files        map[string]*tracked // by slash-separated rel
	healthKnown  bool
	healthy      bool
	rootID       string
	mode         Mode // effective mode once resolved (events or poll)
	scanning     bool
	scanAgain    bool
	nextScan     time.Time
	scanGen      uint64
	mountKnown   bool // whether the root is a mount point was recorded (first healthy scan)
	mountPoint   bool
	probing      bool // a probeRoot is under way

	watches *watchSet
}

func newRootState(i int, r Root) *rootState {
	clean := filepath.Clean(r.Path)
	prefix := clean
	if !strings.HasSuffix(prefix, string(filepath.Separator)) {
		prefix += string(filepath.Separator)
	}
	rs := &rootState{
		cfg: r, idx: i, clean: clean, prefix: prefix,
		files: map[string]*tracked{},
	}
	rs.filter.Store(newFilter(r))
	if r.Mode != ModeAuto {
		rs.mode = r.Mode
	}
	rs.watches = newWatchSet()
	return rs
}

// rel returns the slash-separated path of abs relative to the root.
func (r *rootState) rel(abs string) (string, bool) {
	if !strings.HasPrefix(abs, r.prefix) || len(abs) == len(r.prefix) {
		return "", false
	}
	return filepath.ToSlash(abs[len(r.prefix):]), true
}

func (r *rootState) abs(rel string) string {
	return r.prefix + filepath.FromSlash(rel)
}

func (r *rootState) String() string { return fmt.Sprintf("root %s", r.cfg.Path) }
