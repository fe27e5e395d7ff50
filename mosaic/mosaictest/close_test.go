package mosaictest

import (
	"runtime"
	"testing"
	"time"
)

// TestCloseStopsEverything checks Close ends the server, the clock loop and
// webhook goroutines that are mid-retry.
func TestCloseStopsEverything(t *testing.T) {
	testHTTP.CloseIdleConnections()
	before := runtime.NumGoroutine()
	s, err := NewServer(Options{ManualRuns: true, WebhookRetryDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t, 1000)
	agentID := s.AddAgent(AgentSpec{})
	vid, _ := uploadContent(t, s, "close")
	startRun(t, s, agentID, map[string]any{"video_ids": []string{vid}, "callback_url": rc.srv.URL})
	waitFor(t, "first failed attempt", func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return rc.failN < 1000
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	rc.srv.Close()
	testHTTP.CloseIdleConnections()
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
	if _, err := authGet(t, s.URL()+"/whoami"); err == nil {
		t.Fatal("server still answering after Close")
	}
}
