// Package testenv holds what the daemon's in-process tests and the end-to-end tests of the
// binary share: a fake Mosaic on loopback, sample clips dropped the way copies arrive, and
// waiting on conditions with a deadline. Only tests import it.
package testenv

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/jobview"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/sample"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// WebhookSecret is the webhook.secret the webhook tests configure.
const WebhookSecret = "whsk_test_secret_value"

// StartFake serves a fake Mosaic on loopback for the test, with one agent unless fo names some.
func StartFake(t testing.TB, fo mosaictest.Options) *mosaictest.Server {
	t.Helper()
	if fo.Logger == nil {
		fo.Logger = slog.New(slog.DiscardHandler)
	}
	if len(fo.Agents) == 0 {
		fo.Agents = []mosaictest.AgentSpec{{Name: "default"}}
	}
	fake, err := mosaictest.NewServer(fo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	return fake
}

// WaitFor polls cond until it holds, failing the test after timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Clip is a small valid movie whose content depends on seed.
func Clip(seed string) []byte {
	return sample.MP4(1000, 640, 360, bytes.Repeat([]byte(seed+" "), 512))
}

// ShaHex is the hex SHA-256 of b, as the fake keys runs and outputs by content.
func ShaHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// DropFile writes data at p as a copy would: a temporary (ignored) name, then a rename.
func DropFile(t testing.TB, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(p), ".copy-"+filepath.Base(p)+".part")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

// SyncBuffer collects a daemon's log from several goroutines.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreePort returns a loopback address nobody listens on right now.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// HTTPDo sends a request and returns status, body and headers; hdr holds header pairs (a "Host"
// pair sets the Host the request claims; it is still sent to url). Redirects are returned, not
// followed.
func HTTPDo(t testing.TB, method, url string, body io.Reader, hdr ...string) (
	int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if http.CanonicalHeaderKey(hdr[i]) == "Host" {
			req.Host = hdr[i+1] // net/http ignores a Host entry in req.Header
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	noRedirects := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: noRedirects}
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

// AssertNoSecrets fails if body shows the API key, a signed URL's signature or one of secrets.
func AssertNoSecrets(t testing.TB, what, body string, secrets ...string) {
	t.Helper()
	for _, s := range append([]string{mosaictest.DefaultAPIKey, "sig=", "expires="}, secrets...) {
		if strings.Contains(body, s) {
			t.Errorf("%s shows a secret (%q)", what, s)
		}
	}
}

// WaitRunStarted waits until the job for rel, as jobs lists it, has a run and returns its id.
func WaitRunStarted(t testing.TB, jobs func(string, ...string) []jobview.Job, rel string,
	hdr ...string) string {
	t.Helper()
	var run string
	WaitFor(t, 30*time.Second, rel+" to start its run", func() bool {
		for _, v := range jobs("?path="+rel, hdr...) {
			if v.Path == rel && v.RunID != "" && v.Step == store.StepRunStarted {
				run = v.RunID
				return true
			}
		}
		return false
	})
	return run
}
