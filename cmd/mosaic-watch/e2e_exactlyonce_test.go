package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

// TestE2EFaultsTwentyFilesTwoAgents is issue 10's faults run through the binary: 20 files on two
// folders with their own agents while the fake answers 10% of all requests with 503, 5% with
// 429, drops 3% of the connections and loses 15% of the run-start answers, with
// reconcile_after at its default (2m). Every file must end done with exactly one run. The time
// is printed (goal: under 150 s on the 2-core development machine; a file whose run start was
// dropped before any run was made waits the full reconcile_after).
func TestE2EFaultsTwentyFilesTwoAgents(t *testing.T) {
	runFor := 2 * time.Second
	e := newE2E(t, mosaictest.Options{Seed: time.Now().UnixNano(), Agents: []mosaictest.AgentSpec{
		{Name: "one", RunDuration: &runFor}, {Name: "two", Outputs: 2, RunDuration: &runFor},
	}}, nil, "")
	ids := e.fake.AgentIDs()
	e = newE2EWith(t, e, []folderSpec{{name: "a", agent: ids[0]}, {name: "b", agent: ids[1]}})
	cfg, _ := os.ReadFile(e.cfg)
	defaultReconcile := strings.Replace(string(cfg), "  reconcile_after: 1s\n", "", 1)
	if err := os.WriteFile(e.cfg, []byte(defaultReconcile), 0o600); err != nil {
		t.Fatal(err)
	}
	e.fake.InjectFault(mosaictest.RouteRunAgent,
		mosaictest.Fault{Kind: mosaictest.FaultLoseResponse, Probability: 0.15})
	e.fake.InjectFault(mosaictest.RouteAny,
		mosaictest.Fault{Kind: mosaictest.FaultStatus, Status: 503, Probability: 0.10})
	e.fake.InjectFault(mosaictest.RouteAny,
		mosaictest.Fault{Kind: mosaictest.FaultRateLimit, RetryAfter: time.Second, Probability: 0.025})
	e.fake.InjectFault(mosaictest.RouteAny,
		mosaictest.Fault{Kind: mosaictest.FaultRateLimit, Probability: 0.025})
	e.fake.InjectFault(mosaictest.RouteAny,
		mosaictest.Fault{Kind: mosaictest.FaultDrop, Probability: 0.03})

	e.start()
	start := time.Now()
	srcs := map[string][]byte{}
	for i := range 20 {
		rel := fmt.Sprintf("%s/clip %02d.mov", []string{"a", "b"}[i%2], i)
		srcs[rel] = testenv.Clip(fmt.Sprint("faults run ", i))
		e.writeFile(rel, srcs[rel])
	}
	testenv.WaitFor(t, 5*time.Minute, "every file to be done", func() bool {
		states := e.jobStates()
		done := 0
		for rel := range srcs {
			switch v, ok := states[rel]; {
			case ok && v.Status == "done":
				done++
			case ok && v.Status != "active" && v.Status != "retrying":
				t.Fatalf("%s ended %s: %s", rel, v.Status, v.Error)
			}
		}
		return done == len(srcs)
	})
	took := time.Since(start)
	e.stop()
	for rel, src := range srcs {
		agent := ids[0]
		if strings.HasPrefix(rel, "b/") {
			agent = ids[1]
		}
		if n := e.runs(src, agent); n != 1 {
			t.Errorf("%s: %d runs, want exactly 1", rel, n)
		}
	}
	t.Logf("20 files, 2 agents, default reconcile_after, 10%% 503 + 5%% 429 + 3%% drops + "+
		"15%% lost run answers: all done, one run each, in %.1f s (goal < 150 s)", took.Seconds())
}

// TestE2ECancelRetryValidateWhoami drives the commands issue 10 adds or changes: validate
// --online checks the agents (and a start refuses what it refuses), whoami shows the credits,
// cancel cancels a running run, retry resumes it rather than billing a new one, and a run
// that is gone needs --new-run.
func TestE2ECancelRetryValidateWhoami(t *testing.T) {
	long := time.Hour
	e := newE2E(t, mosaictest.Options{Credits: 777, Agents: []mosaictest.AgentSpec{
		{Name: "long", RunDuration: &long, Nodes: []string{"in-node", "edit-node"}},
	}}, []folderSpec{{name: "main"}}, "")
	agent := e.fake.AgentIDs()[0]

	out, code := e.cli("validate", "--config", e.cfg, "--online")
	if code != 0 || !strings.Contains(out, "checked with Mosaic") ||
		!strings.Contains(out, "777 credits") {
		t.Fatalf("validate --online: %d\n%s", code, out)
	}
	good, _ := os.ReadFile(e.cfg)
	bad := e.path("bad-node.yaml")
	os.WriteFile(bad, append(good, []byte("    update_params:\n      nope: {x: 1}\n")...), 0o600)
	for _, cmd := range [][]string{{"validate", "--online"}, {"run"}} {
		out, code := e.cli(append(cmd, "--config", bad)...)
		if code != 2 || !strings.Contains(out, "update_params") || !strings.Contains(out, `"nope"`) ||
			!strings.Contains(out, "bad-node.yaml:") {
			t.Fatalf("%v with an unknown node: exit %d, want 2 naming the file, line and key:\n%s",
				cmd, code, out)
		}
	}
	out, code = e.cli("whoami", "--config", e.cfg)
	if code != 0 || !strings.Contains(out, "Credits: 777") {
		t.Fatalf("whoami: %d\n%s", code, out)
	}

	e.start()
	src := testenv.Clip("cancel me")
	e.writeFile("main/long.mov", src)
	testenv.WaitFor(t, 60*time.Second, "the run to start", func() bool {
		return e.jobStates()["main/long.mov"].RunID != ""
	})
	out, code = e.cli("cancel", "--config", e.cfg, "long.mov")
	if code != 0 || !strings.Contains(out, "cancelled run") {
		t.Fatalf("cancel: %d\n%s", code, out)
	}
	v := e.waitState("main/long.mov", "failed")
	if !strings.Contains(v.Error, "cancelled on request") || e.fake.Stats().Cancels != 1 {
		t.Fatalf("after cancel: %q, %d cancels", v.Error, e.fake.Stats().Cancels)
	}
	out, code = e.cli("retry", "--config", e.cfg, "long.mov")
	if code != 0 || !strings.Contains(out, "resuming run "+v.RunID) {
		t.Fatalf("retry: %d\n%s", code, out)
	}
	testenv.WaitFor(t, 30*time.Second, "the resume", func() bool {
		return e.fake.Stats().Resumes == 1 && e.jobStates()["main/long.mov"].Status == "active"
	})
	if n := e.runs(src, agent); n != 1 {
		t.Fatalf("%d runs: retry must resume, not bill a new run", n)
	}
	out, code = e.cli("status", "--config", e.cfg)
	if code != 0 || !strings.Contains(out, "Credits:") {
		t.Fatalf("status: %d\n%s", code, out)
	}
	e.stop()
}
