package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// countStates counts the jobs of folder main by status, through the API.
func (e *httpEnv) countStates() map[store.Status]int {
	counts := map[store.Status]int{}
	for _, v := range e.jobs("?limit=1000") {
		counts[v.Status]++
	}
	return counts
}

func TestBacklogHeldUntilTheDashboardApproves(t *testing.T) {
	var existing []string
	e := startHTTPEnvWith(t, mosaictest.Options{}, "100ms", "limits:\n  backlog_confirm_over: 2\n",
		func(dir string) {
			for i := range 5 {
				rel := fmt.Sprintf("old-%d.mp4", i)
				testenv.DropFile(t, filepath.Join(dir, "in", "main", rel), testenv.Clip(rel))
				existing = append(existing, rel)
			}
		})
	testenv.WaitFor(t, 30*time.Second, "2 done and 3 waiting", func() bool {
		c := e.countStates()
		return c[store.StatusDone] == 2 && c[store.StatusWaiting] == 3
	})
	for _, v := range e.jobs("?state=waiting") {
		if !strings.Contains(v.Error, "waiting for approval") ||
			!strings.Contains(v.Error, "approve main") {
			t.Fatalf("held job reason: %q", v.Error)
		}
	}
	// A file dropped after the first watch is never held.
	e.writeClip("new.mp4", "dropped later")
	e.waitJob("new.mp4", "done")
	if c := e.countStates(); c[store.StatusWaiting] != 3 {
		t.Fatalf("after a new file: %v", c)
	}
	_, metrics, _ := e.do("GET", "/metrics", nil)
	if !strings.Contains(metrics, `mosaic_watch_jobs{folder="main",state="waiting"} 3`) {
		t.Error("metrics do not count the waiting jobs")
	}

	_, page, _ := e.do("GET", "/", nil)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, `action="/api/folders/main/approve"`) ||
		!strings.Contains(page, "3 videos that were already in the folder wait for approval") {
		t.Fatalf("dashboard has no approve button for main:\n%s", page)
	}
	path := "/api/folders/main/approve"
	if code, _, _ := e.do("POST", path, nil); code != 403 {
		t.Errorf("approve without the form token = %d, want 403", code)
	}
	code, body, _ := e.do("POST", path, nil, "X-CSRF-Token", m[1], "Sec-Fetch-Site", "same-origin")
	if code != 200 || !strings.Contains(body, `"resumed": 3`) {
		t.Fatalf("approve = %d %s", code, body)
	}
	testenv.WaitFor(t, 30*time.Second, "every video to be done", func() bool {
		c := e.countStates()
		return c[store.StatusDone] == 6 && c[store.StatusWaiting] == 0
	})
	if _, page, _ := e.do("GET", "/", nil); strings.Contains(page, "/approve") {
		t.Error("the approve button stays after the approval")
	}
	if n := len(e.fake.Runs()); n != 6 {
		t.Fatalf("%d runs, want 6", n)
	}
}

func TestDailyRunLimitShownOnDashboardAndMetrics(t *testing.T) {
	e := startHTTPEnv(t, mosaictest.Options{}, "100ms", "limits:\n  max_runs_per_day: 1\n")
	e.writeClip("a.mp4", "a")
	e.waitJob("a.mp4", "done")
	e.writeClip("b.mp4", "b")
	v := e.waitJob("b.mp4", "waiting")
	if !strings.Contains(v.Error, "daily run limit reached") {
		t.Fatalf("reason %q", v.Error)
	}
	_, page, _ := e.do("GET", "/", nil)
	if !strings.Contains(page, "Daily run limit reached for all folders: 1 of 1 runs") {
		t.Errorf("dashboard does not say the limit is reached")
	}
	_, metrics, _ := e.do("GET", "/metrics", nil)
	for _, want := range []string{`mosaic_watch_run_limit_reached{scope="all"} 1`,
		`mosaic_watch_runs_started_24h{scope="main"} 1`, `mosaic_watch_max_runs_per_day{scope="all"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Raising the limit by a reload lets the waiting file start.
	raised := strings.Replace(readFile(t, e.cfg.File), "max_runs_per_day: 1", "max_runs_per_day: 5", 1)
	e.saveConfig(raised)
	e.waitJob("b.mp4", "done")
	if got, _ := e.d.store.GetMeta(context.Background(), ReloadErrorKey); got != "" {
		t.Fatalf("reload error: %s", got)
	}
}
