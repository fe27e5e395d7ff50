package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

// TestE2ECrashes runs 30 files through the daemon while the fake injects 5xx, 429, dropped
// connections and lost run-start responses, and kills the daemon with SIGKILL at random moments
// (at least 8 times). At the end every file has all its outputs with the right bytes, the fake
// counted exactly one run per file, no temporary file remains and no source was lost.
func TestE2ECrashes(t *testing.T) {
	runFor := 400 * time.Millisecond
	e := newE2E(t, mosaictest.Options{
		Seed:   42,
		Agents: []mosaictest.AgentSpec{{Name: "two outputs", Outputs: 2, RunDuration: &runFor}},
	}, []folderSpec{{name: "main"}}, "limits:\n  uploads: 3\n  downloads: 3")
	agent := e.fake.AgentIDs()[0]
	for _, r := range mosaictest.APIRoutes {
		e.fake.InjectFault(r, mosaictest.Fault{Kind: mosaictest.FaultStatus, Status: 503,
			Probability: 0.05})
		e.fake.InjectFault(r, mosaictest.Fault{Kind: mosaictest.FaultRateLimit,
			RetryAfter: 100 * time.Millisecond, Probability: 0.02})
		e.fake.InjectFault(r, mosaictest.Fault{Kind: mosaictest.FaultDrop, Probability: 0.03})
	}
	e.fake.InjectFault(mosaictest.RouteRunAgent,
		mosaictest.Fault{Kind: mosaictest.FaultLoseResponse, Probability: 0.3})
	e.fake.InjectFault(mosaictest.RouteStorage,
		mosaictest.Fault{Kind: mosaictest.FaultDrop, Probability: 0.05})
	e.fake.InjectFault(mosaictest.RouteDownload,
		mosaictest.Fault{Kind: mosaictest.FaultDrop, Probability: 0.1})

	const files = 30
	srcs := make(map[string][]byte)
	drop := func(from, to int) {
		for i := from; i < to; i++ {
			rel := fmt.Sprintf("main/batch%d/file %02d.mov", i%3, i)
			srcs[rel] = testenv.Clip(fmt.Sprintf("crash test file %d", i))
			e.writeFile(rel, srcs[rel])
		}
	}
	rng := rand.New(rand.NewPCG(7, 7))
	drop(0, 10)
	kills := 0
	for kills < 10 {
		e.start()
		if kills == 2 {
			drop(10, 20)
		}
		if kills == 5 {
			drop(20, files)
		}
		// A random moment to crash: the daemon's pace, not a wait for an outcome.
		time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
		e.kill()
		kills++
	}
	e.start()
	testenv.WaitFor(t, 90*time.Second, "every job to finish", func() bool {
		states := e.jobStates()
		done := 0
		for rel := range srcs {
			if v, ok := states[rel]; ok && v.Status == "done" {
				done++
			} else if ok && !(v.Status == "active" || v.Status == "retrying") {
				t.Fatalf("%s ended as %s: %s", rel, v.Status, v.Error)
			}
		}
		return done == len(srcs)
	})
	for rel, src := range srcs {
		stem := strings.TrimSuffix(rel, ".mov")
		e.waitOutput(stem+"-1.mp4", agent, src, 0)
		e.waitOutput(stem+"-2.mp4", agent, src, 1)
	}
	e.stop()

	st := e.fake.Stats()
	for rel, src := range srcs {
		if n := e.runs(src, agent); n != 1 {
			t.Errorf("%s: %d runs, want exactly 1", rel, n)
		}
		if _, err := os.Stat(e.path("in", filepath.FromSlash(rel))); err != nil {
			t.Errorf("%s: source lost: %v", rel, err)
		}
	}
	if st.RunsCreated != files {
		t.Errorf("runs created: %d, want %d", st.RunsCreated, files)
	}
	filepath.WalkDir(e.path("out"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".mosaic-partial") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
	t.Logf("%d kills; fake saw %d upload URLs, %d storage POSTs, %d runs", kills, st.UploadURLsIssued,
		st.StoragePosts, st.RunsCreated)
}
