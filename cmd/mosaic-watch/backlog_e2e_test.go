package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/jobview"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// overview reads `status --json --all` through the CLI.
func (e *e2e) overview() jobview.Overview {
	e.t.Helper()
	out, code := e.cli("status", "--config", e.cfg, "--json", "--all")
	var ov jobview.Overview
	if code != 0 || json.Unmarshal([]byte(out[max(0, strings.Index(out, "{")):]), &ov) != nil {
		return jobview.Overview{} // the daemon is still creating its database
	}
	return ov
}

func (e *e2e) counts(folder string) map[store.Status]int { return e.overview().Counts[folder] }

// dbState is the database file's bytes (hashed), size and modification time.
func dbState(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x %d %s", sha256.Sum256(data), fi.Size(), fi.ModTime())
}

func totalRequests(s mosaictest.Stats) int {
	n := 0
	for _, c := range s.Requests {
		n += c
	}
	return n
}

func TestE2EPlanWritesNothingAndConfirmHoldsTheBacklog(t *testing.T) {
	e := newE2E(t, mosaictest.Options{}, []folderSpec{{name: "main"}}, "")
	agent := e.fake.AgentIDs()[0]
	e.start() // creates the database with an empty folder
	e.waitLog(startedLine)
	e.stop()

	// An archive of 120 videos, never watched.
	archive := e.folderYAML("archive", agent, "")
	for i := range 120 {
		rel := fmt.Sprintf("archive/day%d/clip-%03d.mov", i%3, i)
		e.writeFile(rel, testenv.Clip(rel))
	}
	if err := os.WriteFile(e.cfg, []byte(e.config()+archive), 0o600); err != nil {
		t.Fatal(err)
	}
	db := e.path("state", "mosaic-watch.db")
	before, requests := dbState(t, db), totalRequests(e.fake.Stats())
	out, code := e.cli("plan", "--config", e.cfg, "--json")
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s", code, out)
	}
	var p struct {
		Folders []struct {
			Name       string
			FirstWatch bool `json:"first_watch"`
			Videos     struct{ Files int }
			Start      struct{ Files int }
			Held       struct{ Files int } `json:"waiting_for_approval"`
		}
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &p); err != nil {
		t.Fatalf("plan --json: %v\n%s", err, out)
	}
	a := p.Folders[1]
	if a.Name != "archive" || !a.FirstWatch || a.Videos.Files != 120 || a.Start.Files != 50 ||
		a.Held.Files != 70 {
		t.Fatalf("plan of the archive: %+v\n%s", a, out)
	}
	text, _ := e.cli("plan", "--config", e.cfg)
	if !strings.Contains(text, "videos:                  120") ||
		!strings.Contains(text, "mosaic-watch approve archive") {
		t.Fatalf("plan text:\n%s", text)
	}
	if after := dbState(t, db); after != before {
		t.Fatalf("plan changed the database: %s -> %s", before, after)
	}
	if n := totalRequests(e.fake.Stats()) - requests; n != 0 {
		t.Fatalf("plan sent %d requests to Mosaic", n)
	}

	// run with the default existing_files: confirm starts 50 and holds 70 until approve.
	e.start()
	testenv.WaitFor(t, 3*time.Minute, "50 done and 70 waiting", func() bool {
		c := e.counts("archive")
		return c[store.StatusDone] == 50 && c[store.StatusWaiting] == 70
	})
	if n := e.fake.Stats().RunsCreated; n != 50 {
		t.Fatalf("%d runs before approve, want 50", n)
	}
	ov := e.overview()
	if len(ov.Waiting) != 70 ||
		!strings.Contains(ov.Waiting[0].Error, "mosaic-watch approve archive") {
		t.Fatalf("waiting jobs: %d, first reason %q", len(ov.Waiting), ov.Waiting[0].Error)
	}
	// A file dropped after the first watch starts at once.
	fresh := testenv.Clip("dropped after the first watch")
	e.writeFile("archive/fresh.mov", fresh)
	e.waitOutput("archive/fresh.mp4", agent, fresh, 0)

	out, code = e.cli("approve", "--config", e.cfg, "archive")
	if code != 0 || !strings.Contains(out, "70 waiting video(s) start now") {
		t.Fatalf("approve: exit %d\n%s", code, out)
	}
	testenv.WaitFor(t, 3*time.Minute, "every video to be done", func() bool {
		return e.counts("archive")[store.StatusDone] == 121
	})
	e.stop()
	if n := e.fake.Stats().RunsCreated; n != 121 {
		t.Fatalf("%d runs, want 121 (one per video)", n)
	}
}

func TestE2EMaxRunsPerDay(t *testing.T) {
	e := newE2E(t, mosaictest.Options{}, []folderSpec{{name: "main"}},
		"limits:\n  max_runs_per_day: 3")
	e.start()
	for i := range 5 {
		rel := fmt.Sprintf("main/v%d.mov", i)
		e.writeFile(rel, testenv.Clip(rel))
	}
	testenv.WaitFor(t, time.Minute, "3 done and 2 waiting", func() bool {
		c := e.counts("main")
		return c[store.StatusDone] == 3 && c[store.StatusWaiting] == 2
	})
	ov := e.overview()
	for _, v := range ov.Waiting {
		if !strings.Contains(v.Error, "daily run limit reached: 3 runs started in the last 24 hours") {
			t.Fatalf("waiting reason: %q", v.Error)
		}
	}
	if len(ov.RunLimits) != 1 || !ov.RunLimits[0].Reached || ov.RunLimits[0].Used != 3 {
		t.Fatalf("run limits in status --json: %+v", ov.RunLimits)
	}
	out, _ := e.cli("status", "--config", e.cfg)
	for _, want := range []string{"Daily run limit (all folders): 3 of 3 runs",
		"reached: new runs wait until", "Waiting:", "daily run limit reached"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	e.stop()
	if n := e.fake.Stats().RunsCreated; n != 3 {
		t.Fatalf("%d runs, want 3", n)
	}
}
