package watcher

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	testSettle     = 250 * time.Millisecond
	testPoll       = 100 * time.Millisecond
	testIncomplete = 1 * time.Second
	waitLong       = 15 * time.Second
)

var modes = []Mode{ModeEvents, ModePoll}

// harness runs one Watcher on a fresh root and records every event.
type harness struct {
	t      *testing.T
	w      *Watcher
	root   string
	outer  string // a folder outside the root, same filesystem
	cancel context.CancelFunc
	runErr chan error

	mu     sync.Mutex
	events []Event
	notify chan struct{} // closed and replaced on every new event
}

type rootOpt func(*Root)

func startWatcher(t *testing.T, mode Mode, opts ...rootOpt) *harness {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "in")
	outer := filepath.Join(base, "outside")
	for _, d := range []string{root, outer} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return startOn(t, root, outer, mode, opts...)
}

// startOn starts a watcher on an existing root (files may already be there).
func startOn(t *testing.T, root, outer string, mode Mode, opts ...rootOpt) *harness {
	t.Helper()
	return startTweaked(t, root, outer, mode, nil, opts...)
}

// startTweaked is startOn with tweak applied to the Watcher before it runs.
func startTweaked(t *testing.T, root, outer string, mode Mode, tweak func(*Watcher), opts ...rootOpt) *harness {
	t.Helper()
	r := Root{Path: root, Recursive: true, Settle: testSettle, Mode: mode, PollInterval: testPoll, IncompleteAfter: testIncomplete}
	for _, o := range opts {
		o(&r)
	}
	w, err := New(Options{Roots: []Root{r}, DegradedRecheck: 200 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(w)
	}
	h := &harness{t: t, w: w, root: root, outer: outer, runErr: make(chan error, 1), notify: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.runErr <- w.Run(ctx) }()
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for e := range w.Events() {
			h.mu.Lock()
			h.events = append(h.events, e)
			close(h.notify)
			h.notify = make(chan struct{})
			h.mu.Unlock()
			if testing.Verbose() {
				t.Logf("event %v %q size=%d healthy=%v reason=%q", e.Kind, e.Rel, e.Size, e.Healthy, e.Reason)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-h.runErr:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		case <-time.After(waitLong):
			t.Fatal("Run did not return after cancel")
		}
		select {
		case <-collected: // Events channel closed
		case <-time.After(waitLong):
			t.Fatal("Events channel not closed after Run returned")
		}
	})
	// every test starts once the root reported its health
	h.waitFor(func(e Event) bool { return e.Kind == Health }, "initial health")
	return h
}

// waitFor returns the first recorded event matching ok, waiting up to waitLong.
func (h *harness) waitFor(ok func(Event) bool, what string) Event {
	h.t.Helper()
	deadline := time.After(waitLong)
	for {
		h.mu.Lock()
		for _, e := range h.events {
			if ok(e) {
				h.mu.Unlock()
				return e
			}
		}
		ch := h.notify
		h.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			if os.Getenv("WATCHER_DEBUG") != "" {
				buf := make([]byte, 1<<20)
				h.t.Log(string(buf[:runtime.Stack(buf, true)]))
			}
			h.t.Fatalf("timed out waiting for %s; events: %v", what, h.snapshot())
			return Event{}
		}
	}
}

func (h *harness) waitKind(k Kind, rel string) Event {
	h.t.Helper()
	return h.waitFor(func(e Event) bool { return e.Kind == k && e.Rel == rel }, k.String()+" "+rel)
}

func (h *harness) snapshot() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event(nil), h.events...)
}

func (h *harness) count(k Kind, rel string) int {
	n := 0
	for _, e := range h.snapshot() {
		if e.Kind == k && (rel == "" || e.Rel == rel) {
			n++
		}
	}
	return n
}

// waitCond polls cond until it holds or the deadline passes.
func (h *harness) waitCond(cond func() bool, what string) {
	h.t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; events: %v", what, h.snapshot())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// quiesce waits (by condition, with a deadline) until nothing is settling and
// at least three settle windows passed since since, then checks that no event
// outside allowed arrived.
func (h *harness) quiesce(since time.Time) {
	h.t.Helper()
	h.waitCond(func() bool {
		return h.w.Pending() == 0 && time.Since(since) > 3*testSettle
	}, "pending==0 after 3 settle windows")
}

// noMore asserts that no event matching bad arrives in window (used after the
// expected events were seen).
func (h *harness) noMore(bad func(Event) bool, window time.Duration) {
	h.t.Helper()
	end := time.Now().Add(window)
	for time.Now().Before(end) {
		for _, e := range h.snapshot() {
			if bad(e) {
				h.t.Fatalf("unexpected event %+v", e)
			}
		}
		h.mu.Lock()
		ch := h.notify
		h.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(time.Until(end)):
		}
	}
	for _, e := range h.snapshot() {
		if bad(e) {
			h.t.Fatalf("unexpected event %+v", e)
		}
	}
}

func (h *harness) path(rel string) string { return filepath.Join(h.root, filepath.FromSlash(rel)) }

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// box builds one ISO-BMFF box with a 32-bit size.
func box(typ string, payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint32(b, uint32(8+len(payload)))
	copy(b[4:], typ)
	return append(b, payload...)
}

var ftyp = box("ftyp", []byte("isom\x00\x00\x02\x00isomiso2"))

// validMP4 is a tiny file whose boxes tile exactly and include moov.
func validMP4(mdatLen int) []byte {
	var b bytes.Buffer
	b.Write(ftyp)
	b.Write(box("moov", bytes.Repeat([]byte{1}, 16)))
	b.Write(box("mdat", bytes.Repeat([]byte{7}, mdatLen)))
	return b.Bytes()
}

func noMoovMP4(mdatLen int) []byte {
	var b bytes.Buffer
	b.Write(ftyp)
	b.Write(box("mdat", bytes.Repeat([]byte{7}, mdatLen)))
	return b.Bytes()
}

func goroutinesSettle(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines leaked: %d > %d\n%s", n, base, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func isKindRel(k Kind, rel string) func(Event) bool {
	return func(e Event) bool { return e.Kind == k && e.Rel == rel }
}

func hasPrefixRel(prefix string) func(Event) bool {
	return func(e Event) bool { return e.Rel != "" && strings.HasPrefix(e.Rel, prefix) }
}

func runtimeGoroutines() int { return runtime.NumGoroutine() }

// testLogger writes watcher logs into the test log when WATCHER_DEBUG is set.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("WATCHER_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// errPrivilegeNotHeld is Windows' ERROR_PRIVILEGE_NOT_HELD: creating a symbolic link needs
// Developer Mode or an administrator there.
const errPrivilegeNotHeld = syscall.Errno(1314)

// symlink creates a symbolic link, or skips the test where this account may not create one.
func symlink(t *testing.T, oldname, newname string) {
	t.Helper()
	if err := os.Symlink(oldname, newname); err != nil {
		if runtime.GOOS == "windows" && errors.Is(err, errPrivilegeNotHeld) {
			t.Skipf("this account cannot create symbolic links: %v", err)
		}
		t.Fatal(err)
	}
}
