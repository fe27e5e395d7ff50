package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/httpapi"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// csrfOf is the form token the dashboard page carries.
func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("the dashboard carries no form token")
	}
	return m[1]
}

// TestHTTPForeignHostRefused: DNS rebinding. A page on attacker.example whose name now resolves
// to 127.0.0.1 is "same origin" for the browser, so only the Host header tells it apart; on the
// loopback listener such requests are refused before routing, with or without a Bearer header,
// and no run is billed. A Bearer header without a configured token grants nothing.
func TestHTTPForeignHostRefused(t *testing.T) {
	failing := []mosaictest.AgentSpec{{Name: "failing", Outcome: mosaictest.OutcomeFailed}}
	e := startHTTPEnv(t, mosaictest.Options{Agents: failing}, "100ms", "")
	e.writeClip("bad.mov", "foreign host")
	j := e.waitJob("bad.mov", "failed")
	billed := e.fake.Stats().RunsCreated
	_, page, _ := e.do("GET", "/", nil)
	csrf := csrfOf(t, page)
	port := e.base[strings.LastIndex(e.base, ":")+1:]
	retry := fmt.Sprintf("/api/jobs/%d/retry", j.ID)
	form := func() io.Reader { return strings.NewReader(url.Values{"csrf": {csrf}}.Encode()) }
	const ct, fct = "Content-Type", "application/x-www-form-urlencoded"

	for _, host := range []string{"attacker.example:" + port, "attacker.example",
		"localhost.attacker.example:" + port, "127.0.0.1.nip.io:" + port, "127.0.0.2.example"} {
		origin := "http://" + host
		for _, c := range []struct {
			method, path string
			body         func() io.Reader
			hdr          []string
		}{
			{"GET", "/api/jobs", nil, nil},
			{"GET", "/api/jobs", nil, []string{"Authorization", "Bearer x"}},
			{"GET", fmt.Sprintf("/api/jobs/%d", j.ID), nil, []string{"Authorization", "Bearer x"}},
			{"GET", "/", nil, nil},
			{"GET", "/healthz", nil, nil},
			{"GET", "/metrics", nil, nil},
			{"POST", retry, nil, []string{"Authorization", "Bearer x"}},
			// What the rebinding page's own form would send: the browser thinks it is same-origin.
			{"POST", retry, form, []string{ct, fct, "Origin", origin, "Sec-Fetch-Site", "same-origin"}},
			{"POST", retry, form, []string{ct, fct, "Authorization", "Bearer x", "Origin", origin}},
		} {
			var body io.Reader
			if c.body != nil {
				body = c.body()
			}
			code, resp, _ := e.do(c.method, c.path, body, append([]string{"Host", host}, c.hdr...)...)
			if code != 421 {
				t.Errorf("%s %s with Host %s %v = %d %s, want 421", c.method, c.path, host, c.hdr,
					code, resp)
			}
			if strings.Contains(resp, "bad.mov") {
				t.Errorf("%s %s with Host %s shows the job: %s", c.method, c.path, host, resp)
			}
		}
	}
	// A bearer header is a credential only when http.token is set: here it grants nothing.
	if code, resp, _ := e.do("POST", retry, nil, "Authorization", "Bearer x"); code != 403 {
		t.Errorf("retry with Bearer x and no token configured = %d %s, want 403", code, resp)
	}
	if got, _ := e.d.store.Get(context.Background(), j.ID); got.Status != store.StatusFailed {
		t.Fatalf("a refused retry changed the job to %s", got.Status)
	}
	if got := e.fake.Stats().RunsCreated; got != billed {
		t.Fatalf("refused requests started %d run(s)", got-billed)
	}

	// Loopback names and addresses, with or without the port, in any case.
	for _, host := range []string{"127.0.0.1:" + port, "127.0.0.1", "localhost:" + port, "localhost",
		"LocalHost:" + port, "[::1]:" + port, "[::1]"} {
		if code, resp, _ := e.do("GET", "/api/jobs", nil, "Host", host); code != 200 {
			t.Errorf("GET /api/jobs with Host %s = %d %s, want 200", host, code, resp)
		}
	}
	// The dashboard's own retry still works, and resumes the run exactly once: the counters
	// above could have seen a refused retry.
	code, _, _ := e.do("POST", retry, form(), ct, fct, "Host", "localhost:"+port,
		"Origin", "http://localhost:"+port, "Sec-Fetch-Site", "same-origin")
	if code != 303 {
		t.Fatalf("dashboard retry as localhost = %d, want 303", code)
	}
	// A retry resumes the failed run (issue 10): Mosaic bills no new run for it.
	testenv.WaitFor(t, 30*time.Second, "the retried run to be resumed", func() bool {
		got, _ := e.d.store.Get(context.Background(), j.ID)
		return e.fake.Stats().Resumes == 1 && got.Status == store.StatusFailed
	})
	if got := e.fake.Stats().RunsCreated; got != billed {
		t.Fatalf("the retry started %d new run(s); it must resume the failed one", got-billed)
	}
}

// TestHTTPAllowedHosts: http.allowed_hosts adds names (a reverse proxy's) to the loopback ones;
// on a listener other machines can reach, the list narrows which names are accepted, and
// without it the token alone guards.
func TestHTTPAllowedHosts(t *testing.T) {
	const token = "allowed-hosts-token"
	e := startHTTPEnv(t, mosaictest.Options{}, "100ms", "http:\n  listen: {{ADDR}}\n  token: "+
		token+"\n  allowed_hosts: [watch.example.com, 192.0.2.7]")
	auth := []string{"Authorization", "Bearer " + token}
	for host, want := range map[string]int{
		"watch.example.com": 200, "WATCH.example.com:443": 200, "192.0.2.7:8787": 200,
		"localhost": 200, "other.example.com": 421, "example.com": 421, "watch.example.com.evil": 421,
	} {
		if code, resp, _ := e.do("GET", "/api/jobs", nil, append(auth, "Host", host)...); code != want {
			t.Errorf("Host %s = %d %s, want %d", host, code, resp, want)
		}
	}

	// A non-loopback listener, simulated on 127.0.0.1 (see TestHTTPHealthAnonymous).
	serve := func(allowed ...string) *httptest.Server {
		opts := e.d.httpOptions()
		opts.Exposed, opts.AllowedHosts = true, allowed
		srv := httptest.NewServer(httpapi.New(opts).Handler())
		t.Cleanup(srv.Close)
		return srv
	}
	open := serve()
	for _, host := range []string{"nas.local:8787", "192.0.2.9", "anything.example"} {
		if code, _, _ := testenv.HTTPDo(t, "GET", open.URL+"/api/jobs", nil, "Host", host); code != 401 {
			t.Errorf("exposed, no allowed_hosts, Host %s without token = %d, want 401", host, code)
		}
		code, _, _ := testenv.HTTPDo(t, "GET", open.URL+"/api/jobs", nil, append(auth, "Host", host)...)
		if code != 200 {
			t.Errorf("exposed, no allowed_hosts, Host %s with token = %d, want 200", host, code)
		}
	}
	narrow := serve("nas.local")
	for host, want := range map[string]int{"nas.local:8787": 200, "127.0.0.1": 200,
		"192.0.2.9": 421, "attacker.example": 421} {
		code, _, _ := testenv.HTTPDo(t, "GET", narrow.URL+"/api/jobs", nil, append(auth, "Host", host)...)
		if code != want {
			t.Errorf("exposed, allowed_hosts [nas.local], Host %s = %d, want %d", host, code, want)
		}
	}
}

// getRuns counts the GET /agent_run/{id} requests the fake answered.
func getRuns(f *mosaictest.Server) int {
	n := 0
	for k, v := range f.Stats().Requests {
		if strings.HasPrefix(k, "GET "+string(mosaictest.RouteGetRun)+" ") && strings.HasSuffix(k, "xx") {
			n += v
		}
	}
	return n
}

// TestHTTPForgedWebhooks: 300 forged webhooks while two runs are active (no secret configured:
// 404; wrong signature: 401; right signature but run ids that are not ours: 200) cost at most 5
// GET /agent_run calls in all, counted at the fake (before: 170 to 230 here, one poll round per
// unknown run id; the issue saw 600).
func TestHTTPForgedWebhooks(t *testing.T) {
	e := startHTTPEnv(t, mosaictest.Options{ManualRuns: true, WebhookSecret: testenv.WebhookSecret},
		"1m", "webhook:\n  secret: "+testenv.WebhookSecret+"\n  public_url: "+
			"http://{{ADDR}}/webhooks/mosaic")
	e.writeClip("a.mov", "forged a")
	e.writeClip("b.mov", "forged b")
	e.writeClip("c.mov", "forged c")
	runA := testenv.WaitRunStarted(t, e.jobs, "a.mov")
	testenv.WaitRunStarted(t, e.jobs, "b.mov")
	runC := testenv.WaitRunStarted(t, e.jobs, "c.mov")
	// Let the poll rounds the run starts woke happen first (each records a run's progress, and
	// that wakes one more round), then finish c: once it is done, the poller is idle and two
	// runs are active.
	testenv.WaitFor(t, 10*time.Second, "every run polled once", func() bool {
		for _, v := range e.jobs("") {
			j, err := e.d.store.Get(context.Background(), v.ID)
			if err != nil || j.RunMessage == "" {
				return false
			}
		}
		return true
	})
	if err := e.fake.FinishRun(runC, ""); err != nil {
		t.Fatal(err)
	}
	e.waitJob("c.mov", "done")
	before := getRuns(e.fake)

	// The same daemon's HTTP surface without webhook.secret.
	opts := e.d.httpOptions()
	opts.WebhookSecret = ""
	noSecret := httptest.NewServer(httpapi.New(opts).Handler())
	defer noSecret.Close()
	finished := func(run string) io.Reader {
		return strings.NewReader(`{"flag":"RUN_FINISHED","run_id":"` + run + `","status":"completed"}`)
	}
	sig := "X-Mosaic-Signature"
	answers := map[string]int{} // "case code" -> count
	for i := range 100 {
		forged := fmt.Sprintf("run-forged-%d", i)
		code, _, _ := testenv.HTTPDo(t, "POST", noSecret.URL+"/webhooks/mosaic", finished(forged))
		answers[fmt.Sprint("no secret configured ", code)]++
		code, _, _ = e.do("POST", "/webhooks/mosaic", finished(runA), sig, "whsk_guess")
		answers[fmt.Sprint("wrong signature ", code)]++
		code, _, _ = e.do("POST", "/webhooks/mosaic", finished(forged), sig, testenv.WebhookSecret)
		answers[fmt.Sprint("signed, run not ours ", code)]++
	}
	for _, want := range []string{"no secret configured 404", "wrong signature 401",
		"signed, run not ours 200"} {
		if answers[want] != 100 {
			t.Errorf("answers %v, want 100 x %q", answers, want)
		}
	}
	if got, _ := e.d.store.Get(context.Background(), e.jobs("?path=a.mov")[0].ID); got.Status !=
		store.StatusActive {
		t.Fatalf("a forged webhook changed job a.mov to %s", got.Status)
	}
	// A real RUN_FINISHED still makes its outputs land at once (poll interval 1m); by then any
	// poll round the forgeries woke would have run.
	if err := e.fake.FinishRun(runA, ""); err != nil {
		t.Fatal(err)
	}
	e.waitJob("a.mov", "done")
	extra := getRuns(e.fake) - before
	t.Logf("300 forged webhooks + 1 real RUN_FINISHED: %d GET /agent_run calls "+
		"(2 runs active, poll interval 1m)", extra)
	if extra > 5 {
		t.Errorf("%d GET /agent_run calls, want at most 5", extra)
	}
	_, metrics, _ := e.do("GET", "/metrics", nil)
	for _, re := range []string{
		`mosaic_watch_webhooks_total\{flag="",result="unauthorized"\} 100\n`,
		`mosaic_watch_webhooks_total\{flag="RUN_FINISHED",result="unknown_run"\} 100\n`,
		`mosaic_watch_webhooks_total\{flag="RUN_FINISHED",result="accepted"\} 2\n`, // c and a
	} {
		if !regexp.MustCompile(re).MatchString(metrics) {
			t.Errorf("/metrics lacks %s", re)
		}
	}
}

// pausedWork is the pipeline with a pause whose reason names a run.
type pausedWork struct {
	httpapi.Work
	why string
}

func (w pausedWork) Paused() string { return w.why }

// brokenDB is the store whose health probe fails with a message naming its file.
type brokenDB struct {
	httpapi.Jobs
	err error
}

func (b brokenDB) GetMeta(context.Context, string) (string, error) { return "", b.err }

// TestHTTPHealthAnonymous: /healthz tells a caller without the token only "ok" or "degraded";
// the reasons (folder paths, run ids, error text) need the token.
//
// "Non-loopback" is simulated: the daemon derives httpapi.Options.Exposed from http.listen, and
// the test sets it on a server that still listens on 127.0.0.1, so nothing listens on a
// reachable address. The real listener (loopback, with a token) is checked as well: once a token
// is configured it guards the details everywhere.
func TestHTTPHealthAnonymous(t *testing.T) {
	const token = "health-token-value"
	e := startHTTPEnv(t, mosaictest.Options{}, "100ms", "http:\n  listen: {{ADDR}}\n  token: "+token)
	auth := []string{"Authorization", "Bearer " + token}
	input, output := e.cfg.Folders[0].Input, e.cfg.Folders[0].Output
	const runID = "run_7f3c9a1e5b"
	dbErr := fmt.Errorf("ping %s/state/mosaic-watch.db: database disk image is malformed", e.dir)
	opts := e.d.httpOptions()
	opts.Exposed = true
	opts.Work = pausedWork{Work: opts.Work, why: "Mosaic answered 429 to GET /agent_run/" + runID}
	opts.Jobs = brokenDB{Jobs: opts.Jobs, err: dbErr}
	opts.DiskFree = func(p string) (uint64, uint64, error) {
		if p == output {
			return 1 << 20, 100 << 30, nil
		}
		return 50 << 30, 100 << 30, nil
	}
	exposed := httptest.NewServer(httpapi.New(opts).Handler())
	defer exposed.Close()
	waitFirstHealthReport(t, e.d, input)
	e.d.setHealth(input, false, "cannot read "+input+": permission denied")

	secrets := []string{e.dir, input, output, "main", runID, "malformed", "permission denied",
		"429", "disk"}
	for name, base := range map[string]string{"exposed": exposed.URL, "loopback+token": e.base} {
		code, body, _ := testenv.HTTPDo(t, "GET", base+"/healthz", nil)
		var got map[string]any
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%s: decode %s: %v", name, body, err)
		}
		if code != 503 || len(got) != 2 || got["ok"] != false || got["status"] != "degraded" {
			t.Errorf("%s: anonymous /healthz = %d %s, want 503 {ok: false, status: degraded}",
				name, code, body)
		}
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("%s: anonymous /healthz shows %q: %s", name, s, body)
			}
		}
		// With the token: the reasons.
		code, body, _ = testenv.HTTPDo(t, "GET", base+"/healthz", nil, auth...)
		if code != 503 || !strings.Contains(body, "permission denied") ||
			!strings.Contains(body, `"status": "degraded"`) {
			t.Errorf("%s: /healthz with the token = %d %s, want the reasons", name, code, body)
		}
	}
	_, body, _ := testenv.HTTPDo(t, "GET", exposed.URL+"/healthz", nil, auth...)
	var rep httpapi.HealthReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	reasons := strings.Join(rep.Reasons, "\n") // decoded: a Windows path's \ is one character
	for _, s := range []string{runID, "malformed", "disk full: " + output} {
		if !strings.Contains(reasons, s) {
			t.Errorf("exposed /healthz with the token lacks %q: %s", s, body)
		}
	}

	e.d.setHealth(input, true, "")
	code, body, _ := e.do("GET", "/healthz", nil)
	if code != 200 || strings.Join(strings.Fields(body), "") != `{"ok":true,"status":"ok"}` {
		t.Errorf("healthy, anonymous: %d %s", code, body)
	}
}

// TestHTTPMetricsLabels: after a file went through (and its webhooks arrived), no label value on
// /metrics holds a path, a file name or a run id: labels are folder names and fixed words.
func TestHTTPMetricsLabels(t *testing.T) {
	e := startHTTPEnv(t, mosaictest.Options{WebhookSecret: testenv.WebhookSecret}, "100ms",
		"webhook:\n  secret: "+testenv.WebhookSecret+"\n  public_url: http://{{ADDR}}/webhooks/mosaic")
	e.writeClip("deep/Harbour_Interview-take7.mov", "metric labels")
	done := e.waitJob("deep/Harbour_Interview-take7.mov", "done")
	sig := "X-Mosaic-Signature"
	for _, b := range []string{
		`{"flag":"RUN_FINISHED","run_id":"` + done.RunID + `"}`,
		`{"flag":"RUN_FINISHED","run_id":"run-not-ours-31337"}`,
		`{"flag":"/etc/passwd","run_id":"x"}`,
	} {
		if code, _, _ := e.do("POST", "/webhooks/mosaic", strings.NewReader(b), sig,
			testenv.WebhookSecret); code != 200 {
			t.Fatalf("webhook %s = %d", b, code)
		}
	}
	_, metrics, _ := e.do("GET", "/metrics", nil)
	labels := regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`).FindAllStringSubmatch(metrics, -1)
	if len(labels) < 20 || !strings.Contains(metrics, `folder="main"`) {
		t.Fatalf("found only %d labels on /metrics:\n%s", len(labels), metrics)
	}
	forbidden := []string{e.dir, e.cfg.Folders[0].Input, e.cfg.Folders[0].Output, e.cfg.StateDir,
		"Harbour", "take7", "deep", done.RunID, "run-not-ours", "passwd"}
	for _, out := range done.Outputs {
		forbidden = append(forbidden, out)
	}
	for _, m := range labels {
		for _, f := range forbidden {
			if f != "" && strings.Contains(m[2], f) {
				t.Errorf("label %s=%q contains %q", m[1], m[2], f)
			}
		}
	}
	t.Logf("%d label values checked", len(labels))
}
