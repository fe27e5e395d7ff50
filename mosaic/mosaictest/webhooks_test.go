package mosaictest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// hookReceiver records webhook deliveries; it fails the first failN requests with 500.
type hookReceiver struct {
	mu     sync.Mutex
	got    []map[string]any
	sigs   []string
	ctypes []string
	failN  int
	srv    *httptest.Server
}

func newReceiver(t *testing.T, failN int) *hookReceiver {
	h := &hookReceiver{failN: failN}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.failN > 0 {
			h.failN--
			w.WriteHeader(500)
			return
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		h.got = append(h.got, m)
		h.sigs = append(h.sigs, r.Header.Get("X-Mosaic-Signature"))
		h.ctypes = append(h.ctypes, r.Header.Get("Content-Type"))
		_, _ = w.Write([]byte(`{"received":true}`))
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) flags() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, m := range h.got {
		out = append(out, str(m["flag"]))
	}
	return out
}

func (h *hookReceiver) count() int { return len(h.flags()) }

func TestWebhooksDelivered(t *testing.T) {
	s := newFake(t, Options{ManualRuns: true, WebhookSecret: "whsk_secret", WebhookRetryDelay: time.Millisecond})
	agentID := s.AddAgent(AgentSpec{Outputs: 2})
	vid, _ := uploadContent(t, s, "hooks")
	rc := newReceiver(t, 2) // the first two attempts fail: retried
	runID := startRun(t, s, agentID, map[string]any{"video_ids": []string{vid}, "callback_url": rc.srv.URL + "/hook"})
	waitFor(t, "RUN_STARTED", func() bool { return rc.count() == 1 })
	if err := s.FinishRun(runID, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "RUN_FINISHED", func() bool { return rc.count() == 2 })
	waitFor(t, "delivery stats", func() bool { return s.Stats().WebhooksDelivered == 2 })
	rc.mu.Lock()
	defer rc.mu.Unlock()
	start, fin := rc.got[0], rc.got[1]
	if start["flag"] != "RUN_STARTED" || start["status"] != "running" || start["run_id"] != runID || start["agent_id"] != agentID {
		t.Fatalf("RUN_STARTED: %v", start)
	}
	if v, ok := start["triggered_by"]; !ok || v != nil {
		t.Fatalf("triggered_by: %v", start)
	}
	if fin["flag"] != "RUN_FINISHED" || fin["status"] != "completed" || len(fin["outputs"].([]any)) != 2 || fin["needs_credits"] != false || fin["errors"] == nil {
		t.Fatalf("RUN_FINISHED: %v", fin)
	}
	for i := range rc.sigs {
		if rc.sigs[i] != "whsk_secret" || rc.ctypes[i] != "application/json" {
			t.Fatalf("headers %q %q", rc.sigs[i], rc.ctypes[i])
		}
	}
	if st := s.Stats(); st.WebhooksFailed != 0 {
		t.Fatalf("webhook stats %+v", st)
	}
}

func TestWebhookKnobs(t *testing.T) {
	s := newFake(t, Options{ManualRuns: true, WebhookRetryDelay: time.Millisecond})
	agentID := s.AddAgent(AgentSpec{})
	vid, _ := uploadContent(t, s, "knobs")
	run := func(rc *hookReceiver) {
		t.Helper()
		id := startRun(t, s, agentID, map[string]any{"video_ids": []string{vid}, "callback_url": rc.srv.URL})
		if err := s.FinishRun(id, ""); err != nil {
			t.Fatal(err)
		}
	}

	s.SetWebhookKnobs(WebhookKnobs{Duplicate: true, Progress: true})
	dup := newReceiver(t, 0)
	run(dup)
	waitFor(t, "duplicates", func() bool { return dup.count() == 6 })
	if f := dup.flags(); f[0] != "RUN_STARTED" || f[1] != "RUN_STARTED" || f[2] != "RUN_PROGRESS" || f[5] != "RUN_FINISHED" {
		t.Fatalf("duplicate order %v", f)
	}

	s.SetWebhookKnobs(WebhookKnobs{OutOfOrder: true})
	ooo := newReceiver(t, 0)
	run(ooo)
	waitFor(t, "out of order", func() bool { return ooo.count() == 2 })
	if f := ooo.flags(); f[0] != "RUN_FINISHED" || f[1] != "RUN_STARTED" {
		t.Fatalf("out of order %v", f)
	}

	// Drop: nothing arrives; prove it by delivering a later run to another receiver.
	s.SetWebhookKnobs(WebhookKnobs{Drop: true})
	dropped := newReceiver(t, 0)
	run(dropped)
	s.SetWebhookKnobs(WebhookKnobs{})
	marker := newReceiver(t, 0)
	run(marker)
	waitFor(t, "marker", func() bool { return marker.count() == 2 })
	if dropped.count() != 0 {
		t.Fatalf("dropped webhooks delivered: %v", dropped.flags())
	}

	// Always failing receiver: 1 + 3 retries, then given up.
	failing := newReceiver(t, 1000)
	id := startRun(t, s, agentID, map[string]any{"video_ids": []string{vid}, "callback_url": failing.srv.URL})
	_ = id
	waitFor(t, "give up", func() bool { return s.Stats().WebhooksFailed == 1 })
	failing.mu.Lock()
	left := failing.failN
	failing.mu.Unlock()
	if left != 1000-4 {
		t.Fatalf("attempts = %d, want 4", 1000-left)
	}

	// Non-loopback callbacks are refused, never contacted.
	startRun(t, s, agentID, map[string]any{"video_ids": []string{vid}, "callback_url": "http://example.com/hook"})
	if st := s.Stats(); st.WebhooksRefused != 1 {
		t.Fatalf("refused = %d", st.WebhooksRefused)
	}
}

func TestWebhookWithRunDuration(t *testing.T) {
	// Runs finish on their own (background clock) and send RUN_FINISHED without anyone polling.
	s := newFake(t, Options{RunDuration: 10 * time.Millisecond})
	agentID := s.AddAgent(AgentSpec{Outcome: OutcomeNeedsCredits})
	vid, _ := uploadContent(t, s, "timer")
	rc := newReceiver(t, 0)
	startRun(t, s, agentID, map[string]any{"video_ids": []string{vid}, "callback_url": rc.srv.URL})
	waitFor(t, "RUN_FINISHED", func() bool { return rc.count() == 2 })
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if fin := rc.got[1]; fin["status"] != "failed" || fin["needs_credits"] != true || fin["status_message"] != "Insufficient credits" {
		t.Fatalf("RUN_FINISHED %v", fin)
	}
}
