package daemon

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// TestHTTPWebhookSignature: with webhook.secret set, X-Mosaic-Signature must equal it.
func TestHTTPWebhookSignature(t *testing.T) {
	e := startHTTPEnv(t, mosaictest.Options{}, "100ms", "webhook:\n  secret: "+testenv.WebhookSecret)
	const path = "/webhooks/mosaic"
	body := func() *strings.Reader {
		return strings.NewReader(`{"flag":"TEST","run_id":"test","message":"hello"}`)
	}
	sig := "X-Mosaic-Signature"
	for name, hdr := range map[string][]string{
		"no header":    nil,
		"wrong":        {sig, "whsk_wrong"},
		"prefix":       {sig, testenv.WebhookSecret[:len(testenv.WebhookSecret)-1]},
		"longer":       {sig, testenv.WebhookSecret + "x"},
		"other header": {"X-Webhook-Secret", testenv.WebhookSecret},
	} {
		code, resp, _ := e.do("POST", path, body(), hdr...)
		if code != 401 {
			t.Errorf("%s: %d %s, want 401", name, code, resp)
		}
		testenv.AssertNoSecrets(t, name, resp, testenv.WebhookSecret)
	}
	code, resp, _ := e.do("POST", path, body(), sig, testenv.WebhookSecret)
	if code != 200 || !strings.Contains(resp, `"received": true`) {
		t.Errorf("good signature: %d %s", code, resp)
	}
	if code, _, _ := e.do("POST", path, strings.NewReader("{not json"), sig,
		testenv.WebhookSecret); code != 400 {
		t.Errorf("invalid JSON: %d, want 400", code)
	}
	huge := `{"flag":"RUN_PROGRESS","pad":"` + strings.Repeat("x", 2<<20) + `"}`
	if code, _, _ := e.do("POST", path, strings.NewReader(huge), sig,
		testenv.WebhookSecret); code != 413 {
		t.Errorf("2 MiB body: %d, want 413", code)
	}
	if code, _, _ := e.do("GET", path, nil); code != 405 {
		t.Errorf("GET webhook: %d, want 405", code)
	}
	for _, b := range []string{
		`{"flag":"RUN_FINISHED","run_id":"not-ours","status":"completed"}`, // unknown run: harmless
		`{"flag":"OUTPUTS_FINISHED","run_id":"x"}`,                         // retired flag: ignored
		`{"event":"agent_run.completed","agent_run_id":"y"}`,               // oldest shape
	} {
		if code, resp, _ := e.do("POST", path, strings.NewReader(b), sig,
			testenv.WebhookSecret); code != 200 {
			t.Errorf("%s: %d %s", b, code, resp)
		}
	}
	_, metrics, _ := e.do("GET", "/metrics", nil)
	for _, re := range []string{
		`mosaic_watch_webhooks_total\{flag="",result="unauthorized"\} 5\n`,
		`mosaic_watch_webhooks_total\{flag="TEST",result="accepted"\} 1\n`,
		`mosaic_watch_webhooks_total\{flag="RUN_FINISHED",result="unknown_run"\} 2\n`,
		`mosaic_watch_webhooks_total\{flag="other",result="ignored"\} 1\n`,
	} {
		if !regexp.MustCompile(re).MatchString(metrics) {
			t.Errorf("/metrics lacks %s", re)
		}
	}
	testenv.AssertNoSecrets(t, "daemon log", e.logs.String(), testenv.WebhookSecret)
}

// TestHTTPWebhookDuplicatesOutOfOrder: with a 1-minute poll interval, the fake's RUN_FINISHED
// makes the outputs land at once; duplicated and late (out of order) deliveries change nothing.
func TestHTTPWebhookDuplicatesOutOfOrder(t *testing.T) {
	e := startHTTPEnv(t, mosaictest.Options{
		ManualRuns:    true,
		WebhookSecret: testenv.WebhookSecret,
		Webhooks:      mosaictest.WebhookKnobs{Duplicate: true, OutOfOrder: true, Progress: true},
	}, "1m", "webhook:\n  secret: "+testenv.WebhookSecret+"\n  public_url: "+
		"http://{{ADDR}}/webhooks/mosaic")
	agent := e.fake.AgentIDs()[0]
	src := e.writeClip("a.mov", "webhooks")
	run := testenv.WaitRunStarted(t, e.jobs, "a.mov")
	if runs := e.fake.Runs(); len(runs) != 1 ||
		runs[0].CallbackURL != "http://"+strings.TrimPrefix(e.base, "http://")+"/webhooks/mosaic" {
		t.Fatalf("runs = %+v, want one with our callback_url", runs)
	}
	finished := time.Now()
	if err := e.fake.FinishRun(run, ""); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(e.dir, "out", "main", "a.mp4")
	testenv.WaitFor(t, 10*time.Second, "the output",
		func() bool { _, err := os.Stat(out); return err == nil })
	t.Logf("output landed %s after RUN_FINISHED (poll interval 1m)",
		time.Since(finished).Round(time.Millisecond))
	e.waitJob("a.mov", "done")
	// RUN_FINISHED x2, then the held RUN_STARTED and RUN_PROGRESS, each twice.
	testenv.WaitFor(t, 10*time.Second, "all 6 deliveries",
		func() bool { return e.fake.Stats().WebhooksDelivered == 6 })
	got, err := os.ReadFile(out)
	want := mosaictest.OutputBytes(agent, testenv.ShaHex(src), 0, len(got))
	if err != nil || string(got) != string(want) {
		t.Fatalf("output content wrong (%v)", err)
	}
	jobs := e.jobs("")
	if len(jobs) != 1 || jobs[0].Status != store.StatusDone || len(e.fake.Runs()) != 1 {
		t.Fatalf("after late deliveries: jobs %+v, %d runs", jobs, len(e.fake.Runs()))
	}
	_, metrics, _ := e.do("GET", "/metrics", nil)
	for _, re := range []string{
		`mosaic_watch_webhooks_total\{flag="RUN_FINISHED",result="accepted"\} 1\n`,
		`mosaic_watch_webhooks_total\{flag="RUN_FINISHED",result="duplicate"\} 1\n`,
		`mosaic_watch_webhooks_total\{flag="RUN_STARTED",result="accepted"\} 2\n`,
		`mosaic_watch_webhooks_total\{flag="RUN_PROGRESS",result="accepted"\} 2\n`,
	} {
		if !regexp.MustCompile(re).MatchString(metrics) {
			t.Errorf("/metrics lacks %s", re)
		}
	}
	hist, err := e.d.store.History(context.Background(), jobs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	finishes := 0
	for _, ev := range hist {
		if strings.HasPrefix(ev.Message, "run completed") {
			finishes++
		}
	}
	if finishes != 1 {
		t.Errorf("history records the run's end %d times, want 1: %+v", finishes, hist)
	}
}
