package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

// httpEnv is an in-process daemon (runDaemon, with its HTTP listener) against the fake Mosaic,
// so the race detector sees the handlers next to the pipeline.
type httpEnv struct {
	t    *testing.T
	fake *mosaictest.Server
	dir  string
	cfg  *Config
	d    *daemon
	base string // http://127.0.0.1:PORT
	logs *syncBuffer
}

// freePort returns a loopback address nobody listens on right now.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startHTTPEnv starts the fake and the daemon with folder "main" (agent: the fake's first agent).
// extra is more top-level YAML; "{{ADDR}}" in it is replaced by the listen address. pollInterval
// is mosaic.poll_interval.
func startHTTPEnv(t *testing.T, fo mosaictest.Options, pollInterval, extra string) *httpEnv {
	t.Helper()
	fake := startFake(t, fo)
	e := &httpEnv{t: t, fake: fake, dir: t.TempDir(), logs: &syncBuffer{}}
	addr := freePort(t)
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
	if strings.HasPrefix(extra, "http:\n") || strings.Contains(extra, "\nhttp:\n") { // the caller brings its own http section
		body = strings.Replace(body, "http:\n  listen: "+addr+"\n", "", 1)
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
	cfg, err := LoadConfig(path, lookup)
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = cfg
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan *daemon, 1)
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() { done <- runDaemon(ctx, e.cfg, log, daemonHooks{started: func(d *daemon) { started <- d }}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("runDaemon: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("daemon did not stop within 20s")
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", e.logs.String())
		}
	})
	select {
	case e.d = <-started:
	case err := <-done:
		t.Fatalf("runDaemon: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("daemon did not start")
	}
	return e
}

// writeClip drops a small valid movie under in/main/<rel> (temporary name, then rename).
func (e *httpEnv) writeClip(rel, seed string) []byte {
	e.t.Helper()
	data := clip(seed)
	dropFile(e.t, filepath.Join(e.dir, "in", "main", filepath.FromSlash(rel)), data)
	return data
}

// do sends a request and returns status and body. hdr holds header pairs.
func (e *httpEnv) do(method, path string, body io.Reader, hdr ...string) (int, string, http.Header) {
	return httpDo(e.t, method, e.base+path, body, hdr...)
}

func httpDo(t testing.TB, method, url string, body io.Reader, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// jobs lists jobs through the API.
func (e *httpEnv) jobs(query string, hdr ...string) []jobView {
	e.t.Helper()
	code, body, _ := e.do("GET", "/api/jobs"+query, nil, hdr...)
	if code != http.StatusOK {
		e.t.Fatalf("GET /api/jobs%s = %d %s", query, code, body)
	}
	var page jobsPage
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		e.t.Fatalf("decode %s: %v", body, err)
	}
	return page.Jobs
}

// waitJob waits until the job for rel reaches status.
func (e *httpEnv) waitJob(rel string, status string) jobView {
	e.t.Helper()
	var got jobView
	waitFor(e.t, 30*time.Second, rel+" to be "+status, func() bool {
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

// assertNoSecrets fails if body shows the API key or a signed URL's signature.
func assertNoSecrets(t testing.TB, what, body string, secrets ...string) {
	t.Helper()
	for _, s := range append([]string{mosaictest.DefaultAPIKey, "sig=", "expires="}, secrets...) {
		if strings.Contains(body, s) {
			t.Errorf("%s shows a secret (%q)", what, s)
		}
	}
}
