package pipeline_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// A gateway between us and Mosaic (a corporate proxy, a load balancer) keeps its own clock,
// often this machine's. Here Mosaic's clock is 3 minutes ahead; the gateway passes the first run
// start on to Mosaic, which creates the run, but answers 504 itself, dated by its own clock. The
// run must be found and adopted, not started a second time: a gateway's Date says nothing about
// the clock that stamps runs.
func TestGatewayDateDoesNotMoveMosaicsClock(t *testing.T) {
	h := newHarness(t, harnessOpts{fake: func(o *mosaictest.Options) { o.ClockOffset = 3 * time.Minute }})
	h.stop()
	target, err := url.Parse(h.fake.RootURL())
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	var timedOut atomic.Int32
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/run") && timedOut.Add(1) == 1 {
			rp.ServeHTTP(httptest.NewRecorder(), r) // Mosaic creates the run; its answer is lost
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusGatewayTimeout) // net/http dates it with the gateway's clock
			w.Write([]byte("<html><body>504 Gateway Time-out</body></html>"))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(gateway.Close)
	client, err := mosaic.New(mosaic.Options{BaseURL: gateway.URL + "/api", APIKey: mosaictest.DefaultAPIKey,
		RetryBaseDelay: 5 * time.Millisecond, MaxRetries: 2})
	if err != nil {
		t.Fatal(err)
	}
	h.client = client
	h.start(nil)

	src := video("through the gateway")
	h.drop("clip.mp4", src)
	j := h.waitClosed("clip.mp4")
	if timedOut.Load() == 0 {
		t.Fatal("the gateway never saw a run start")
	}
	if n := h.runsFor(src); n != 1 {
		t.Fatalf("%d runs billed for one file (job %s %q)", n, j.Status, j.LastError)
	}
	if j.Status != store.StatusDone {
		t.Fatalf("job %s %q", j.Status, j.LastError)
	}
}
