package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
)

func TestCreditsAreRecordedForStatusDisplays(t *testing.T) {
	h := newHarness(t, harnessOpts{fake: func(o *mosaictest.Options) { o.Credits = 12345 }})
	ctx := context.Background()
	if c, err := pipeline.LoadCredits(ctx, h.st); err != nil || c != nil {
		t.Fatalf("before any refresh: %+v %v", c, err)
	}
	now := time.Now()
	if _, err := pipeline.RefreshCredits(ctx, h.client, h.st, now); err != nil {
		t.Fatal(err)
	}
	c, err := pipeline.LoadCredits(ctx, h.st)
	if err != nil || c == nil || c.Balance != 12345 || !c.At.Equal(now.UTC()) || c.String() != "12,345 credits" {
		t.Fatalf("recorded %+v (%q), %v", c, c, err)
	}
}
