package mosaictest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFaults(t *testing.T) {
	s := newFake(t, Options{})
	agentID := s.AddAgent(AgentSpec{})
	who := s.URL() + "/whoami"

	t.Run("status", func(t *testing.T) {
		s.InjectFault(RouteWhoAmI, Fault{Kind: FaultStatus, Count: 1})
		s.InjectFault(RouteWhoAmI, Fault{Kind: FaultStatus, Status: 500, Count: 1})
		if st, m := call(t, "GET", who, nil); st != 503 || m["error"] == nil {
			t.Fatalf("first: %d %v", st, m)
		}
		if st, _ := call(t, "GET", who, nil); st != 500 {
			t.Fatalf("second: %d", st)
		}
		if st, _ := call(t, "GET", who, nil); st != 200 {
			t.Fatalf("after count: %d", st)
		}
	})
	t.Run("rate limit", func(t *testing.T) {
		s.InjectFault(RouteGetAgent, Fault{Kind: FaultRateLimit, RetryAfter: 1500 * time.Millisecond, Count: 1})
		s.InjectFault(RouteGetAgent, Fault{Kind: FaultRateLimit, Count: 1})
		for _, want := range []string{"2", ""} {
			resp, err := authGet(t, s.URL()+"/agent/"+agentID)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != want {
				t.Fatalf("429: %d Retry-After %q want %q", resp.StatusCode, resp.Header.Get("Retry-After"), want)
			}
		}
	})
	t.Run("drop", func(t *testing.T) {
		s.InjectFault(RouteWhoAmI, Fault{Kind: FaultDrop, Count: 1})
		if _, err := authGet(t, who); err == nil {
			t.Fatal("dropped request succeeded")
		}
	})
	t.Run("slow", func(t *testing.T) {
		s.InjectFault(RouteWhoAmI, Fault{Kind: FaultSlow, Delay: 20 * time.Millisecond, Count: 1})
		if st, _ := call(t, "GET", who, nil); st != 200 {
			t.Fatalf("slow: %d", st)
		}
		// The delay honours the request context.
		s.InjectFault(RouteWhoAmI, Fault{Kind: FaultSlow, Delay: time.Hour, Count: 1})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", who, nil)
		req.Header.Set("Authorization", "Bearer "+DefaultAPIKey)
		if resp, err := testHTTP.Do(req); err == nil {
			resp.Body.Close()
			t.Fatal("slow request did not time out")
		}
		waitFor(t, "server saw the cancel", func() bool { return s.Stats().Requests["GET whoami canceled"] == 1 })
	})
	t.Run("lose response", func(t *testing.T) {
		vid, _ := uploadContent(t, s, "lose")
		before := len(s.Runs())
		s.InjectFault(RouteRunAgent, Fault{Kind: FaultLoseResponse, Count: 1})
		req, _ := http.NewRequest("POST", s.URL()+"/agent/"+agentID+"/run", strings.NewReader(`{"video_ids":["`+vid+`"]}`))
		req.Header.Set("Authorization", "Bearer "+DefaultAPIKey)
		if resp, err := testHTTP.Do(req); err == nil {
			resp.Body.Close()
			t.Fatal("lost response arrived")
		}
		if n := len(s.Runs()); n != before+1 {
			t.Fatalf("runs %d, want %d: the run must exist", n, before+1)
		}
		if s.Stats().Requests["POST run_agent lost"] != 1 {
			t.Fatalf("requests %v", s.RequestKeys())
		}
	})
	t.Run("not uploaded", func(t *testing.T) {
		u := getUploadURL(t, s)
		ct, body := formBody(t, append(issuedParts(u.fields), part{"file", "x"}))
		if st, _ := postForm(t, u.url, ct, body); st != 204 {
			t.Fatal(st)
		}
		s.InjectFault(RouteFinalize, Fault{Kind: FaultNotUploaded, Count: 2})
		fin := s.URL() + "/uploads/video/finalize_upload"
		for i, want := range []int{400, 400, 200} {
			st, m := call(t, "POST", fin, map[string]string{"video_id": u.videoID})
			if st != want {
				t.Fatalf("finalize #%d: %d %v", i, st, m)
			}
			if st == 400 {
				wantErrBody(t, m, "validation_error", "File not uploaded")
			}
		}
	})
	t.Run("expired storage and download", func(t *testing.T) {
		u := getUploadURL(t, s)
		ct, body := formBody(t, append(issuedParts(u.fields), part{"file", "x"}))
		s.InjectFault(RouteStorage, Fault{Kind: FaultExpired, Count: 1})
		if st, b := postForm(t, u.url, ct, body); st != 403 || !strings.Contains(b, "<Code>ExpiredToken</Code>") {
			t.Fatalf("storage: %d %s", st, b)
		}
		vid, _ := uploadContent(t, s, "expired")
		runID := startRun(t, s, agentID, map[string]any{"video_ids": []string{vid}})
		link := getRun(t, s, runID)["outputs"].([]any)[0].(map[string]any)["video_url"].(string)
		s.InjectFault(RouteDownload, Fault{Kind: FaultExpired, Count: 1})
		if st, b := callRaw(t, "GET", link, "", nil); st != 403 || !strings.Contains(string(b), "ExpiredToken") {
			t.Fatalf("download: %d %s", st, b)
		}
		if st, _ := callRaw(t, "GET", link, "", nil); st != 200 {
			t.Fatalf("download after fault: %d", st)
		}
	})
	t.Run("route any and probability", func(t *testing.T) {
		// Kinds that do not apply to a route are skipped there.
		s.InjectFault(RouteAny, Fault{Kind: FaultExpired, Probability: 1})
		if st, _ := call(t, "GET", who, nil); st != 200 {
			t.Fatalf("expired fault hit whoami: %d", st)
		}
		s.ClearFaults()
		s.InjectFault(RouteAny, Fault{Kind: FaultStatus, Status: 502, Probability: 1})
		for _, u := range []string{who, s.URL() + "/agents", s.URL() + "/agent_runs"} {
			if st, _ := call(t, "GET", u, nil); st != 502 {
				t.Fatalf("%s: %d", u, st)
			}
		}
		s.ClearFaults()
		if st, _ := call(t, "GET", who, nil); st != 200 {
			t.Fatalf("after ClearFaults: %d", st)
		}
	})
}

func TestFaultProbabilityIsSeeded(t *testing.T) {
	pattern := func() string {
		s := newFake(t, Options{Seed: 42})
		s.InjectFault(RouteWhoAmI, Fault{Kind: FaultStatus, Probability: 0.5})
		var b strings.Builder
		for range 40 {
			st, _ := call(t, "GET", s.URL()+"/whoami", nil)
			if st == 503 {
				b.WriteByte('x')
			} else {
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	p1, p2 := pattern(), pattern()
	if p1 != p2 || !strings.Contains(p1, "x") || !strings.Contains(p1, ".") {
		t.Fatalf("patterns %s / %s", p1, p2)
	}
}

func authGet(t *testing.T, u string) (*http.Response, error) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+DefaultAPIKey)
	return testHTTP.Do(req)
}
