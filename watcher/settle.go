package watcher

import (
	"container/heap"
	"time"
)

// tracked is the settle state of one candidate file. Only the loop touches it.
// It is kept compact (128 bytes): a scan of 100k files keeps 100k of them.
type tracked struct {
	root *rootState
	rel  string
	id   fileID

	size      int64
	mtimeSec  int64 // modification time as stat returned it (sec, nsec)
	lastAt    stamp // stat time of the newest applied observation
	stable    stamp // first observation of the current state
	firstSeen stamp // first observation of this file identity
	missing   stamp // first observation as missing, when isMissing
	due       stamp
	scanGen   uint64

	mtimeNsec int32
	seen      int32 // observations of the current state
	hidx      int32 // index in the settle heap, -1 when not scheduled

	incompleteSent bool
	isMissing      bool
	ready          bool // the current state was reported Ready (or was already, earlier)
	inflight       bool // a check job is out
	redo           bool // something happened while the check was out
}

func (t *tracked) modTime() time.Time { return time.Unix(t.mtimeSec, int64(t.mtimeNsec)) }

func (t *tracked) sameState(o *observation) bool {
	return o.size == t.size && o.id == t.id &&
		o.mtime.Unix() == t.mtimeSec && int32(o.mtime.Nanosecond()) == t.mtimeNsec
}

func (t *tracked) setState(o *observation) {
	t.size, t.id = o.size, o.id
	t.mtimeSec, t.mtimeNsec = o.mtime.Unix(), int32(o.mtime.Nanosecond())
}

// readyKey identifies one Ready emission (once per process lifetime).
type readyKey struct {
	root  *rootState
	rel   string
	size  int64
	mtime int64
	id    fileID
}

func (t *tracked) key() readyKey {
	return readyKey{root: t.root, rel: t.rel, size: t.size, mtime: t.modTime().UnixNano(), id: t.id}
}

// stamp is a monotonic instant stored in 8 bytes instead of time.Time's 24:
// nanoseconds since the watcher's epoch.
type stamp int64

func (w *Watcher) stamp(t time.Time) stamp  { return stamp(t.Sub(w.epoch)) }
func (w *Watcher) timeOf(s stamp) time.Time { return w.epoch.Add(time.Duration(s)) }

func (s stamp) add(d time.Duration) stamp { return s + stamp(d) }

// settleHeap orders tracked files by their next check time; one timer in the
// loop serves all of them.
type settleHeap []*tracked

func (h settleHeap) Len() int           { return len(h) }
func (h settleHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h settleHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = int32(i), int32(j)
}
func (h *settleHeap) Push(x any) {
	t := x.(*tracked)
	t.hidx = int32(len(*h))
	*h = append(*h, t)
}
func (h *settleHeap) Pop() any {
	old := *h
	n := len(old)
	t := old[n-1]
	old[n-1] = nil
	t.hidx = -1
	*h = old[:n-1]
	if c := cap(*h); c > 1024 && n < c/4 {
		*h = append(settleHeap(nil), *h...) // most files settled: give the slots back
	}
	return t
}

// schedule sets t's next check to at, or keeps an earlier one.
func (h *settleHeap) schedule(t *tracked, at stamp) {
	if t.hidx >= 0 {
		if at >= t.due {
			return
		}
		t.due = at
		heap.Fix(h, int(t.hidx))
		return
	}
	t.due = at
	heap.Push(h, t)
}

func (h *settleHeap) remove(t *tracked) {
	if t.hidx >= 0 {
		heap.Remove(h, int(t.hidx))
	}
}

func (h settleHeap) peek() *tracked {
	if len(h) == 0 {
		return nil
	}
	return h[0]
}
