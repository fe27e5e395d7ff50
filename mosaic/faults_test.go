package mosaic_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

// startRunEnv is a fake with one agent and one finalized video, ready for RunAgent.
func startRunEnv(t *testing.T, tweak ...func(*mosaic.Options)) (*env, string, string) {
	t.Helper()
	e := setup(t, mosaictest.Options{ManualRuns: true, Agents: []mosaictest.AgentSpec{{}}}, tweak...)
	videoID := e.uploadBytes(t, context.Background(), mosaic.UploadsAPI, "a.mp4", []byte("run me"))
	return e, e.fake.AgentIDs()[0], videoID
}

func TestRunAgentOutcome(t *testing.T) {
	cases := []struct {
		name        string
		fault       *mosaictest.Fault
		ctxTimeout  time.Duration
		agent       string // "" => the fake's agent
		body        func(videoID string) mosaic.RunRequest
		unknown     bool
		runsCreated int
		retryable   bool
	}{
		{name: "5xx", fault: &mosaictest.Fault{Kind: mosaictest.FaultStatus, Status: 503, Count: 1}, unknown: true, retryable: true},
		{name: "500", fault: &mosaictest.Fault{Kind: mosaictest.FaultStatus, Status: 500, Count: 1}, unknown: true, retryable: true},
		{name: "drop", fault: &mosaictest.Fault{Kind: mosaictest.FaultDrop, Count: 1}, unknown: true, retryable: true},
		{name: "lose response", fault: &mosaictest.Fault{Kind: mosaictest.FaultLoseResponse, Count: 1}, unknown: true, runsCreated: 1, retryable: true},
		{name: "rate limit", fault: &mosaictest.Fault{Kind: mosaictest.FaultRateLimit, RetryAfter: 2 * time.Second, Count: 1}, unknown: false, retryable: true},
		// The fake's slow handler notices the client leaving only after Delay (it does not read the
		// body first), so keep Delay short: the test waits for the fake to count the request.
		{name: "slow vs client deadline", fault: &mosaictest.Fault{Kind: mosaictest.FaultSlow, Delay: time.Second, Count: 1},
			ctxTimeout: 150 * time.Millisecond, unknown: true, retryable: true},
		{name: "400 bad input", body: func(string) mosaic.RunRequest {
			return mosaic.RunRequest{VideoIDs: []string{"00000000-0000-4000-8000-00000000dead"}}
		}},
		{name: "400 bad update_params", body: func(v string) mosaic.RunRequest {
			return mosaic.RunRequest{VideoIDs: []string{v}, UpdateParams: map[string]map[string]any{"not-a-node": {"x": 1}}}
		}},
		{name: "404 agent", agent: "no-such-agent"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, agentID, videoID := startRunEnv(t, func(o *mosaic.Options) { o.MaxRetries = 3 })
			if tc.fault != nil {
				e.fake.InjectFault(mosaictest.RouteRunAgent, *tc.fault)
			}
			if tc.agent != "" {
				agentID = tc.agent
			}
			req := mosaic.RunRequest{VideoIDs: []string{videoID}}
			if tc.body != nil {
				req = tc.body(videoID)
			}
			ctx := context.Background()
			if tc.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
				defer cancel()
			}
			runID, err := e.client.RunAgent(ctx, agentID, req)
			if err == nil {
				t.Fatalf("RunAgent succeeded with run %s", runID)
			}
			if got := mosaic.OutcomeUnknown(err); got != tc.unknown {
				t.Errorf("OutcomeUnknown = %v, want %v (err %v)", got, tc.unknown, err)
			}
			if got := mosaic.IsRetryable(err); got != tc.retryable {
				t.Errorf("IsRetryable = %v, want %v (err %v)", got, tc.retryable, err)
			}
			if mosaic.IsCanceled(err) {
				t.Errorf("IsCanceled for %v", err)
			}
			if got := e.fake.Stats().RunsCreated; got != tc.runsCreated {
				t.Errorf("runs created = %d, want %d", got, tc.runsCreated)
			}
			// Never retried: the fake saw exactly one run request (counted when its handler ends).
			runRequests := func() int {
				total := 0
				for k, v := range e.fake.Stats().Requests {
					if strings.HasPrefix(k, "POST run_agent ") && !strings.HasSuffix(k, "xx") {
						total += v
					}
				}
				return total
			}
			waitUntil(t, "the fake to count the run request", func() bool { return runRequests() >= 1 })
			if got := runRequests(); got != 1 {
				t.Errorf("run requests = %d, want 1: %v", got, e.fake.RequestKeys())
			}
			assertNoSecrets(t, "error", err.Error())
		})
	}
}

func TestRunAgentRateLimitCarriesRetryAfter(t *testing.T) {
	e, agentID, videoID := startRunEnv(t)
	e.fake.InjectFault(mosaictest.RouteRunAgent, mosaictest.Fault{Kind: mosaictest.FaultRateLimit, RetryAfter: 3 * time.Second, Count: 1})
	_, err := e.client.RunAgent(context.Background(), agentID, mosaic.RunRequest{VideoIDs: []string{videoID}})
	if d, ok := mosaic.RetryAfter(err); !ok || d != 3*time.Second {
		t.Errorf("RetryAfter = %v %v (err %v)", d, ok, err)
	}
	if mosaic.IsPermanent(err) || mosaic.OutcomeUnknown(err) || mosaic.IsTransfer(err) {
		t.Errorf("429 classification: %v", err)
	}
}

// A 429 from storage concerns that one transfer: callers must be able to tell it from the API's.
func TestStorageRateLimitIsATransferError(t *testing.T) {
	e := setup(t, mosaictest.Options{})
	ctx := context.Background()
	tg, err := e.client.GetUploadURL(ctx, mosaic.UploadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	e.fake.InjectFault(mosaictest.RouteStorage, mosaictest.Fault{Kind: mosaictest.FaultRateLimit, RetryAfter: 86400 * time.Second, Count: 1})
	err = e.client.Upload(ctx, tg, mosaic.UploadFile{Name: "a.mp4", Size: 3, Body: strings.NewReader("abc")}, nil)
	if d, ok := mosaic.RetryAfter(err); !ok || d != 86400*time.Second || !mosaic.IsTransfer(err) || !mosaic.IsRetryable(err) {
		t.Fatalf("storage 429: RetryAfter %v %v, IsTransfer %v: %v", d, ok, mosaic.IsTransfer(err), err)
	}
}

func TestRunAgentDialRefusedIsKnown(t *testing.T) {
	c, _ := newClient(t, closedPortURL(t)+basePath)
	_, err := c.RunAgent(context.Background(), "agent", mosaic.RunRequest{VideoIDs: []string{"v"}})
	var ne *mosaic.NetError
	if !errors.As(err, &ne) || ne.Sent {
		t.Fatalf("err = %#v", err)
	}
	if mosaic.OutcomeUnknown(err) || !mosaic.IsRetryable(err) || mosaic.IsCanceled(err) {
		t.Errorf("dial refused classification: %v", err)
	}
}

func TestRunAgentCancelBeforeAndAfterSend(t *testing.T) {
	e, agentID, videoID := startRunEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.client.RunAgent(ctx, agentID, mosaic.RunRequest{VideoIDs: []string{videoID}})
	if !mosaic.IsCanceled(err) || !errors.Is(err, context.Canceled) || mosaic.OutcomeUnknown(err) || mosaic.IsRetryable(err) {
		t.Errorf("cancel before send: %v", err)
	}

	// Cancel while the server sits on the fully written request: unknown.
	received := make(chan struct{})
	srv := newLocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		drain(r.Body)
		close(received)
		<-r.Context().Done()
	}))
	c, _ := newClient(t, srv.URL+basePath)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-received
		cancel()
	}()
	_, err = c.RunAgent(ctx, agentID, mosaic.RunRequest{VideoIDs: []string{videoID}})
	if !mosaic.IsCanceled(err) || !errors.Is(err, context.Canceled) || !mosaic.OutcomeUnknown(err) {
		t.Errorf("cancel after send: %v (unknown=%v)", err, mosaic.OutcomeUnknown(err))
	}
}

func TestRetriesOn5xxThenSucceeds(t *testing.T) {
	e, agentID, videoID := startRunEnv(t)
	runID, err := e.client.RunAgent(context.Background(), agentID, mosaic.RunRequest{VideoIDs: []string{videoID}})
	if err != nil {
		t.Fatal(err)
	}
	e.fake.InjectFault(mosaictest.RouteGetRun, mosaictest.Fault{Kind: mosaictest.FaultStatus, Status: 502, Count: 2})
	e.fake.InjectFault(mosaictest.RouteGetRun, mosaictest.Fault{Kind: mosaictest.FaultDrop, Count: 1})
	r, err := e.client.GetRun(context.Background(), runID)
	if err != nil || r.ID != runID {
		t.Fatalf("GetRun after faults: %v", err)
	}
	if e.requests("GET get_run 502") != 2 || e.requests("GET get_run drop") != 1 || e.requests("GET get_run 200") != 1 {
		t.Errorf("requests %v", e.fake.RequestKeys())
	}
}

func TestRetryGivesUpAfterMaxRetries(t *testing.T) {
	e := setup(t, mosaictest.Options{}, func(o *mosaic.Options) { o.MaxRetries = 2 })
	e.fake.InjectFault(mosaictest.RouteWhoAmI, mosaictest.Fault{Kind: mosaictest.FaultStatus, Status: 500, Count: 10})
	_, err := e.client.WhoAmI(context.Background())
	if !mosaic.IsRetryable(err) || mosaic.IsPermanent(err) {
		t.Errorf("err = %v", err)
	}
	if got := e.requests("GET whoami 500"); got != 3 {
		t.Errorf("attempts = %d, want 3", got)
	}
	e2 := setup(t, mosaictest.Options{}, func(o *mosaic.Options) { o.MaxRetries = -1 })
	e2.fake.InjectFault(mosaictest.RouteWhoAmI, mosaictest.Fault{Kind: mosaictest.FaultStatus, Status: 500, Count: 10})
	_, _ = e2.client.WhoAmI(context.Background())
	if got := e2.requests("GET whoami 500"); got != 1 {
		t.Errorf("MaxRetries<0: attempts = %d, want 1", got)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	e := setup(t, mosaictest.Options{}, func(o *mosaic.Options) { o.MaxRetryDelay = 5 * time.Second })
	e.fake.InjectFault(mosaictest.RouteWhoAmI, mosaictest.Fault{Kind: mosaictest.FaultRateLimit, RetryAfter: time.Second, Count: 1})
	start := time.Now()
	if _, err := e.client.WhoAmI(context.Background()); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Errorf("retried after %v, Retry-After was 1s", el)
	}
	if e.requests("GET whoami 429") != 1 || e.requests("GET whoami 200") != 1 {
		t.Errorf("requests %v", e.fake.RequestKeys())
	}
}

func TestRetryAfterCapped(t *testing.T) {
	e := setup(t, mosaictest.Options{}, func(o *mosaic.Options) { o.MaxRetryDelay = 100 * time.Millisecond })
	e.fake.InjectFault(mosaictest.RouteWhoAmI, mosaictest.Fault{Kind: mosaictest.FaultRateLimit, RetryAfter: time.Hour, Count: 1})
	start := time.Now()
	if _, err := e.client.WhoAmI(context.Background()); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("waited %v despite MaxRetryDelay 100ms", el)
	}
}

// Retry-After as an HTTP date, from a plain handler.
func TestRetryAfterHTTPDate(t *testing.T) {
	calls := 0
	srv := newLocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls == 1 {
			w.Header().Set("Retry-After", time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat))
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"organization_name":"A"}`))
	}))
	c, _ := newClient(t, srv.URL, func(o *mosaic.Options) { o.MaxRetryDelay = 5 * time.Second })
	start := time.Now()
	if _, err := c.WhoAmI(context.Background()); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Errorf("retried after %v; Retry-After date was ~2s ahead", el)
	}
}

func TestCancelStopsRetryWait(t *testing.T) {
	e := setup(t, mosaictest.Options{}, func(o *mosaic.Options) { o.MaxRetryDelay = time.Minute })
	e.fake.InjectFault(mosaictest.RouteWhoAmI, mosaictest.Fault{Kind: mosaictest.FaultRateLimit, RetryAfter: 30 * time.Second, Count: 1})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := e.client.WhoAmI(ctx)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("cancel took %v", el)
	}
	if !mosaic.IsCanceled(err) || !errors.Is(err, context.Canceled) || mosaic.IsRetryable(err) {
		t.Errorf("err = %v", err)
	}
}

// The client's own per-attempt timeout is a retryable timeout, not a cancellation.
func TestAttemptTimeoutIsRetryableNotCanceled(t *testing.T) {
	e := setup(t, mosaictest.Options{}, func(o *mosaic.Options) {
		o.RequestTimeout = 100 * time.Millisecond
		o.MaxRetries = 1
	})
	e.fake.InjectFault(mosaictest.RouteWhoAmI, mosaictest.Fault{Kind: mosaictest.FaultSlow, Delay: 3 * time.Second, Count: 1})
	if _, err := e.client.WhoAmI(context.Background()); err != nil {
		t.Fatalf("retry after a slow attempt failed: %v", err)
	}
	e.fake.InjectFault(mosaictest.RouteWhoAmI, mosaictest.Fault{Kind: mosaictest.FaultSlow, Delay: 3 * time.Second, Count: 2})
	_, err := e.client.WhoAmI(context.Background())
	var ne *mosaic.NetError
	if !errors.As(err, &ne) || !ne.Timeout || mosaic.IsCanceled(err) || errors.Is(err, context.Canceled) ||
		!mosaic.IsRetryable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout classification: %v", err)
	}
}

func TestErrorBodiesOverHTTP(t *testing.T) {
	cases := []struct {
		status       int
		ctype, body  string
		code, detail string
	}{
		{502, "text/html", "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", "", "502 Bad Gateway"},
		{422, "application/json", `{"detail":[{"loc":["body","video_ids"],"msg":"field required"}]}`, "", "video_ids: field required"},
		{500, "", "", "", "Internal Server Error"},
		{409, "application/json", `{"detail":"Run is not failed or cancelled"}`, "", "Run is not failed or cancelled"},
		{403, "application/json", `{"error":"forbidden","detail":"key mk_test_0123456789abcdef lacks agent_runs:write"}`, "forbidden", "key [REDACTED] lacks agent_runs:write"},
	}
	for _, tc := range cases {
		srv := newLocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.ctype != "" {
				w.Header().Set("Content-Type", tc.ctype)
			}
			w.WriteHeader(tc.status)
			_, _ = w.Write([]byte(tc.body))
		}))
		c, _ := newClient(t, srv.URL+basePath, func(o *mosaic.Options) { o.MaxRetries = -1 })
		err := c.CancelRun(context.Background(), "r1")
		var ae *mosaic.APIError
		if !errors.As(err, &ae) || ae.StatusCode != tc.status || ae.Code != tc.code || ae.Detail != tc.detail || ae.Op != "cancel run" || ae.Method != "POST" {
			t.Errorf("%d: %#v", tc.status, err)
			continue
		}
		assertNoSecrets(t, "error", err.Error())
		if tc.status == 403 && !mosaic.IsAuth(err) {
			t.Errorf("403 from the API is not IsAuth")
		}
	}
}

// Network errors never show the signed query (net/http's *url.Error would).
func TestNetErrorRedactsURL(t *testing.T) {
	c, _ := newClient(t, closedPortURL(t)+basePath)
	_, err := c.Download(context.Background(), closedPortURL(t)+"/download/x?expires=1&sig=deadbeef", discard{}, mosaic.DownloadOptions{})
	if err == nil {
		t.Fatal("download from a closed port succeeded")
	}
	assertNoSecrets(t, "download error", err.Error())
	var ue interface{ URL() string }
	if errors.As(err, &ue) {
		t.Errorf("a *url.Error-like value is still in the chain")
	}
	if !mosaic.IsRetryable(err) {
		t.Errorf("dial refused not retryable: %v", err)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
