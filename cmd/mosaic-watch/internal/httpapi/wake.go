package httpapi

import (
	"sync"
	"time"
)

// webhookWakeEvery bounds how often webhooks may wake the poller: each wake-up is a poll round,
// one GET /agent_run per active run, and Mosaic's rate limit pauses all work when hit.
const webhookWakeEvery = time.Second

// wakeLimiter passes wake-ups on at most once per interval. A wake-up inside the interval is
// not lost: one trailing wake-up fires when the interval ends, however many arrived meanwhile.
type wakeLimiter struct {
	every time.Duration
	wake  func()
	now   func() time.Time
	// after runs f once d has passed and returns a function that cancels it (time.AfterFunc).
	after func(d time.Duration, f func()) (cancel func() bool)

	mu      sync.Mutex
	last    time.Time   // when wake last ran
	pending func() bool // cancels the trailing wake-up; nil when none is due
	closed  bool
}

func newWakeLimiter(every time.Duration, wake func()) *wakeLimiter {
	return &wakeLimiter{every: every, wake: wake, now: time.Now,
		after: func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }}
}

// Wake wakes now, or once the interval since the last wake-up has passed.
func (l *wakeLimiter) Wake() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.pending != nil {
		return // a trailing wake-up is already due: it covers this one
	}
	now := l.now()
	if wait := l.last.Add(l.every).Sub(now); wait > 0 {
		l.pending = l.after(wait, l.fire)
		return
	}
	l.last = now
	l.wake()
}

func (l *wakeLimiter) fire() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.pending = nil
	l.last = l.now()
	l.wake()
}

// Close drops a trailing wake-up that is still due.
func (l *wakeLimiter) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.pending != nil {
		l.pending()
		l.pending = nil
	}
}
