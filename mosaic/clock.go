package mosaic

import (
	"net/http"
	"sync"
	"time"
)

// Mosaic stamps runs with its own clock (started_at), which may be minutes away from this
// machine's. Finding the run a lost start created means listing runs by Mosaic's time, so the
// client measures the offset from the Date header of every successful API answer (a gateway's
// error answer carries the gateway's clock, not Mosaic's).
//
// A Date header has one-second resolution: an answer dated D was written while Mosaic's clock
// read [D, D+1s), at some moment between our send and our receipt. So one answer bounds the
// offset (Mosaic minus us) to [D − received, D + 1s − sent]. The clock keeps the intersection of
// the recent bounds, each widened by a drift allowance as it ages: answers written at different
// sub-second phases narrow it well below a second. Bounds that disagree mean a clock was
// stepped; then only the newest answer counts.

const (
	clockSamples   = 32               // bounds kept
	clockMaxAge    = 10 * time.Minute // older bounds are dropped
	clockDriftRate = 500e-6           // allowance per second of age: NTP slews at most 500 ppm
)

type offsetBound struct {
	lo, hi time.Duration // Mosaic's clock minus ours
	at     time.Time     // our time when it was measured
}

// serverClock is the offset estimate. Safe for concurrent use.
type serverClock struct {
	mu      sync.Mutex
	samples []offsetBound // oldest first
}

// observe records one answer: the Date header and our send and receive times.
func (c *serverClock) observe(date string, sent, received time.Time) {
	d, err := http.ParseTime(date)
	if err != nil || received.Before(sent) {
		return
	}
	b := offsetBound{lo: d.Sub(received), hi: d.Add(time.Second).Sub(sent), at: received}
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := c.samples[:0]
	for _, s := range c.samples {
		if received.Sub(s.at) <= clockMaxAge {
			keep = append(keep, s)
		}
	}
	c.samples = append(keep, b)
	if len(c.samples) > clockSamples {
		c.samples = c.samples[len(c.samples)-clockSamples:]
	}
	if lo, hi := c.boundsLocked(received); lo > hi {
		c.samples = append(c.samples[:0], b) // a clock was stepped: start over from this answer
	}
}

// boundsLocked intersects the samples, each widened for drift since it was taken.
func (c *serverClock) boundsLocked(now time.Time) (lo, hi time.Duration) {
	for i, s := range c.samples {
		age := max(now.Sub(s.at), 0)
		drift := time.Duration(float64(age) * clockDriftRate)
		if i == 0 || s.lo-drift > lo {
			lo = s.lo - drift
		}
		if i == 0 || s.hi+drift < hi {
			hi = s.hi + drift
		}
	}
	return lo, hi
}

// estimate returns the offset's midpoint and half-width; ok is false before any answer.
func (c *serverClock) estimate(now time.Time) (offset, uncertainty time.Duration, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.samples) == 0 {
		return 0, 0, false
	}
	lo, hi := c.boundsLocked(now)
	if lo > hi { // cannot happen after observe, but never report a negative width
		lo, hi = hi, lo
	}
	return lo + (hi-lo)/2, (hi - lo) / 2, true
}

// ClockOffset reports how far Mosaic's clock is ahead of this machine's (negative: behind), as
// measured from the Date headers of the API's answers so far, and the uncertainty of that
// figure (it includes the header's one-second resolution). ok is false until the first answer.
func (c *Client) ClockOffset() (offset, uncertainty time.Duration, ok bool) {
	return c.clock.estimate(c.now())
}

// ServerTime converts t (this machine's clock) to Mosaic's clock using ClockOffset; before the
// first answer it returns t unchanged.
func (c *Client) ServerTime(t time.Time) time.Time {
	off, _, _ := c.clock.estimate(c.now())
	return t.Add(off)
}
