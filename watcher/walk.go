package watcher

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// scanBatch is how many observations a walker sends to the loop at once.
const scanBatch = 512

// walkers is how many goroutines share one walk. A scan is mostly system
// calls (getdents, fstatat, inotify_add_watch); a few goroutines overlap them
// (4 measured best on 2 cores too).
const walkers = 4

// entryInfo is the lstat data of one folder entry.
type entryInfo struct {
	typ   fs.FileMode // 0 for a regular file, fs.ModeDir, or fs.ModeIrregular for anything else
	size  int64
	mtime time.Time
	id    fileID
}

// dirTask is one folder waiting to be listed.
type dirTask struct {
	abs   string // the folder (key of the watch set)
	open  string // what to open: abs, or the root with a trailing separator
	rel   string // slash-separated, "" for the root
	id    fileID // identity when the folder was seen, for the watch set
	start bool   // the folder the walk started at: failing to read it fails the walk
}

// walk is one traversal below a folder of a root, shared by a few goroutines
// through a stack of folders still to list.
type walk struct {
	w     *Watcher
	r     *rootState
	ctx   context.Context
	watch bool
	gen   uint64

	mu      sync.Mutex
	wake    *sync.Cond
	stack   []dirTask
	busy    int // goroutines listing a folder right now
	stopped bool
	err     error // why the walk stopped early
	files   int
}

// walk lists candidate files below start (a folder inside r), adding a watch
// to every folder before reading it when watch is set, so nothing created
// after the listing can be missed. Symlinks are never followed. It returns the
// number of files reported; errWatchLimit means the root fell back to polling.
func (w *Watcher) walk(ctx context.Context, r *rootState, start string, watch bool, gen uint64) (int, error) {
	open := start
	rel := ""
	if start == r.clean {
		if r.prefix != r.clean {
			open = r.prefix // trailing separator: a root that is itself a symlink is followed
		}
	} else {
		var ok bool
		if rel, ok = r.rel(start); !ok || !r.filter.Load().dirAllowed(rel) {
			return 0, nil
		}
	}
	fi, err := os.Lstat(open)
	if err != nil {
		return 0, err
	}
	if !fi.IsDir() {
		return 0, nil // a file or a symlink: never followed
	}
	wk := &walk{w: w, r: r, ctx: ctx, watch: watch, gen: gen,
		stack: []dirTask{{abs: start, open: open, rel: rel, id: fileIdentity(start, fi), start: true}}}
	wk.wake = sync.NewCond(&wk.mu)
	stopWatching := context.AfterFunc(ctx, func() { wk.halt(ctx.Err()) })
	defer stopWatching()
	var wg sync.WaitGroup
	for range walkers {
		wg.Go(wk.run)
	}
	wg.Wait()
	if wk.err == nil {
		wk.err = ctx.Err() // cancelled after the last folder: the last batches may be lost
	}
	return wk.files, wk.err
}

func (wk *walk) run() {
	var batch []observation
	for {
		t, ok := wk.next()
		if !ok {
			break
		}
		dirs, files := wk.list(t, &batch)
		wk.finished(dirs, files)
	}
	wk.flush(&batch)
}

// next takes a folder from the stack, waiting while others may still add one.
func (wk *walk) next() (dirTask, bool) {
	wk.mu.Lock()
	defer wk.mu.Unlock()
	for len(wk.stack) == 0 && wk.busy > 0 && !wk.stopped {
		wk.wake.Wait()
	}
	if wk.stopped || len(wk.stack) == 0 {
		return dirTask{}, false
	}
	n := len(wk.stack) - 1
	t := wk.stack[n]
	wk.stack[n] = dirTask{}
	wk.stack = wk.stack[:n]
	wk.busy++
	return t, true
}

func (wk *walk) finished(dirs []dirTask, files int) {
	wk.mu.Lock()
	defer wk.mu.Unlock()
	wk.stack = append(wk.stack, dirs...)
	wk.files += files
	wk.busy--
	if len(dirs) > 0 || wk.busy == 0 {
		wk.wake.Broadcast()
	}
}

// halt ends the walk early; the first reason wins.
func (wk *walk) halt(err error) {
	wk.mu.Lock()
	defer wk.mu.Unlock()
	if !wk.stopped {
		wk.stopped, wk.err = true, err
	}
	wk.wake.Broadcast()
}

func (wk *walk) flush(batch *[]observation) {
	if len(*batch) == 0 {
		return
	}
	if !wk.w.send(wk.ctx, result{kind: resObs, root: wk.r, gen: wk.gen, obs: *batch}) {
		wk.halt(wk.ctx.Err())
	}
	*batch = nil
}

// list watches and reads one folder, appends its candidate files to batch
// (sending full batches) and returns the subfolders to descend into.
func (wk *walk) list(t dirTask, batch *[]observation) (dirs []dirTask, files int) {
	r := wk.r
	if wk.ctx.Err() != nil {
		return nil, 0
	}
	if wk.watch {
		if _, err := r.watches.add(t.abs, t.id); err != nil {
			if _, isLimit := watchLimitHint(err); isLimit {
				r.watches.stop()
				wk.w.send(wk.ctx, result{kind: resFallback, root: r, gen: wk.gen, reason: fallbackWhy(err)})
				wk.halt(errWatchLimit)
				return nil, 0
			}
			wk.w.log.Debug("watcher: cannot watch folder", "path", t.abs, "err", err)
		}
	}
	d, err := openScanDir(t.open)
	if err != nil {
		wk.unreadable(t, err)
		return nil, 0
	}
	defer d.close()
	prefix := ""
	if t.rel != "" {
		prefix = t.rel + "/"
	}
	unstamped := len(*batch)
	// stamp sets the observation time of the files stat'ed so far: taken after
	// their stats, like a single lstat followed by time.Now.
	stamp := func() {
		now := time.Now()
		for i := unstamped; i < len(*batch); i++ {
			(*batch)[i].at = now
		}
		unstamped = len(*batch)
	}
	stopped := false
	err = d.entries(func(rawName []byte, typ fs.FileMode) {
		if stopped {
			return
		}
		rel := prefix + string(rawName) // the one allocation per entry
		name := rel[len(prefix):]
		var info entryInfo
		statted := false
		if typ == fs.ModeType { // the listing did not say: ask
			var err error
			if info, err = d.stat(name); err != nil {
				return
			}
			typ, statted = info.typ, true
		}
		switch typ {
		case fs.ModeDir:
			if !r.filter.Load().dirAllowedIn(rel, len(prefix)) {
				return
			}
			sub := dirTask{abs: joinPath(t.abs, name), rel: rel}
			sub.open = sub.abs
			if wk.watch {
				if !statted {
					var err error
					if info, err = d.stat(name); err != nil || info.typ != fs.ModeDir {
						return // vanished or replaced since the listing
					}
				}
				sub.id = info.id
			}
			dirs = append(dirs, sub)
		case 0:
			if !r.filter.Load().fileAllowedIn(rel, len(prefix)) {
				return
			}
			if !statted {
				var err error
				if info, err = d.stat(name); err != nil || info.typ != 0 {
					return // vanished or replaced since the listing
				}
			}
			if *batch == nil {
				*batch = make([]observation, 0, scanBatch)
			}
			*batch = append(*batch, observation{rel: rel, size: info.size, mtime: info.mtime, id: info.id})
			files++
			if len(*batch) == scanBatch {
				stamp()
				wk.flush(batch)
				unstamped = 0
				stopped = wk.ctx.Err() != nil
			}
		default:
			// symlinks, devices, sockets: never followed or reported
		}
	})
	if err != nil {
		wk.unreadable(t, err)
		// files listed before the error stay reported; subfolders are skipped
		stamp()
		return nil, files
	}
	stamp()
	return dirs, files
}

func (wk *walk) unreadable(t dirTask, err error) {
	if t.start {
		wk.halt(err)
		return
	}
	wk.w.log.Debug("watcher: skip unreadable entry", "path", t.abs, "err", err)
}

// joinPath appends name to a clean folder path without cleaning it again.
func joinPath(dir, name string) string {
	if strings.HasSuffix(dir, string(filepath.Separator)) {
		return dir + name
	}
	return dir + string(filepath.Separator) + name
}
