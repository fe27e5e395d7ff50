package watcher

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"

	"github.com/fsnotify/fsnotify"
)

var errShutdown = errors.New("watcher is shutting down")

// watchSet is the fsnotify watcher of one root and the folders it watches.
// Workers and scans add and remove watches; the mutex keeps them consistent.
type watchSet struct {
	mu     sync.Mutex
	fsw    *fsnotify.Watcher
	dirs   map[string]fileID // watched folder -> its identity when added
	closed bool
}

func newWatchSet() *watchSet { return &watchSet{dirs: map[string]fileID{}} }

// ensure creates the fsnotify watcher if needed; start launches its reader.
func (ws *watchSet) ensure(start func(*fsnotify.Watcher)) error {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed {
		return errShutdown
	}
	if ws.fsw != nil {
		return nil
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	ws.fsw = fsw
	start(fsw)
	return nil
}

func (ws *watchSet) active() bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.fsw != nil
}

// add watches dir unless it is already watched with the same identity. It
// reports whether a watch was newly added.
func (ws *watchSet) add(dir string, id fileID) (bool, error) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.fsw == nil {
		return false, nil
	}
	if old, ok := ws.dirs[dir]; ok && old == id {
		return false, nil
	}
	if err := ws.fsw.Add(dir); err != nil {
		return false, err
	}
	ws.dirs[dir] = id
	return true, nil
}

// removeTree forgets dir and every watched folder below it; it reports whether
// dir itself was watched.
func (ws *watchSet) removeTree(dir string) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	_, was := ws.dirs[dir]
	if !was {
		return false
	}
	prefix := dir + string(filepath.Separator)
	for d := range ws.dirs {
		if d == dir || strings.HasPrefix(d, prefix) {
			delete(ws.dirs, d)
			if ws.fsw != nil {
				_ = ws.fsw.Remove(d) // already gone with the folder: nothing to undo
			}
		}
	}
	return true
}

// forgetAll drops every watch (root degraded or replaced); the fsnotify
// watcher stays open for the next scan.
func (ws *watchSet) forgetAll() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for d := range ws.dirs {
		if ws.fsw != nil {
			_ = ws.fsw.Remove(d)
		}
	}
	clear(ws.dirs)
}

// stop closes the fsnotify watcher (fallback to polling); its reader exits.
func (ws *watchSet) stop() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.fsw != nil {
		_ = ws.fsw.Close()
		ws.fsw = nil
	}
	clear(ws.dirs)
}

// shutdown stops the watcher for good.
func (ws *watchSet) shutdown() {
	ws.mu.Lock()
	ws.closed = true
	ws.mu.Unlock()
	ws.stop()
}

// startReader launches the goroutine that drains fsw. It does no I/O: every
// event becomes a hint for the loop; Chmod-only events are dropped (attribute
// storms from indexers and antivirus).
func (w *Watcher) startReader(ctx context.Context, r *rootState, fsw *fsnotify.Watcher) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			var h hint
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-fsw.Events:
				if !ok {
					return
				}
				if ev.Op == fsnotify.Chmod || ev.Op == 0 {
					continue
				}
				if w.dropEvents.Load() {
					w.droppedEvents.Add(1)
					continue
				}
				h = hint{root: r, path: ev.Name, op: ev.Op}
			case err, ok := <-fsw.Errors:
				if !ok {
					return
				}
				h = hint{root: r, err: err}
			}
			select {
			case w.hints <- h:
			case <-ctx.Done():
				return
			}
		}
	}()
}
