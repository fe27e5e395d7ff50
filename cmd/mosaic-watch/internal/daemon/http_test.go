package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/httpapi"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/jobview"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// TestHTTPRoutes processes one file, then checks every read route on the real listener.
func TestHTTPRoutes(t *testing.T) {
	e := startHTTPEnv(t, mosaictest.Options{}, "100ms", "")
	e.writeClip("sub/clip.mov", "routes")
	done := e.waitJob("sub/clip.mov", "done")

	// /healthz
	code, body, _ := e.do("GET", "/healthz", nil)
	if code != 200 || !strings.Contains(body, `"ok": true`) {
		t.Errorf("/healthz = %d %s", code, body)
	}

	// /api/jobs and its filters
	if got := e.jobs(""); len(got) != 1 || got[0].ID != done.ID || len(got[0].Outputs) == 0 {
		t.Errorf("/api/jobs = %+v", got)
	}
	if got := e.jobs("?state=failed,attention"); len(got) != 0 {
		t.Errorf("state=failed,attention listed %+v", got)
	}
	if got := e.jobs("?state=done&folder=main&path=sub"); len(got) != 1 {
		t.Errorf("state=done&folder=main&path=sub listed %d jobs", len(got))
	}
	if got := e.jobs("?path=other"); len(got) != 0 {
		t.Errorf("path=other listed %d jobs", len(got))
	}
	if got := e.jobs("?offset=1"); len(got) != 0 {
		t.Errorf("offset=1 listed %d jobs", len(got))
	}
	for _, q := range []string{"?state=bogus", "?folder=nope", "?limit=0", "?limit=x", "?offset=-1"} {
		if code, body, _ := e.do("GET", "/api/jobs"+q, nil); code != 400 {
			t.Errorf("/api/jobs%s = %d %s, want 400", q, code, body)
		}
	}
	// The list shows exactly what `status --json` would show for the job.
	want, _ := e.d.store.Get(context.Background(), done.ID)
	names := jobview.Names(e.cfg.FolderNames())
	wantJSON, _ := json.Marshal(jobview.Of(names, *want))
	gotJSON, _ := json.Marshal(e.jobs("")[0])
	if !bytes.Equal(wantJSON, gotJSON) {
		t.Errorf("/api/jobs item\n got %s\nwant %s", gotJSON, wantJSON)
	}

	// /api/jobs/{id}
	code, body, _ = e.do("GET", fmt.Sprintf("/api/jobs/%d", done.ID), nil)
	var one jobview.Job
	if code != 200 || json.Unmarshal([]byte(body), &one) != nil || one.ID != done.ID ||
		len(one.History) < 5 {
		t.Errorf("/api/jobs/%d = %d %s", done.ID, code, body)
	}
	cli, err := jobview.Histories(context.Background(), e.d.store, names, []store.Job{*want})
	if err != nil || len(cli) != 1 {
		t.Fatalf("status JOB --json: %v", err)
	}
	a, _ := json.Marshal(cli[0])
	b, _ := json.Marshal(one)
	if !bytes.Equal(a, b) {
		t.Errorf("/api/jobs/{id} differs from `status JOB --json`:\n api %s\n cli %s", b, a)
	}
	// Without a form token (and no http.token configured) nothing is retried; TestHTTPAuth
	// retries a done job with the token.
	retryDone := fmt.Sprintf("/api/jobs/%d/retry", done.ID)
	if code, body, _ := e.do("POST", retryDone, nil, "Authorization", "Bearer x"); code != 403 {
		t.Errorf("retry with a bearer header and no token configured = %d %s, want 403", code, body)
	}
	if code, _, _ := e.do("GET", "/api/jobs/99999", nil); code != 404 {
		t.Errorf("/api/jobs/99999 = %d, want 404", code)
	}
	if code, _, _ := e.do("GET", "/api/jobs/abc", nil); code != 400 {
		t.Errorf("/api/jobs/abc = %d, want 400", code)
	}

	// /api/status is `status --json`.
	ov, err := jobview.Load(context.Background(), e.d.store, names, false)
	if err != nil {
		t.Fatal(err)
	}
	cliOv, _ := json.Marshal(ov)
	code, body, _ = e.do("GET", "/api/status", nil)
	if code != 200 || !jsonEqual(t, body, string(cliOv)) {
		t.Errorf("/api/status = %d %s\nwant %s", code, body, cliOv)
	}

	// /metrics
	code, body, _ = e.do("GET", "/metrics", nil)
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, re := range []string{
		`mosaic_watch_jobs\{folder="main",state="done"\} 1\n`,
		`mosaic_watch_jobs\{folder="main",state="failed"\} 0\n`,
		`mosaic_watch_transferred_bytes_total\{direction="upload",folder="main"\} [1-9]`,
		`mosaic_watch_transferred_bytes_total\{direction="download",folder="main"\} [1-9]`,
		`mosaic_watch_api_requests_total\{code="2xx",route="get_run"\} [1-9]`,
		`mosaic_watch_api_requests_total\{code="2xx",route="run_agent"\} 1\n`,
		`mosaic_watch_api_requests_total\{code="2xx",route="upload"\} 1\n`,
		`mosaic_watch_run_duration_seconds_count\{folder="main",status="completed"\} 1\n`,
		`mosaic_watch_folder_healthy\{folder="main"\} 1\n`,
		`mosaic_watch_settle_queue_length 0\n`,
		`mosaic_watch_paused 0\n`,
		`mosaic_watch_credits_balance 2[0-9]{3}\n`,
		`mosaic_watch_agent_shared\{folder="main"\} 0\n`,
		`go_goroutines [1-9]`,
	} {
		if !regexp.MustCompile(re).MatchString(body) {
			t.Errorf("/metrics lacks %s", re)
		}
	}

	// / (the dashboard)
	code, body, hdr := e.do("GET", "/", nil)
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("/ = %d %s", code, hdr.Get("Content-Type"))
	}
	for _, s := range []string{`name="viewport"`, `http-equiv="refresh"`, "main/sub/clip.mov",
		`data-status="done"`,
		`data-state="done" data-count="1"`, "All folders healthy", `id="credits"`} {
		if !strings.Contains(body, s) {
			t.Errorf("dashboard lacks %q", s)
		}
	}
	if strings.Contains(body, "src=") || strings.Contains(body, "<link") {
		t.Error("dashboard loads something from outside the page")
	}
	if code, _, _ := e.do("GET", "/nope", nil); code != 404 {
		t.Errorf("/nope = %d, want 404", code)
	}

	// Nothing shows the API key or signed URL signatures, in bodies or the log.
	for _, p := range []string{"/api/jobs", fmt.Sprintf("/api/jobs/%d", done.ID), "/api/status",
		"/metrics", "/", "/healthz"} {
		_, body, _ := e.do("GET", p, nil)
		testenv.AssertNoSecrets(t, p, body)
	}
	testenv.AssertNoSecrets(t, "daemon log", e.logs.String())
}

func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("decode %s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// TestHTTPHealthReasons: degraded folder, rejected API key and a full disk each turn /healthz
// into 503 with the reason.
func TestHTTPHealthReasons(t *testing.T) {
	e := startHTTPEnv(t, mosaictest.Options{}, "100ms", "")
	// The watcher's first report would overwrite the health this test sets: wait for it.
	waitFirstHealthReport(t, e.d, e.cfg.Folders[0].Input)
	opts := e.d.httpOptions()
	diskFree := httpapi.DiskFree
	opts.DiskFree = func(p string) (uint64, uint64, error) { return diskFree(p) }
	srv := httptest.NewServer(httpapi.New(opts).Handler())
	defer srv.Close()
	get := func() (int, httpapi.HealthReport) {
		code, body, _ := testenv.HTTPDo(t, "GET", srv.URL+"/healthz", nil)
		var rep httpapi.HealthReport
		if err := json.Unmarshal([]byte(body), &rep); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
		return code, rep
	}
	if code, rep := get(); code != 200 || !rep.OK {
		t.Fatalf("healthy daemon: %d %+v", code, rep)
	}

	diskFree = func(p string) (uint64, uint64, error) {
		if p == e.cfg.Folders[0].Output {
			return 10 << 20, 100 << 30, nil // 10 MiB free of 100 GiB
		}
		return 50 << 30, 100 << 30, nil
	}
	code, rep := get()
	if code != 503 || len(rep.Reasons) != 1 ||
		!strings.Contains(rep.Reasons[0], "disk full: "+e.cfg.Folders[0].Output) {
		t.Errorf("full output disk: %d %+v", code, rep)
	}
	// 2% of a small disk: fine
	diskFree = func(string) (uint64, uint64, error) { return 2 << 20, 100 << 20, nil }
	if code, rep := get(); code != 200 {
		t.Errorf("small disk with 2%% free: %d %+v", code, rep)
	}

	// The watcher's first report would overwrite what the test sets.
	waitFirstHealthReport(t, e.d, e.cfg.Folders[0].Input)
	e.d.setHealth(e.cfg.Folders[0].Input, false, "input folder is gone")
	code, rep = get()
	if code != 503 || len(rep.Reasons) != 1 ||
		!strings.Contains(rep.Reasons[0], "folder main degraded: input folder is gone") {
		t.Errorf("degraded folder: %d %+v", code, rep)
	}
	_, metrics, _ := testenv.HTTPDo(t, "GET", srv.URL+"/metrics", nil)
	if !strings.Contains(metrics, `mosaic_watch_folder_healthy{folder="main"} 0`) {
		t.Error("metrics do not show the degraded folder")
	}
	code, page, _ := testenv.HTTPDo(t, "GET", srv.URL+"/", nil)
	if code != 200 || !strings.Contains(page, "input folder is gone") ||
		!strings.Contains(page, "degraded") {
		t.Errorf("dashboard does not show the degraded folder")
	}
	e.d.setHealth(e.cfg.Folders[0].Input, true, "")
	if code, rep := get(); code != 200 {
		t.Errorf("folder back: %d %+v", code, rep)
	}
}

// TestHTTPHealthKeyRejected: a revoked API key pauses work, and /healthz says so.
func TestHTTPHealthKeyRejected(t *testing.T) {
	e := startHTTPEnv(t, mosaictest.Options{APIKeys: []string{"mk_other_key"}}, "100ms", "")
	e.writeClip("a.mov", "rejected")
	var body string
	testenv.WaitFor(t, 30*time.Second, "/healthz to report the rejected key", func() bool {
		var code int
		code, body, _ = e.do("GET", "/healthz", nil)
		return code == 503 && strings.Contains(body, "work paused")
	})
	testenv.AssertNoSecrets(t, "/healthz", body)
	_, metrics, _ := e.do("GET", "/metrics", nil)
	if !strings.Contains(metrics, "mosaic_watch_paused 1") ||
		!regexp.MustCompile(`mosaic_watch_api_requests_total\{code="4xx",route="[a-z_]+"\} [1-9]`).
			MatchString(metrics) {
		t.Error("metrics show neither the pause nor the 4xx answers")
	}
}

// TestHTTPAuth: with http.token set (required for any non-loopback bind), every route but
// /healthz and the webhook needs it, as a bearer token or a Basic password.
func TestHTTPAuth(t *testing.T) {
	const token = "s3cret-token-value"
	e := startHTTPEnv(t, mosaictest.Options{}, "100ms", "http:\n  listen: {{ADDR}}\n  token: "+token)
	guarded := []string{"/", "/metrics", "/api/status", "/api/jobs", "/api/jobs/1"}
	for _, p := range guarded {
		code, body, hdr := e.do("GET", p, nil)
		if code != 401 || hdr.Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s without token = %d", p, code)
		}
		testenv.AssertNoSecrets(t, p, body, token)
		if code, _, _ := e.do("GET", p, nil, "Authorization", "Bearer wrong"); code != 401 {
			t.Errorf("GET %s with a wrong token = %d", p, code)
		}
		prefix := "Bearer " + token[:len(token)-1]
		if code, _, _ := e.do("GET", p, nil, "Authorization", prefix); code != 401 {
			t.Errorf("GET %s with a token prefix = %d", p, code)
		}
		want := 200
		if p == "/api/jobs/1" {
			want = 404 // authorized, and there is no job yet
		}
		if code, _, _ := e.do("GET", p, nil, "Authorization", "Bearer "+token); code != want {
			t.Errorf("GET %s with the token = %d, want %d", p, code, want)
		}
		req, _ := http.NewRequest("GET", e.base+p, nil)
		req.SetBasicAuth("anyone", token)
		basic := req.Header.Get("Authorization")
		if code, _, _ := e.do("GET", p, nil, "Authorization", basic); code != want {
			t.Errorf("GET %s with Basic auth = %d, want %d", p, code, want)
		}
	}
	if code, _, _ := e.do("POST", "/api/jobs/1/retry", nil); code != 401 {
		t.Errorf("POST retry without token = %d", code)
	}
	// A script with the token needs no form token; a finished job has nothing to retry.
	e.writeClip("a.mov", "auth")
	var done jobview.Job
	testenv.WaitFor(t, 30*time.Second, "a.mov to be done", func() bool {
		jobs := e.jobs("", "Authorization", "Bearer "+token)
		if len(jobs) == 1 {
			done = jobs[0]
		}
		return done.Status == store.StatusDone
	})
	retry := fmt.Sprintf("/api/jobs/%d/retry", done.ID)
	if code, body, _ := e.do("POST", retry, nil, "Authorization", "Bearer "+token); code != 409 {
		t.Errorf("retry of a done job with the token = %d %s, want 409", code, body)
	}
	if code, _, _ := e.do("GET", "/healthz", nil); code != 200 {
		t.Errorf("/healthz without token = %d, want 200", code)
	}
	if code, _, _ := e.do("POST", "/webhooks/mosaic",
		strings.NewReader(`{"flag":"TEST","run_id":"test"}`)); code != 404 {
		t.Errorf("webhook with no webhook.secret configured = %d, want 404 (the route is off)", code)
	}
	testenv.AssertNoSecrets(t, "daemon log", e.logs.String(), token)
}

// TestHTTPRetry: the dashboard's retry button needs the page's form token and the same origin;
// scripts use the bearer token. Retrying a job that is not failed is a conflict.
func TestHTTPRetry(t *testing.T) {
	failed := mosaictest.OutcomeFailed
	failing := []mosaictest.AgentSpec{{Name: "failing", Outcome: failed}}
	e := startHTTPEnv(t, mosaictest.Options{Agents: failing}, "100ms", "")
	e.writeClip("bad.mov", "retry")
	j := e.waitJob("bad.mov", "failed")
	runs := len(e.fake.Runs())

	_, page, _ := e.do("GET", "/", nil)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, fmt.Sprintf(`action="/api/jobs/%d/retry"`, j.ID)) {
		t.Fatalf("dashboard has no retry form for job %d", j.ID)
	}
	csrf := m[1]
	path := fmt.Sprintf("/api/jobs/%d/retry", j.ID)
	form := func(v string) io.Reader { return strings.NewReader(url.Values{"csrf": {v}}.Encode()) }
	ct := "Content-Type"
	fct := "application/x-www-form-urlencoded"
	if code, _, _ := e.do("POST", path, form(""), ct, fct); code != 403 {
		t.Errorf("retry without form token = %d, want 403", code)
	}
	if code, _, _ := e.do("POST", path, form("wrong"), ct, fct); code != 403 {
		t.Errorf("retry with a wrong form token = %d, want 403", code)
	}
	evil := "http://evil.example"
	if code, _, _ := e.do("POST", path, form(csrf), ct, fct, "Origin", evil); code != 403 {
		t.Errorf("cross-origin retry = %d, want 403", code)
	}
	site := "Sec-Fetch-Site"
	if code, _, _ := e.do("POST", path, form(csrf), ct, fct, site, "cross-site"); code != 403 {
		t.Errorf("cross-site retry = %d, want 403", code)
	}
	if code, _, _ := e.do("GET", path, nil); code != 405 {
		t.Errorf("GET retry = %d, want 405", code)
	}
	if got, _ := e.d.store.Get(context.Background(), j.ID); got.Status != store.StatusFailed {
		t.Fatalf("a refused retry changed the job to %s", got.Status)
	}
	code, _, hdr := e.do("POST", path, form(csrf), ct, fct,
		"Origin", e.base, "Sec-Fetch-Site", "same-origin")
	if code != 303 || !strings.HasPrefix(hdr.Get("Location"), "/") {
		t.Fatalf("dashboard retry = %d (Location %q), want 303", code, hdr.Get("Location"))
	}
	// A retry resumes the failed run on Mosaic: no new run is billed.
	testenv.WaitFor(t, 30*time.Second, "the retried run to be resumed and fail again",
		func() bool {
			got, _ := e.d.store.Get(context.Background(), j.ID)
			return e.fake.Stats().Resumes == 1 && got.Status == store.StatusFailed
		})
	if n := len(e.fake.Runs()); n != runs {
		t.Fatalf("the retry started %d new run(s); it must resume the failed one", n-runs)
	}
	// With no http.token configured a bearer header proves nothing: the form token is needed.
	if code, body, _ := e.do("POST", path, nil, "Authorization", "Bearer x"); code != 403 {
		t.Errorf("API retry with a bearer header and no token configured = %d %s", code, body)
	}
	// A script may send the form token as a header and gets JSON back; new_run=1 asks for a new
	// (billed) run.
	code, body, _ := e.do("POST", path+"?new_run=1", nil, "X-CSRF-Token", csrf)
	if code != 200 || !strings.Contains(body, "new run") {
		t.Errorf("API retry with a new run = %d %s", code, body)
	}
	testenv.WaitFor(t, 30*time.Second, "the new run",
		func() bool { return len(e.fake.Runs()) == runs+1 })
	e.waitJob("bad.mov", "failed")
	missing := "/api/jobs/99999/retry"
	if code, _, _ := e.do("POST", missing, nil, "X-CSRF-Token", csrf); code != 404 {
		t.Errorf("retry of a missing job = %d, want 404", code)
	}
}

// A job whose run is unknown is not retried by the dashboard's Retry button: it offers a page
// that shows the candidate runs and asks before it starts a new, billed run.
func TestHTTPNewRunNeedsConfirmation(t *testing.T) {
	failing := []mosaictest.AgentSpec{{Name: "failing", Outcome: mosaictest.OutcomeFailed}}
	e := startHTTPEnv(t, mosaictest.Options{Agents: failing}, "100ms", "")
	e.writeClip("lost.mov", "unknown start")
	j := e.waitJob("lost.mov", "failed")
	ctx := context.Background()
	// Make it what an ambiguous lost start leaves behind.
	stuck, _ := e.d.store.Get(ctx, j.ID)
	stuck.Step, stuck.Status, stuck.RunID = store.StepStartingRun, store.StatusAttention, ""
	stuck.RunStatus, stuck.RunMessage = "start_lost", "candidate runs: run-a, run-b"
	stuck.LastError = "could not tell whether Mosaic started a run (candidate runs: run-a, run-b)"
	if err := e.d.store.Save(ctx, stuck, "test: ambiguous start"); err != nil {
		t.Fatal(err)
	}
	runs := len(e.fake.Runs())
	_, page, _ := e.do("GET", "/", nil)
	link := fmt.Sprintf(`href="/jobs/%d/new-run"`, j.ID)
	retry := fmt.Sprintf(`action="/api/jobs/%d/retry"`, j.ID)
	if !strings.Contains(page, link) || strings.Contains(page, retry) {
		t.Fatalf("dashboard: want a new-run link and no plain retry for job %d", j.ID)
	}
	path := fmt.Sprintf("/api/jobs/%d/retry", j.ID)
	code, confirm, _ := e.do("GET", fmt.Sprintf("/jobs/%d/new-run", j.ID), nil)
	if code != 200 || !strings.Contains(confirm, "run-a, run-b") ||
		!strings.Contains(confirm, "bills one") || !strings.Contains(confirm, `name="new_run"`) {
		t.Fatalf("confirmation page = %d:\n%s", code, confirm)
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(confirm)
	if code, body, _ := e.do("POST", path, nil, "X-CSRF-Token", m[1]); code != 409 ||
		!strings.Contains(body, "--new-run") {
		t.Fatalf("plain retry of an unknown start = %d %s, want 409 naming --new-run", code, body)
	}
	form := strings.NewReader(url.Values{"csrf": {m[1]}, "new_run": {"1"}}.Encode())
	code, _, _ = e.do("POST", path, form, "Content-Type", "application/x-www-form-urlencoded",
		"Origin", e.base)
	if code != 303 {
		t.Fatalf("confirmed new run = %d, want 303", code)
	}
	testenv.WaitFor(t, 30*time.Second, "the new run",
		func() bool { return len(e.fake.Runs()) == runs+1 })
}

// Another client's run of the agent, listed beside ours after a lost answer: the job waits for a
// person, and the dashboard and /metrics say that the agent is shared.
func TestHTTPSharedAgentIsShown(t *testing.T) {
	var fake *mosaictest.Server
	var once sync.Once
	e := startHTTPEnv(t, mosaictest.Options{RunStartHook: func(agent string) {
		once.Do(func() { _, _ = fake.StartForeignRun(agent, mosaictest.ForeignRun{}) })
	}}, "100ms", "")
	fake = e.fake
	e.fake.InjectFault(mosaictest.RouteRunAgent,
		mosaictest.Fault{Kind: mosaictest.FaultLoseResponse, Count: 1})
	e.writeClip("ours.mov", "shared agent")
	j := e.waitJob("ours.mov", "attention")
	if !j.NeedsNewRun || !strings.Contains(j.Error, "candidate runs") {
		t.Fatalf("job: %+v", j)
	}
	_, page, _ := e.do("GET", "/", nil)
	if !strings.Contains(page, `id="shared"`) || !strings.Contains(page, e.fake.AgentIDs()[0]) {
		t.Error("the dashboard does not say the agent is shared")
	}
	_, metrics, _ := e.do("GET", "/metrics", nil)
	if !strings.Contains(metrics, `mosaic_watch_agent_shared{folder="main"} 1`) {
		t.Error("/metrics does not say the agent is shared")
	}
}
