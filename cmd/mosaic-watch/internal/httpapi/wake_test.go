package httpapi

import (
	"testing"
	"time"
)

// fakeTimers is a clock the test moves by hand, with the timers wakeLimiter starts.
type fakeTimers struct {
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func (c *fakeTimers) after(d time.Duration, f func()) func() bool {
	tm := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, tm)
	return func() bool { was := !tm.stopped; tm.stopped = true; return was }
}

// advance moves the clock and fires the timers that come due.
func (c *fakeTimers) advance(d time.Duration) {
	c.now = c.now.Add(d)
	due := c.timers[:0:0]
	rest := c.timers[:0:0]
	for _, tm := range c.timers {
		if !tm.stopped && !tm.at.After(c.now) {
			due = append(due, tm)
		} else if !tm.stopped {
			rest = append(rest, tm)
		}
	}
	c.timers = rest
	for _, tm := range due {
		tm.stopped = true
		tm.f()
	}
}

func TestWakeLimiter(t *testing.T) {
	clock := &fakeTimers{now: time.Unix(1_700_000_000, 0)}
	wakes := 0
	l := newWakeLimiter(time.Second, func() { wakes++ })
	l.now, l.after = func() time.Time { return clock.now }, clock.after

	for range 1000 { // a burst: one wake-up now, one held for the end of the second
		l.Wake()
	}
	if wakes != 1 || len(clock.timers) != 1 {
		t.Fatalf("burst: %d wake-ups, %d held; want 1 and 1", wakes, len(clock.timers))
	}
	clock.advance(999 * time.Millisecond)
	l.Wake()
	if wakes != 1 {
		t.Fatalf("inside the second: %d wake-ups, want 1", wakes)
	}
	clock.advance(time.Millisecond)
	if wakes != 2 || len(clock.timers) != 0 {
		t.Fatalf("end of the second: %d wake-ups, %d held; want 2 and 0", wakes, len(clock.timers))
	}
	// Half a second after the held one fired: held again until a full second has passed.
	clock.advance(500 * time.Millisecond)
	l.Wake()
	if wakes != 2 || len(clock.timers) != 1 ||
		!clock.timers[0].at.Equal(clock.now.Add(500*time.Millisecond)) {
		t.Fatalf("0.5 s after a wake-up: %d wake-ups, timers %+v", wakes, clock.timers)
	}
	clock.advance(500 * time.Millisecond)
	// Quiet for a while: the next one passes at once.
	clock.advance(10 * time.Second)
	l.Wake()
	if wakes != 4 {
		t.Fatalf("after a quiet spell: %d wake-ups, want 4", wakes)
	}
	// Over 60 simulated seconds of constant deliveries: at most one a second.
	for range 60_000 {
		clock.advance(time.Millisecond)
		l.Wake()
	}
	if got := wakes - 4; got < 59 || got > 61 {
		t.Errorf("a minute of deliveries every millisecond woke the poller %d times, want ~60", got)
	}
	// Close drops a held wake-up.
	l.Wake()
	l.Close()
	before := wakes
	clock.advance(2 * time.Second)
	l.Wake()
	if wakes != before {
		t.Errorf("after Close: %d more wake-ups", wakes-before)
	}
}
