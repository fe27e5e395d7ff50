package mosaic_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

func TestClockOffsetIsMeasuredFromDateHeaders(t *testing.T) {
	for _, offset := range []time.Duration{-10 * time.Minute, -3 * time.Minute, 0, 1500 * time.Millisecond, 10 * time.Minute} {
		e := setup(t, mosaictest.Options{ClockOffset: offset})
		if _, _, ok := e.client.ClockOffset(); ok {
			t.Fatal("an offset before any answer")
		}
		for range 3 {
			if _, err := e.client.WhoAmI(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		got, unc, ok := e.client.ClockOffset()
		if !ok || unc > time.Second || got-unc > offset || got+unc < offset {
			t.Errorf("offset %v: measured %v ± %v (ok=%v); the truth must lie within, and the uncertainty stay under 1s", offset, got, unc, ok)
		}
		now := time.Now()
		if d := e.client.ServerTime(now).Sub(now.Add(offset)); d > unc || d < -unc {
			t.Errorf("offset %v: ServerTime off by %v", offset, d)
		}
	}
}

// Answers written at different sub-second phases narrow the estimate well below the Date
// header's one-second resolution. Both clocks are driven by the test.
func TestClockOffsetNarrowsWithAnswers(t *testing.T) {
	const offset = -3*time.Minute + 270*time.Millisecond
	var mu sync.Mutex
	local := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		local = local.Add(3 * time.Millisecond) // each look at the clock takes a little time
		return local
	}
	srv := newLocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", now().Add(offset).Format(http.TimeFormat))
		_, _ = w.Write([]byte(`{"organization_id":"o"}`))
	}))
	c, _ := newClient(t, srv.URL+basePath, func(o *mosaic.Options) { o.Now = now })
	for i := range 20 {
		if _, err := c.WhoAmI(context.Background()); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		local = local.Add(time.Duration(113+i*7) * time.Millisecond) // the next answer, at another phase
		mu.Unlock()
	}
	got, unc, _ := c.ClockOffset()
	if got-unc > offset || got+unc < offset || unc > 50*time.Millisecond {
		t.Fatalf("measured %v ± %v, want %v within a narrow bound", got, unc, offset)
	}
}

func TestClockOffsetFollowsAStep(t *testing.T) {
	var mu sync.Mutex
	date := time.Now()
	srv := newLocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		w.Header().Set("Date", date.UTC().Format(http.TimeFormat))
		mu.Unlock()
		_, _ = w.Write([]byte(`{"organization_id":"o"}`))
	}))
	c, _ := newClient(t, srv.URL+basePath)
	if _, err := c.WhoAmI(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	date = time.Now().Add(time.Hour) // Mosaic's clock was stepped
	mu.Unlock()
	if _, err := c.WhoAmI(context.Background()); err != nil {
		t.Fatal(err)
	}
	if off, unc, _ := c.ClockOffset(); off < time.Hour-2*time.Second || off > time.Hour+2*time.Second || unc > 2*time.Second {
		t.Fatalf("after a step of one hour: %v ± %v", off, unc)
	}
}

func TestCreditsBothShapes(t *testing.T) {
	e := setup(t, mosaictest.Options{Credits: 120})
	c, err := e.client.GetCredits(context.Background())
	if err != nil || c.Balance != 120 || c.Plan == "" || !c.AutoTopUp.Eligible {
		t.Fatalf("newest shape: %+v %v", c, err)
	}
	srv := newLocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"organization_id":"o","credits":{"balance":42.5,"unlimited":false,"usage":3},"plan":{"name":"x"}}`))
	}))
	old, _ := newClient(t, srv.URL+basePath)
	if c, err := old.GetCredits(context.Background()); err != nil || c.Balance != 42.5 {
		t.Fatalf("older shape: %+v %v", c, err)
	}
}

func TestListRunsReportsWhoStartedThem(t *testing.T) {
	e := setup(t, mosaictest.Options{ManualRuns: true, Agents: []mosaictest.AgentSpec{{}}})
	agent := e.fake.AgentIDs()[0]
	dash, _ := e.fake.StartForeignRun(agent, mosaictest.ForeignRun{TriggeredBy: map[string]any{"type": "dashboard"}})
	api, _ := e.fake.StartForeignRun(agent, mosaictest.ForeignRun{})
	runs, err := e.client.ListRuns(context.Background(), mosaic.ListRunsOptions{AgentID: agent})
	if err != nil || len(runs) != 2 {
		t.Fatalf("%d runs, %v", len(runs), err)
	}
	for _, r := range runs {
		switch r.ID {
		case dash:
			if !r.StartedByTrigger() || r.TriggeredBy != `{"type":"dashboard"}` {
				t.Errorf("dashboard run: %q", r.TriggeredBy)
			}
		case api:
			if r.StartedByTrigger() {
				t.Errorf("API run reported as triggered: %q", r.TriggeredBy)
			}
		}
		if r.StartedAt.IsZero() || len(r.Inputs) != 1 || r.Inputs[0].VideoID != "" {
			t.Errorf("run %s: started %v inputs %+v", r.ID, r.StartedAt, r.Inputs)
		}
	}
}
