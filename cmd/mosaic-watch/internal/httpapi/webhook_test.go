package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/pipeline"
)

// runOwners is the store as the webhook sees it: which run ids our jobs hold.
type runOwners struct {
	Jobs    // nil: any other call panics
	mu      sync.Mutex
	ours    map[string]bool
	lookups int
	err     error
}

func (o *runOwners) RunIDTaken(_ context.Context, id string) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lookups++
	return o.ours[id], o.err
}

// wakeCounter is the pipeline as the webhook sees it.
type wakeCounter struct {
	mu    sync.Mutex
	wakes int
}

func (w *wakeCounter) Paused() string                        { return "" }
func (w *wakeCounter) Progress() map[int64]pipeline.Progress { return nil }

func (w *wakeCounter) WakePoller() {
	w.mu.Lock()
	w.wakes++
	w.mu.Unlock()
}

func (w *wakeCounter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wakes
}

const testSecret = "whsk_unit_secret"

func webhookServer(t *testing.T, secret string, owners *runOwners) (
	*httptest.Server, *wakeCounter) {
	t.Helper()
	work := &wakeCounter{}
	s := New(Options{WebhookSecret: secret, Jobs: owners, Work: work})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { srv.Close(); s.wakes.Close() })
	return srv, work
}

func postHook(t *testing.T, url, sig, body string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url+webhookPath, strings.NewReader(body))
	if sig != "" {
		req.Header.Set("X-Mosaic-Signature", sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func finishedBody(run string) string {
	return fmt.Sprintf(`{"flag":"RUN_FINISHED","run_id":%q,"status":"completed"}`, run)
}

// TestWebhookOnlyOurRunsWake: a wrong signature is refused before the store is asked; a signed
// RUN_FINISHED wakes the poller only for a run one of our jobs holds, once per run.
func TestWebhookOnlyOurRunsWake(t *testing.T) {
	owners := &runOwners{ours: map[string]bool{"run-ours": true, "run-ours-2": true}}
	srv, work := webhookServer(t, testSecret, owners)
	for i := range 200 {
		if code := postHook(t, srv.URL, "whsk_wrong", finishedBody("run-ours")); code != 401 {
			t.Fatalf("wrong signature = %d, want 401", code)
		}
		if code := postHook(t, srv.URL, "", finishedBody("run-ours")); code != 401 {
			t.Fatalf("no signature = %d, want 401", code)
		}
		if code := postHook(t, srv.URL, testSecret,
			finishedBody(fmt.Sprint("run-forged-", i))); code != 200 {
			t.Fatalf("signed, unknown run = %d, want 200", code)
		}
	}
	if owners.lookups != 200 || work.count() != 0 {
		t.Fatalf("after forgeries: %d store lookups (want 200: none for wrong signatures), "+
			"%d wake-ups (want 0)", owners.lookups, work.count())
	}
	for range 3 { // delivered, then replayed
		if code := postHook(t, srv.URL, testSecret, finishedBody("run-ours")); code != 200 {
			t.Fatalf("signed, our run = %d", code)
		}
	}
	if work.count() != 1 {
		t.Fatalf("our run finished (and replayed twice): %d wake-ups, want 1", work.count())
	}
	// A second run within the second: its wake-up is held, not lost.
	if code := postHook(t, srv.URL, testSecret, finishedBody("run-ours-2")); code != 200 {
		t.Fatalf("signed, our second run = %d", code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for work.count() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the held wake-up never came (%d wake-ups)", work.count())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The store failing: Mosaic is asked to deliver again, nothing is woken.
	owners.mu.Lock()
	owners.err = errors.New("database is locked")
	owners.mu.Unlock()
	if code := postHook(t, srv.URL, testSecret, finishedBody("run-ours-3")); code != 503 {
		t.Fatalf("store error = %d, want 503", code)
	}
}

// TestWebhookRouteNeedsSecret: without webhook.secret the route is not served at all.
func TestWebhookRouteNeedsSecret(t *testing.T) {
	owners := &runOwners{ours: map[string]bool{"run-ours": true}}
	srv, work := webhookServer(t, "", owners)
	for _, sig := range []string{"", "anything"} {
		if code := postHook(t, srv.URL, sig, finishedBody("run-ours")); code != 404 {
			t.Errorf("no secret configured, signature %q = %d, want 404", sig, code)
		}
	}
	if owners.lookups != 0 || work.count() != 0 {
		t.Errorf("%d lookups, %d wake-ups; want none", owners.lookups, work.count())
	}
}
