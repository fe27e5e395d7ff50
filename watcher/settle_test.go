package watcher

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// The settle and readiness state machine, driven the way syncthing's watchaggregator tests drive
// their loop: each observation and each loop turn happens at a chosen instant, so the tests
// cover minutes and hours of settle logic without a file system, goroutines or sleeps. The
// behaviour tests (behaviour_test.go) run the same loop on real files with real fsnotify.

const (
	machineSettle     = 10 * time.Second
	machineIncomplete = 30 * time.Minute
	machineRel        = "clip.mp4"
)

// machine is one root's loop state, without Run: observations are applied and due checks
// dispatched at explicit offsets from the watcher's epoch.
type machine struct {
	t *testing.T
	w *Watcher
	l *loop
	r *rootState
}

func newMachine(t *testing.T) *machine {
	t.Helper()
	w, err := New(Options{Roots: []Root{{
		Path: filepath.Join(t.TempDir(), "in"), Recursive: true, Mode: ModePoll,
		Settle: machineSettle, IncompleteAfter: machineIncomplete,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	l := newLoop(w)
	l.ctx = context.Background()
	r := w.roots[0]
	r.healthKnown, r.healthy = true, true
	return &machine{t: t, w: w, l: l, r: r}
}

func (m *machine) time(d time.Duration) time.Time { return m.w.epoch.Add(d) }

// file is the state of the file as a stat shows it.
type file struct {
	size  int64
	mtime time.Duration // offset from the epoch
}

// look applies a stat of the file taken at `at`, handled by the loop at the same instant. A
// probed look also ran the open and box checks; verdict says why the file is not ready.
func (m *machine) look(at time.Duration, f file, probed bool, verdict string) {
	m.t.Helper()
	o := observation{rel: machineRel, at: m.time(at), size: f.size, mtime: m.time(f.mtime),
		probed: probed, verdict: verdict}
	m.apply(at, &o)
}

// gone applies a look at `at` that found the file missing; rootOK says whether the root was
// there.
func (m *machine) gone(at time.Duration, rootOK bool) {
	m.t.Helper()
	m.apply(at, &observation{rel: machineRel, at: m.time(at), missing: true, rootOK: rootOK})
}

func (m *machine) apply(now time.Duration, o *observation) {
	t := m.r.files[o.rel]
	if t == nil {
		m.l.observe(m.r, o, 0) // a new file: only o.at matters
		return
	}
	t.inflight = false // the answer to a check, or a scan's stat
	m.l.apply(t, o, m.w.stamp(m.time(now)))
}

// due is when the file's next check is scheduled, as an offset from the epoch.
func (m *machine) due() time.Duration {
	m.t.Helper()
	t := m.r.files[machineRel]
	if t == nil || t.hidx < 0 {
		m.t.Fatalf("%s is not scheduled", machineRel)
	}
	return time.Duration(t.due)
}

// dispatch runs the loop's turn at now and returns the checks it hands to the workers.
func (m *machine) dispatch(now time.Duration) []checkJob {
	m.l.dispatchDue(m.time(now))
	jobs := m.l.queue[m.l.qhead:]
	m.l.queue, m.l.qhead = nil, 0
	return jobs
}

// events returns what the loop emitted since the last call.
func (m *machine) events() []Event {
	var out []Event
	for {
		select {
		case e := <-m.w.events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func (m *machine) expect(what string, kinds ...Kind) []Event {
	m.t.Helper()
	got := m.events()
	ok := len(got) == len(kinds)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].Kind == kinds[i] && got[i].Rel == machineRel
	}
	if !ok {
		m.t.Fatalf("%s: events %+v, want kinds %v", what, got, kinds)
	}
	return got
}

func TestSettleReadyAfterWindowSecondLookAndProbe(t *testing.T) {
	m := newMachine(t)
	f := file{size: 1000, mtime: -time.Second}
	m.look(0, f, false, "")
	if m.due() != machineSettle || m.w.Pending() != 1 {
		t.Fatalf("first look: due %s pending %d, want the end of the settle window and 1",
			m.due(), m.w.Pending())
	}
	if jobs := m.dispatch(9 * time.Second); len(jobs) != 0 {
		t.Fatalf("checks dispatched before the window ended: %+v", jobs)
	}
	m.look(4*time.Second, f, false, "") // a rescan inside the window changes nothing
	if m.due() != machineSettle {
		t.Fatalf("look inside the window moved the check to %s", m.due())
	}
	jobs := m.dispatch(machineSettle)
	if len(jobs) != 1 || !jobs[0].probe {
		t.Fatalf("at the end of the window: checks %+v, want one that probes", jobs)
	}
	m.expect("before the probe")
	m.look(machineSettle, f, true, "")
	e := m.expect("after a clean probe", Ready)
	if e[0].Size != 1000 || !e[0].ModTime.Equal(m.time(-time.Second)) || m.w.Pending() != 0 {
		t.Fatalf("Ready %+v, pending %d", e[0], m.w.Pending())
	}
	// Later scans of the same state report nothing more.
	for _, at := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour} {
		m.dispatch(at)
		m.look(at, f, false, "")
	}
	m.expect("stable file rescanned")
}

func TestSettleNoReadyWithoutAProbe(t *testing.T) {
	m := newMachine(t)
	f := file{size: 1000}
	m.look(0, f, false, "")
	// The loop was busy past the window: a scan's second look at the same state asks for a
	// probe at once instead of reporting the file.
	m.look(time.Hour, f, false, "")
	m.expect("two looks, no probe")
	if m.due() > time.Hour {
		t.Fatalf("second look after the window: due %s, want a check at once", m.due())
	}
	if jobs := m.dispatch(time.Hour); len(jobs) != 1 || !jobs[0].probe {
		t.Fatalf("checks %+v, want one that probes", jobs)
	}
	m.look(time.Hour, f, true, "")
	m.expect("probed", Ready)
}

func TestSettleGrowingFileRestartsTheWindow(t *testing.T) {
	m := newMachine(t)
	noProbe := func(now time.Duration) {
		for _, j := range m.dispatch(now) {
			if j.probe {
				t.Fatalf("probe dispatched at %s, inside the window after the last write", now)
			}
		}
	}
	var f file
	const step = 3 * time.Second
	for i := range 8 { // a slow copy: a write every 3 s for 21 s
		at := time.Duration(i) * step
		noProbe(at)
		f = file{size: int64(i+1) * 4096, mtime: at}
		m.look(at, f, false, "")
		if m.due() > at+machineSettle {
			t.Fatalf("write at %s: next check at %s, after the window", at, m.due())
		}
	}
	last := 7 * step
	for now := last + time.Second; now < last+machineSettle; now += time.Second {
		noProbe(now)
		m.look(now, f, false, "") // whatever the loop looks at sees the final state
	}
	m.expect("inside the window after the last write")
	jobs := m.dispatch(last + machineSettle)
	if len(jobs) != 1 || !jobs[0].probe {
		t.Fatalf("checks %+v at the end of the window, want one that probes", jobs)
	}
	m.look(last+machineSettle, f, true, "")
	if e := m.expect("settled copy", Ready); e[0].Size != 8*4096 {
		t.Fatalf("Ready with size %d, want the whole file", e[0].Size)
	}
}

func TestSettleChangedWhileProbingStartsOver(t *testing.T) {
	m := newMachine(t)
	m.look(0, file{size: 100}, false, "")
	m.dispatch(machineSettle)
	// The probe's stat shows a new size: the window starts again from that stat.
	grown := file{size: 200, mtime: machineSettle}
	m.look(machineSettle, grown, true, "")
	m.expect("changed during the probe")
	if m.due() != 2*machineSettle {
		t.Fatalf("due %s, want a new window", m.due())
	}
	// A stat older than the newest applied one is ignored (a slow scan's batch).
	m.look(machineSettle-time.Second, file{size: 100}, true, "")
	if jobs := m.dispatch(2 * machineSettle); len(jobs) != 1 || !jobs[0].probe {
		t.Fatalf("checks %+v, want one that probes", jobs)
	}
	m.look(2*machineSettle, grown, true, "")
	m.expect("settled again", Ready)
}

func TestSettleEmptyFileIsIncompleteNeverReady(t *testing.T) {
	m := newMachine(t)
	empty := file{size: 0}
	m.look(0, empty, false, "")
	m.dispatch(machineSettle)
	m.look(machineSettle, empty, true, "")
	if e := m.expect("empty after the window", Incomplete); e[0].Reason != "empty file" {
		t.Fatalf("reason %q", e[0].Reason)
	}
	if want := machineSettle + blockedRecheck(m.r); m.due() != want {
		t.Fatalf("empty file rechecked at %s, want %s", m.due(), want)
	}
	for at := m.due(); at < 6*time.Hour; at = m.due() {
		m.dispatch(at)
		m.look(at, empty, true, "")
	}
	m.expect("empty file for hours")
	if m.w.Pending() != 1 {
		t.Fatalf("pending %d, want the empty file still waiting", m.w.Pending())
	}
}

func TestSettleNotReadyVerdictReportedAfterIncompleteAfter(t *testing.T) {
	m := newMachine(t)
	const noMoov = "mp4 has no moov box yet"
	f := file{size: 5000}
	m.look(0, f, false, "")
	m.dispatch(machineSettle)
	m.look(machineSettle, f, true, noMoov)
	m.expect("blocked inside incomplete_after")
	if want := machineSettle + blockedRecheck(m.r); m.due() != want {
		t.Fatalf("blocked file rechecked at %s, want %s", m.due(), want)
	}
	for at := m.due(); at < machineIncomplete; at = m.due() {
		m.dispatch(at)
		m.look(at, f, true, noMoov)
		if m.due() > machineIncomplete {
			t.Fatalf("check at %s is scheduled past incomplete_after (%s)", m.due(), machineIncomplete)
		}
	}
	m.expect("blocked until incomplete_after")
	m.dispatch(machineIncomplete)
	m.look(machineIncomplete, f, true, noMoov)
	if e := m.expect("at incomplete_after", Incomplete); e[0].Reason != noMoov {
		t.Fatalf("reason %q", e[0].Reason)
	}
	next := m.due()
	m.dispatch(next)
	m.look(next, f, true, noMoov)
	m.expect("reported once")
	// The writer finally appends the moov box: a new state, settled and probed, is Ready.
	done := file{size: 5100, mtime: 31 * time.Minute}
	m.dispatch(31 * time.Minute)
	m.look(31*time.Minute, done, false, "")
	m.dispatch(31*time.Minute + machineSettle)
	m.look(31*time.Minute+machineSettle, done, true, "")
	m.expect("completed", Ready)
}

func TestSettleReadyStateIsReportedOnce(t *testing.T) {
	m := newMachine(t)
	settle := func(start time.Duration, f file) {
		m.dispatch(start)
		m.look(start, f, false, "")
		m.dispatch(start + machineSettle)
		m.look(start+machineSettle, f, true, "")
	}
	v1 := file{size: 100, mtime: -time.Minute}
	settle(0, v1)
	m.expect("first version", Ready)
	settle(time.Minute, file{size: 100, mtime: time.Minute}) // touched: a new state
	m.expect("second version", Ready)
	settle(2*time.Minute, v1) // a copy tool put the old timestamp back
	m.expect("back to the first version, reported before")
	if m.w.Pending() != 0 {
		t.Fatalf("pending %d after the file settled", m.w.Pending())
	}
}

func TestSettleVanishedOnlyAfterGraceWithTheRootPresent(t *testing.T) {
	m := newMachine(t)
	m.look(0, file{size: 100}, false, "")
	grace := vanishGrace(m.r)
	m.gone(time.Second, false) // the root itself is gone: not this file's doing
	m.gone(time.Second+2*grace, false)
	m.expect("root missing")
	if m.r.nextScan.IsZero() {
		t.Fatal("a missing root did not ask for a scan")
	}
	m.r.nextScan = time.Time{} // the scan is the behaviour tests' business
	m.dispatch(time.Minute)
	m.gone(time.Minute, true)
	m.expect("missing inside the grace")
	if m.due() != time.Minute+grace {
		t.Fatalf("due %s, want the end of the grace", m.due())
	}
	m.dispatch(time.Minute + grace)
	m.gone(time.Minute+grace, true)
	e := m.expect("missing past the grace", Vanished)
	if e[0].Reason != "deleted or moved away before it became ready" {
		t.Fatalf("reason %q", e[0].Reason)
	}
	if len(m.r.files) != 0 || m.w.Pending() != 0 {
		t.Fatalf("vanished file still tracked (%d files, pending %d)", len(m.r.files), m.w.Pending())
	}
}
