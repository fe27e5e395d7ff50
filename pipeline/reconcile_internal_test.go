package pipeline

import (
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
)

func TestAttributeRuns(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	run := func(id string, s float64) mosaic.Run { return mosaic.Run{ID: id, StartedAt: at(s)} }
	lost := func(id int64, from, to float64) startWindow {
		return startWindow{jobID: id, from: at(from), to: at(to), lateUntil: at(to + 120)}
	}
	answered5xx := func(id int64, from, to float64) startWindow {
		return startWindow{jobID: id, from: at(from), to: at(to), lateUntil: at(to + 15)}
	}
	inFlight := func(id int64, from float64) startWindow { return startWindow{jobID: id, from: at(from)} }

	cases := []struct {
		name      string
		run       mosaic.Run
		starts    []startWindow
		best      int64
		contested bool
		claimants int
	}{
		{"in one prompt window", run("r", 1), []startWindow{lost(1, 0, 2), lost(2, 3, 5)}, 1, false, 1},
		{"before every window: another client's", run("r", -5), []startWindow{lost(1, 0, 2)}, 0, false, 0},
		{"just after an answered 5xx", run("r", 3), []startWindow{answered5xx(1, 0, 2)}, 1, false, 1},
		{"long after an answered 5xx", run("r", 30), []startWindow{answered5xx(1, 0, 2)}, 0, false, 0},
		{"late, one start", run("r", 20), []startWindow{lost(1, 0, 2)}, 1, false, 1},
		{"late beyond reconcile_after", run("r", 200), []startWindow{lost(1, 0, 2)}, 0, false, 0},
		{"prompt beats late", run("r", 4), []startWindow{lost(1, 0, 2), lost(2, 3, 5)}, 2, false, 2},
		{"late: the earliest start", run("r", 30), []startWindow{lost(2, 3, 5), lost(1, 0, 2)}, 1, false, 2},
		{"a start in flight may answer with it", run("r", 4), []startWindow{lost(1, 0, 2), inFlight(2, 3)}, 0, true, 2},
		{"in flight alone", run("r", 4), []startWindow{inFlight(2, 3)}, 2, false, 1},
		{"overlapping prompt windows", run("r", 1.5), []startWindow{lost(1, 0, 2), lost(2, 1, 3)}, 0, true, 2},
		{"no time stamp", mosaic.Run{ID: "r"}, []startWindow{lost(1, 0, 2)}, 0, true, 1},
	}
	for _, c := range cases {
		got := attribute([]mosaic.Run{c.run}, c.starts)[0]
		if got.best != c.best || got.contested != c.contested || len(got.claimants) != c.claimants {
			t.Errorf("%s: best %d contested %v claimants %v; want %d %v %d", c.name, got.best, got.contested, got.claimants, c.best, c.contested, c.claimants)
		}
	}
}
