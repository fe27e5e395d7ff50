package mosaic_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

const basePath = "/api/v1"

// env is a fake Mosaic mounted under a non-empty base path plus a client pointed at it.
type env struct {
	fake   *mosaictest.Server
	client *mosaic.Client
	logs   *syncBuffer
}

func newFake(t *testing.T, opts mosaictest.Options) *mosaictest.Server {
	t.Helper()
	if opts.BasePath == "" {
		opts.BasePath = basePath
	}
	fake, err := mosaictest.NewServer(opts)
	if err != nil {
		t.Fatalf("fake: %v", err)
	}
	t.Cleanup(func() { _ = fake.Close() })
	return fake
}

// setup starts a fake and a fast-retrying client; tweak may adjust the client options.
func setup(t *testing.T, fopts mosaictest.Options, tweak ...func(*mosaic.Options)) *env {
	t.Helper()
	fake := newFake(t, fopts)
	if !strings.HasSuffix(fake.URL(), basePath) {
		t.Fatalf("fake URL %q lacks the base path", fake.URL())
	}
	e := &env{fake: fake}
	e.client, e.logs = newClient(t, fake.URL(), tweak...)
	return e
}

func newClient(t *testing.T, baseURL string, tweak ...func(*mosaic.Options)) (*mosaic.Client, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	opts := mosaic.Options{
		BaseURL:        baseURL,
		APIKey:         mosaictest.DefaultAPIKey,
		Logger:         slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RetryBaseDelay: 5 * time.Millisecond,
		MaxRetryDelay:  50 * time.Millisecond,
		RequestTimeout: 10 * time.Second,
	}
	for _, f := range tweak {
		f(&opts)
	}
	c, err := mosaic.New(opts)
	if err != nil {
		t.Fatalf("mosaic.New: %v", err)
	}
	// Idle keep-alive connections must not outlive the test (goroutine leak checks).
	t.Cleanup(func() {
		if opts.HTTPClient == nil {
			closeIdle(c)
		}
	})
	return c, logs
}

// closeIdle closes the idle connections of the client's default transport.
func closeIdle(c *mosaic.Client) { c.CloseIdleConnections() }

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// uploadBytes runs get-upload-url, upload and finalize for content; returns the video id.
func (e *env) uploadBytes(t *testing.T, ctx context.Context, api mosaic.UploadAPI, name string, content []byte) string {
	t.Helper()
	target, err := e.client.GetUploadURL(ctx, mosaic.UploadRequest{
		API: api, Filename: name, FileSize: int64(len(content)), Width: 1920, Height: 1080, DurationMS: 5000,
	})
	if err != nil {
		t.Fatalf("GetUploadURL: %v", err)
	}
	err = e.client.Upload(ctx, target, mosaic.UploadFile{Name: name, ContentType: mosaic.ContentTypeFor(name),
		Size: int64(len(content)), Body: bytes.NewReader(content)}, nil)
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if err := e.client.FinalizeUpload(ctx, api, target.VideoID); err != nil {
		t.Fatalf("FinalizeUpload: %v", err)
	}
	return target.VideoID
}

// requests returns the fake's request count for a "METHOD route status" key.
func (e *env) requests(key string) int { return e.fake.Stats().Requests[key] }

// closedPortURL returns a loopback URL nobody listens on (dial refused).
func closedPortURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr
}

// newLocalServer is an httptest server on 127.0.0.1 for shapes the fake cannot produce.
func newLocalServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// assertNoSecrets fails if s contains the API key or a signed URL's query.
func assertNoSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, bad := range []string{mosaictest.DefaultAPIKey, "sig=", "expires=", "x-goog-signature=", "?"} {
		if strings.Contains(s, bad) {
			t.Errorf("%s leaks %q: %s", what, bad, s)
		}
	}
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func drain(r io.Reader) { _, _ = io.Copy(io.Discard, r) }
