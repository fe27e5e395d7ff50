package mosaic_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
)

// TestOnResponseSeesEveryAttempt: the hook is called once per attempt, with the status (0 for a
// network error), and leaves the call's outcome alone.
func TestOnResponseSeesEveryAttempt(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"run_id":"r1","status":"running"}`))
	}))
	defer srv.Close()
	hook := func(op string, status int, took time.Duration) {
		if took < 0 {
			t.Errorf("negative duration %v", took)
		}
		mu.Lock()
		seen = append(seen, op+" "+http.StatusText(status))
		mu.Unlock()
	}
	c, err := mosaic.New(mosaic.Options{BaseURL: srv.URL, APIKey: "mk_x", RetryBaseDelay: time.Millisecond, OnResponse: hook})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	run, err := c.GetRun(context.Background(), "r1")
	if err != nil || run.Status != "running" {
		t.Fatalf("GetRun = %+v, %v; want the second attempt's answer", run, err)
	}
	want := []string{"get run Service Unavailable", "get run OK"}
	mu.Lock()
	got := slices.Clone(seen)
	mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("hook saw %q, want %q", got, want)
	}

	// A refused connection is reported with status 0.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var codes []int
	c2, err := mosaic.New(mosaic.Options{BaseURL: "http://" + addr, APIKey: "mk_x", MaxRetries: -1,
		OnResponse: func(_ string, status int, _ time.Duration) { codes = append(codes, status) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.GetRun(context.Background(), "r1"); err == nil {
		t.Fatal("GetRun against a closed port succeeded")
	}
	if !slices.Equal(codes, []int{0}) {
		t.Fatalf("codes = %v, want [0]", codes)
	}
}
