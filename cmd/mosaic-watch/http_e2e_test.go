package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/jobview"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

// httpE2EConfig is the extra top-level YAML for a daemon listening on addr with webhooks.
func httpE2EConfig(addr string) string {
	return fmt.Sprintf("http:\n  listen: %s\nwebhook:\n  secret: %s\n  public_url: "+
		"http://%s/webhooks/mosaic", addr, testenv.WebhookSecret, addr)
}

// apiJobs reads GET /api/jobs from the daemon at addr (nil while it is not up yet).
func apiJobs(t testing.TB, addr, query string) []jobview.Job {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/jobs" + query)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var page struct{ Jobs []jobview.Job }
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&page) != nil {
		t.Fatalf("GET /api/jobs%s: %s", query, resp.Status)
	}
	return page.Jobs
}

// TestE2EWebhookOutputsWithinASecond: the real binary with mosaic.poll_interval 1m; the fake posts
// RUN_FINISHED to webhook.public_url and the output must land within a second of the finish.
func TestE2EWebhookOutputsWithinASecond(t *testing.T) {
	addr := testenv.FreePort(t)
	e := newE2E(t, mosaictest.Options{ManualRuns: true, WebhookSecret: testenv.WebhookSecret},
		[]folderSpec{{name: "main"}}, httpE2EConfig(addr))
	cfg, err := os.ReadFile(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	slow := strings.Replace(string(cfg), "poll_interval: 100ms", "poll_interval: 1m", 1)
	if slow == string(cfg) {
		t.Fatal("could not set mosaic.poll_interval to 1m")
	}
	if err := os.WriteFile(e.cfg, []byte(slow), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := e.fake.AgentIDs()[0]
	e.start()
	src := testenv.Clip("webhook latency")
	e.writeFile("main/clip.mov", src)
	jobs := func(q string, _ ...string) []jobview.Job { return apiJobs(t, addr, q) }
	run := testenv.WaitRunStarted(t, jobs, "clip.mov")

	out := e.path("out", "main", "clip.mp4")
	finished := time.Now()
	if err := e.fake.FinishRun(run, ""); err != nil {
		t.Fatal(err)
	}
	deadline := finished.Add(5 * time.Second)
	for {
		if _, err := os.Stat(out); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no output 5s after RUN_FINISHED (poll interval 1m)")
		}
		time.Sleep(5 * time.Millisecond)
	}
	latency := time.Since(finished)
	t.Logf("webhook-to-output latency: %s (mosaic.poll_interval 1m)", latency.Round(time.Millisecond))
	if latency > time.Second {
		t.Errorf("output landed %s after RUN_FINISHED, want within 1s", latency)
	}
	e.waitOutput("main/clip.mp4", agent, src, 0)
	if st := e.fake.Stats(); st.WebhooksDelivered < 2 || st.WebhooksFailed != 0 {
		t.Errorf("webhooks delivered %d, failed %d", st.WebhooksDelivered, st.WebhooksFailed)
	}
	e.stop()
	testenv.AssertNoSecrets(t, "daemon log", e.logs.String(), testenv.WebhookSecret)
}

// chromiumPath finds headless Chromium, or skips (fails on CI, where .ci/run installs it).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (CI=true): .ci/run must install Debian's chromium package")
	}
	t.Skip("browser test skipped: chromium is not installed (apt-get install -y chromium)")
	return ""
}

// chromium runs headless Chromium with args and returns its standard output.
func chromium(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

func artifactDir(t *testing.T) string {
	if d := os.Getenv("MOSAIC_WATCH_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestE2EDashboardInBrowser: headless Chromium loads the dashboard while the daemon processes
// files against the fake; the page shows the jobs with their states, a failure with its reason
// and a retry button, and a phone-width screenshot is saved. It reaches the page as 127.0.0.1
// and as localhost; a rebound name (mapped to 127.0.0.1 in the browser) gets no page.
func TestE2EDashboardInBrowser(t *testing.T) {
	bin := chromiumPath(t)
	addr := testenv.FreePort(t)
	runFor := 8 * time.Second
	agentSpecs := []mosaictest.AgentSpec{
		{Name: "slow edit", RunDuration: &runFor},
		{Name: "failing edit", Outcome: mosaictest.OutcomeFailed},
	}
	e := newE2E(t, mosaictest.Options{WebhookSecret: testenv.WebhookSecret, Agents: agentSpecs},
		nil, httpE2EConfig(addr))
	// newE2E wrote no folders; add two, one per agent.
	agents := e.fake.AgentIDs()
	cfg, _ := os.ReadFile(e.cfg)
	var b strings.Builder
	b.Write(cfg)
	for i, name := range []string{"main", "broken"} {
		for _, d := range []string{"in/" + name, "out/" + name} {
			if err := os.MkdirAll(e.path(d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Fprintf(&b, "  - name: %s\n    input: ./in/%s\n    output: ./out/%s\n    agent_id: %s\n",
			name, name, name, agents[i])
	}
	if err := os.WriteFile(e.cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	e.start()
	names := []string{"interview.mov", "b-roll/harbour at dusk.mp4", "teaser.mov"}
	for _, n := range names {
		e.writeFile("main/"+n, testenv.Clip("dashboard "+n))
	}
	e.writeFile("broken/corrupt take.mov", testenv.Clip("dashboard broken"))

	// While the slow runs are on Mosaic and the broken one has failed.
	testenv.WaitFor(t, 30*time.Second, "runs in flight and a failure", func() bool {
		running, failed := 0, 0
		for _, v := range apiJobs(t, addr, "") {
			if v.RunID != "" && v.Status == "active" {
				running++
			}
			if v.Status == "failed" {
				failed++
			}
		}
		return running >= 1 && failed == 1
	})
	url := "http://" + addr + "/"
	dir := artifactDir(t)
	shot := filepath.Join(dir, "dashboard-phone.png")
	chromium(t, bin, "--screenshot="+shot, "--window-size=390,844", "--hide-scrollbars", url)
	if st, err := os.Stat(shot); err != nil || st.Size() < 1000 {
		t.Fatalf("no screenshot at %s (%v)", shot, err)
	}
	t.Logf("phone-width screenshot: %s", shot)
	dom := chromium(t, bin, "--dump-dom", url)
	jobs := apiJobs(t, addr, "")
	if len(jobs) != 4 {
		t.Fatalf("API lists %d jobs, want 4", len(jobs))
	}
	shown := regexp.MustCompile(`data-job="(\d+)" data-status="(\w+)"`).FindAllStringSubmatch(dom, -1)
	if len(shown) < 4 {
		t.Errorf("the page shows %d jobs, want 4:\n%s", len(shown), dom)
	}
	if !strings.Contains(dom, "running on Mosaic") ||
		!strings.Contains(dom, "broken/corrupt take.mov") ||
		!strings.Contains(dom, ">Retry</button>") || !strings.Contains(dom, "not resumed automatically") {
		t.Errorf("the page lacks a running job or the failure with its reason and retry button:\n%s", dom)
	}
	// Once the runs finish, the page shows every main job as done.
	testenv.WaitFor(t, 60*time.Second, "the slow runs to finish", func() bool {
		return len(apiJobs(t, addr, "?folder=main&state=done")) == len(names)
	})
	// The same page by name, as people type it.
	port := addr[strings.LastIndex(addr, ":")+1:]
	dom = chromium(t, bin, "--dump-dom", "http://localhost:"+port+"/")
	for _, v := range apiJobs(t, addr, "") {
		want := fmt.Sprintf(`data-job="%d" data-status="%s"`, v.ID, v.Status)
		if !strings.Contains(dom, want) {
			t.Errorf("the page does not show job %d (%s) as %s", v.ID, v.Path, v.Status)
		}
	}
	if !strings.Contains(dom, `data-state="done" data-count="3"`) {
		t.Error("the folder counts do not show 3 done")
	}
	// DNS rebinding: a name the attacker points at 127.0.0.1 gets no dashboard (and so no form
	// token), though the browser thinks the page is its own.
	rebound := chromium(t, bin, "--host-resolver-rules=MAP rebind.example 127.0.0.1",
		"--dump-dom", "http://rebind.example:"+port+"/")
	if strings.Contains(rebound, "data-job=") || strings.Contains(rebound, `name="csrf"`) ||
		!strings.Contains(rebound, "does not answer to that host name") {
		t.Errorf("the dashboard answered a rebound host name:\n%s", rebound)
	}
	final := filepath.Join(dir, "dashboard-phone-final.png")
	chromium(t, bin, "--screenshot="+final, "--window-size=390,844", "--hide-scrollbars", url)
	t.Logf("phone-width screenshot after the runs: %s", final)
	e.stop()
	if strings.Contains(e.logs.String(), "webhook refused") {
		t.Error("the daemon refused the fake's webhooks")
	}
}
