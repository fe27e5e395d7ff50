package watcher

import "time"

// observation is one look at a path, taken by a worker or a scan.
type observation struct {
	rel     string
	at      time.Time // when the stat was taken
	missing bool      // gone, or no longer a candidate regular file
	rootOK  bool      // for missing: the root was present and readable
	rootID  string    // for missing: identity of the root at that moment
	size    int64
	mtime   time.Time
	id      fileID
	probed  bool     // open (and box) check ran on this exact state
	verdict string   // why not ready ("" = fine); only when probed
	failed  bool     // the stat failed for another reason than "missing"
	t       *tracked // the entry a check job was for (nil for scans)
}

type resultKind int

const (
	resObs       resultKind = iota + 1 // observations (scan batch or one check)
	resScanStart                       // root checked at the start of a scan
	resScanDone                        // full scan finished
	resDirGone                         // a watched folder disappeared
	resFallback                        // events are unusable for this root; poll
	resUntracked                       // a check for an untracked path finished
	resRootProbe                       // the root's identity, looked at between scans
)

// result is what workers and scans send back to the loop.
type result struct {
	kind    resultKind
	root    *rootState
	obs     []observation
	gen     uint64 // scan generation (scan results only)
	ok      bool
	reason  string
	rootID  string
	mount   bool   // resScanStart: the root is a mount point
	mode    Mode   // resScanStart: effective mode
	modeWhy string // resScanStart: why that mode (logged once)
	started time.Time
	took    time.Duration
	files   int
	path    string        // resDirGone/resUntracked: slash rel
	ack     chan struct{} // resScanStart: closed by the loop once handled
}

// checkJob asks a worker to look at one path.
type checkJob struct {
	root  *rootState
	rel   string
	probe bool     // also open and check boxes when the state is unchanged
	t     *tracked // nil for a hint on an untracked path
}
