package pipeline_test

import (
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// Reproduction (6): one Retry-After: 86400 must not pause all work for a day.
func TestRetryAfterPauseIsCapped(t *testing.T) {
	h := newHarness(t, harnessOpts{options: func(o *pipeline.Options) { o.MaxRetryAfter = 300 * time.Millisecond }})
	h.fake.InjectFault(mosaictest.RouteGetUploadURL, mosaictest.Fault{Kind: mosaictest.FaultRateLimit, RetryAfter: 86400 * time.Second, Count: 1})
	src := video("rate limited")
	h.drop("a.mp4", src)
	waitUntil(t, "the 429", func() bool { return h.fake.Stats().Requests["POST get_upload_url 429"] == 1 })
	if j := h.waitClosed("a.mp4"); j.Status != store.StatusDone {
		t.Fatalf("status %s: %s", j.Status, j.LastError)
	}
}

// A 429 from storage concerns that transfer only: other work goes on.
func TestStorageRateLimitPausesOnlyThatTransfer(t *testing.T) {
	h := newHarness(t, harnessOpts{options: func(o *pipeline.Options) { o.MaxRetryAfter = time.Second }})
	h.fake.InjectFault(mosaictest.RouteStorage, mosaictest.Fault{Kind: mosaictest.FaultRateLimit, RetryAfter: 86400 * time.Second, Count: 1})
	h.drop("first.mp4", video("first"))
	first := h.waitJob("first.mp4", func(j store.Job) bool { return historyHas(t, h.st, j.ID, "rate limited") })
	if why := h.p.Paused(); why != "" {
		t.Fatalf("a storage 429 paused all work: %s", why)
	}
	h.drop("second.mp4", video("second"))
	if j := h.waitClosed("second.mp4"); j.Status != store.StatusDone {
		t.Fatalf("second: %s %s", j.Status, j.LastError)
	}
	if j := h.waitID(first.ID, closed); j.Status != store.StatusDone {
		t.Fatalf("first: %s %s", j.Status, j.LastError)
	}
}
