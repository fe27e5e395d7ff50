package watcher

import (
	"container/heap"
	"time"
)

// tracked is the settle state of one candidate file. Only the loop touches it.
type tracked struct {
	root *rootState
	rel  string

	size  int64
	mtime time.Time
	id    string

	lastAt         time.Time // stat time of the newest applied observation
	stableSince    time.Time // first observation of the current state
	seen           int       // observations of the current state
	firstSeen      time.Time // first observation of this file identity
	incompleteSent bool
	missingSince   time.Time
	scanGen        uint64

	ready    bool
	hasReady bool
	readyKey readyKey // last Ready emitted for this entry

	due      time.Time
	hidx     int  // index in the settle heap, -1 when not scheduled
	inflight bool // a check job is out
	redo     bool // something happened while the check was out
}

// readyKey identifies one Ready emission (once per process lifetime).
type readyKey struct {
	root  *rootState
	rel   string
	size  int64
	mtime int64
	id    string
}

func (t *tracked) key() readyKey {
	return readyKey{root: t.root, rel: t.rel, size: t.size, mtime: t.mtime.UnixNano(), id: t.id}
}

// settleHeap orders tracked files by their next check time; one timer in the
// loop serves all of them.
type settleHeap []*tracked

func (h settleHeap) Len() int           { return len(h) }
func (h settleHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h settleHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}
func (h *settleHeap) Push(x any) {
	t := x.(*tracked)
	t.hidx = len(*h)
	*h = append(*h, t)
}
func (h *settleHeap) Pop() any {
	old := *h
	n := len(old)
	t := old[n-1]
	old[n-1] = nil
	t.hidx = -1
	*h = old[:n-1]
	return t
}

// schedule sets t's next check to at, or keeps an earlier one.
func (h *settleHeap) schedule(t *tracked, at time.Time) {
	if t.hidx >= 0 {
		if !at.Before(t.due) {
			return
		}
		t.due = at
		heap.Fix(h, t.hidx)
		return
	}
	t.due = at
	heap.Push(h, t)
}

func (h *settleHeap) remove(t *tracked) {
	if t.hidx >= 0 {
		heap.Remove(h, t.hidx)
	}
}

func (h settleHeap) peek() *tracked {
	if len(h) == 0 {
		return nil
	}
	return h[0]
}
