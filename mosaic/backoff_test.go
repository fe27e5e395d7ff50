package mosaic_test

import (
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
)

func TestBackoffDoublesUpToTheLimit(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{
		{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second},
		{4, 8 * time.Second}, {5, 10 * time.Second}, {6, 10 * time.Second}, {1 << 20, 10 * time.Second},
	} {
		if got := mosaic.Backoff(time.Second, 10*time.Second, tc.attempt, 0); got != tc.want {
			t.Errorf("attempt %d: %s, want %s", tc.attempt, got, tc.want)
		}
	}
	if got := mosaic.Backoff(time.Minute, time.Second, 1, 0); got != time.Second {
		t.Errorf("base above the limit: %s, want the limit", got)
	}
}

func TestBackoffJitterShortensWithinItsShare(t *testing.T) {
	for _, tc := range []struct {
		jitter float64
		lo     time.Duration // for an unjittered delay of 8s
	}{
		{0.5, 4 * time.Second}, {0.2, 6400 * time.Millisecond}, {1, 0}, {7, 0}, {-1, 8 * time.Second},
	} {
		seen := map[time.Duration]bool{}
		for range 500 {
			d := mosaic.Backoff(time.Second, time.Minute, 4, tc.jitter)
			if d < tc.lo || d > 8*time.Second {
				t.Fatalf("jitter %v: %s outside [%s, 8s]", tc.jitter, d, tc.lo)
			}
			seen[d] = true
		}
		if spread := tc.lo < 8*time.Second; spread && len(seen) < 10 {
			t.Errorf("jitter %v: only %d distinct delays in 500 draws", tc.jitter, len(seen))
		}
	}
}
