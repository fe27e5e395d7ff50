package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/httpapi"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/jobview"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

// httpEnv is an in-process daemon (New, then Run, with its HTTP listener) against the fake
// Mosaic, so the race detector sees the handlers next to the pipeline.
type httpEnv struct {
	t    *testing.T
	fake *mosaictest.Server
	dir  string
	cfg  *config.Config
	d    *Daemon
	base string // http://127.0.0.1:PORT
	logs *testenv.SyncBuffer
}

// startHTTPEnv starts the fake and the daemon with folder "main" (agent: the fake's first agent).
// extra is more top-level YAML; "{{ADDR}}" in it is replaced by the listen address. pollInterval
// is mosaic.poll_interval.
func startHTTPEnv(t *testing.T, fo mosaictest.Options, pollInterval, extra string) *httpEnv {
	t.Helper()
	return startHTTPEnvWith(t, fo, pollInterval, extra, nil)
}

// startHTTPEnvWith is startHTTPEnv; before (optional) runs on the test folder (in/main exists)
// before the daemon starts.
func startHTTPEnvWith(t *testing.T, fo mosaictest.Options, pollInterval, extra string,
	before func(dir string)) *httpEnv {
	t.Helper()
	fake := testenv.StartFake(t, fo)
	e := &httpEnv{t: t, fake: fake, dir: t.TempDir(), logs: &testenv.SyncBuffer{}}
	addr := testenv.FreePort(t)
	e.base = "http://" + addr
	for _, d := range []string{"in/main", "out/main"} {
		if err := os.MkdirAll(filepath.Join(e.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	body := fmt.Sprintf(`mosaic:
  base_url: %s
  api_key: ${TEST_MOSAIC_KEY}
  poll_interval: %s
state_dir: ./state
scan_interval: 1h
shutdown_timeout: 10s
retry:
  base: 50ms
  max: 500ms
  attempts: 30
http:
  listen: %s
%s
defaults:
  settle: 300ms
folders:
  - name: main
    input: ./in/main
    output: ./out/main
    agent_id: %s
`, fake.URL(), pollInterval, addr, strings.ReplaceAll(extra, "{{ADDR}}", addr), fake.AgentIDs()[0])
	if strings.HasPrefix(extra, "http:\n") ||
		strings.Contains(extra, "\nhttp:\n") { // the caller brings its own http section
		body = strings.Replace(body, "http:\n  listen: "+addr+"\n", "", 1)
	}
	if before != nil {
		before(e.dir)
	}
	path := filepath.Join(e.dir, "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	lookup := func(k string) (string, bool) {
		if k == "TEST_MOSAIC_KEY" {
			return mosaictest.DefaultAPIKey, true
		}
		return os.LookupEnv(k)
	}
	cfg, err := config.Load(path, lookup)
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = cfg
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := New(context.Background(), e.cfg, log, "test")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.d = d
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("daemon did not stop within 20s")
		}
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", e.logs.String())
		}
	})
	return e
}

// writeClip drops a small valid movie under in/main/<rel> (temporary name, then rename).
func (e *httpEnv) writeClip(rel, seed string) []byte {
	e.t.Helper()
	data := testenv.Clip(seed)
	testenv.DropFile(e.t, filepath.Join(e.dir, "in", "main", filepath.FromSlash(rel)), data)
	return data
}

// do sends a request and returns status and body. hdr holds header pairs.
func (e *httpEnv) do(method, path string, body io.Reader, hdr ...string) (
	int, string, http.Header) {
	return testenv.HTTPDo(e.t, method, e.base+path, body, hdr...)
}

// jobs lists jobs through the API.
func (e *httpEnv) jobs(query string, hdr ...string) []jobview.Job {
	e.t.Helper()
	code, body, _ := e.do("GET", "/api/jobs"+query, nil, hdr...)
	if code != http.StatusOK {
		e.t.Fatalf("GET /api/jobs%s = %d %s", query, code, body)
	}
	var page httpapi.JobsPage
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		e.t.Fatalf("decode %s: %v", body, err)
	}
	return page.Jobs
}

// waitJob waits until the job for rel reaches status.
func (e *httpEnv) waitJob(rel string, status string) jobview.Job {
	e.t.Helper()
	var got jobview.Job
	testenv.WaitFor(e.t, 30*time.Second, rel+" to be "+status, func() bool {
		for _, v := range e.jobs("?path=" + rel) {
			if v.Path == rel {
				got = v
				return string(v.Status) == status
			}
		}
		return false
	})
	return got
}

// waitFirstHealthReport waits for the watcher's first health report on input, which would
// overwrite a health a test sets before it. folderHealth leaves healthy folders out, so the
// daemon's own record is read.
func waitFirstHealthReport(t *testing.T, d *Daemon, input string) {
	t.Helper()
	testenv.WaitFor(t, 20*time.Second, "the watcher's first health report", func() bool {
		d.healthMu.Lock()
		defer d.healthMu.Unlock()
		_, reported := d.health[input]
		return reported
	})
}
