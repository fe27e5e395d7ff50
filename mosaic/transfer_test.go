package mosaic_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

// recordedPart is one multipart part as the storage saw it.
type recordedPart struct{ name, filename, ctype, data string }

func TestUploadWireFormat(t *testing.T) {
	var mu sync.Mutex
	var hdr http.Header
	var contentLength int64
	var te []string
	var parts []recordedPart
	var bodyLen int
	srv := newLocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		hdr, contentLength, te, bodyLen = r.Header.Clone(), r.ContentLength, r.TransferEncoding, len(body)
		_, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			data, _ := io.ReadAll(p)
			parts = append(parts, recordedPart{p.FormName(), p.FileName(), p.Header.Get("Content-Type"), string(data)})
		}
		w.WriteHeader(http.StatusCreated)
	}))
	c, _ := newClient(t, srv.URL)
	content := strings.Repeat("0123456789", 300_000) // 3 MB: several reads
	tg := &mosaic.UploadTarget{URL: srv.URL + "/bucket?X-Goog-Signature=zz", Fields: []mosaic.FormField{
		{"key", "uploads/v"}, {"x-goog-date", "d"}, {"policy", "p"}, {"x-goog-signature", "s"}}}
	var lastSent, lastTotal int64
	calls := 0
	err := c.Upload(context.Background(), tg, mosaic.UploadFile{Name: "clip.mov", ContentType: "video/quicktime",
		Size: int64(len(content)), Body: strings.NewReader(content)},
		func(sent, total int64) { lastSent, lastTotal, calls = sent, total, calls+1 })
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if hdr.Get("Authorization") != "" {
		t.Errorf("Authorization sent to storage")
	}
	if contentLength != int64(bodyLen) || len(te) != 0 {
		t.Errorf("Content-Length %d, body %d, Transfer-Encoding %v", contentLength, bodyLen, te)
	}
	var order []string
	for _, p := range parts {
		order = append(order, p.name)
	}
	if strings.Join(order, ",") != "key,x-goog-date,policy,x-goog-signature,file" {
		t.Fatalf("part order %v", order)
	}
	f := parts[len(parts)-1]
	if f.filename != "clip.mov" || f.ctype != "video/quicktime" || f.data != content || parts[0].data != "uploads/v" {
		t.Errorf("file part: %q %q len %d", f.filename, f.ctype, len(f.data))
	}
	if lastSent != int64(len(content)) || lastTotal != int64(len(content)) || calls < 3 {
		t.Errorf("progress %d/%d in %d calls", lastSent, lastTotal, calls)
	}
}

func TestUploadShortBodyFails(t *testing.T) {
	e := setup(t, mosaictest.Options{})
	ctx := context.Background()
	tg, err := e.client.GetUploadURL(ctx, mosaic.UploadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	err = e.client.Upload(ctx, tg, mosaic.UploadFile{Name: "a.mp4", Size: 1 << 20, Body: strings.NewReader("too short")}, nil)
	if !errors.Is(err, mosaic.ErrShortBody) {
		t.Fatalf("err = %v", err)
	}
	if st := e.fake.Stats(); st.StoragePosts != 0 || st.BytesUploaded != 0 {
		t.Errorf("short body accepted: %+v", st)
	}
	assertNoSecrets(t, "error", err.Error())
}

// zeros is an endless reader (a large file that never needs to exist).
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestUploadCancelMidway(t *testing.T) {
	e := setup(t, mosaictest.Options{})
	tg, err := e.client.GetUploadURL(context.Background(), mosaic.UploadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const size = 1 << 30
	var maxSent atomic.Int64
	start := time.Now()
	err = e.client.Upload(ctx, tg, mosaic.UploadFile{Name: "big.mp4", Size: size, Body: zeros{}}, func(sent, total int64) {
		maxSent.Store(sent)
		if sent >= 8<<20 {
			cancel()
		}
	})
	if !mosaic.IsCanceled(err) || !errors.Is(err, context.Canceled) || mosaic.IsRetryable(err) {
		t.Fatalf("err = %v", err)
	}
	if s := maxSent.Load(); s < 8<<20 || s > size/2 {
		t.Errorf("cancel happened at %d bytes", s)
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Errorf("cancel took %v", el)
	}
	if st := e.fake.Stats(); st.StoragePosts != 0 {
		t.Errorf("cancelled upload accepted: %+v", st)
	}
}

func TestUploadExpired(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	e := setup(t, mosaictest.Options{Now: now, UploadURLTTL: time.Hour})
	ctx := context.Background()
	tg, err := e.client.GetUploadURL(ctx, mosaic.UploadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	offset.Store(int64(2 * time.Hour))
	err = e.client.Upload(ctx, tg, mosaic.UploadFile{Name: "a.mp4", Size: 3, Body: strings.NewReader("abc")}, nil)
	if !mosaic.IsURLExpired(err) || mosaic.IsAuth(err) {
		t.Fatalf("expired policy: %v", err)
	}
	var ae *mosaic.APIError
	if errors.As(err, &ae) && (ae.Code != "ExpiredToken" || ae.Op != "upload") {
		t.Errorf("APIError %+v", ae)
	}
	assertNoSecrets(t, "error", err.Error())

	offset.Store(0)
	tg, err = e.client.GetUploadURL(ctx, mosaic.UploadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	e.fake.InjectFault(mosaictest.RouteStorage, mosaictest.Fault{Kind: mosaictest.FaultExpired, Count: 1})
	err = e.client.Upload(ctx, tg, mosaic.UploadFile{Name: "a.mp4", Size: 3, Body: strings.NewReader("abc")}, nil)
	if !mosaic.IsURLExpired(err) {
		t.Errorf("injected expiry: %v", err)
	}
}

func TestUploadRejections(t *testing.T) {
	e := setup(t, mosaictest.Options{MaxFileSize: 10})
	ctx := context.Background()
	tg, err := e.client.GetUploadURL(ctx, mosaic.UploadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if tg.MaxFileSize != 10 {
		t.Fatalf("MaxFileSize = %d", tg.MaxFileSize)
	}
	big := mosaic.UploadFile{Name: "a.mp4", Size: 11, Body: strings.NewReader("01234567890")}
	err = e.client.Upload(ctx, tg, big, nil)
	if !mosaic.IsPermanent(err) || mosaic.IsURLExpired(err) || e.fake.Stats().StorageRejected != 0 {
		t.Errorf("local size check: %v", err)
	}
	// Without the hint the storage itself refuses the body.
	tg.MaxFileSize = 0
	big.Body = strings.NewReader("01234567890")
	err = e.client.Upload(ctx, tg, big, nil)
	var ae *mosaic.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 400 || ae.Code != "EntityTooLarge" || !mosaic.IsPermanent(err) || mosaic.IsURLExpired(err) || mosaic.IsAuth(err) {
		t.Errorf("storage size check: %v", err)
	}
	// A tampered policy field is refused; a 5xx is not retried (single attempt).
	tg.Fields[0].Value += "x"
	err = e.client.Upload(ctx, tg, mosaic.UploadFile{Name: "a.mp4", Size: 1, Body: strings.NewReader("1")}, nil)
	if !mosaic.IsPermanent(err) {
		t.Errorf("tampered field: %v", err)
	}
	tg.Fields[0].Value = strings.TrimSuffix(tg.Fields[0].Value, "x")
	e.fake.InjectFault(mosaictest.RouteStorage, mosaictest.Fault{Kind: mosaictest.FaultStatus, Status: 503, Count: 3})
	err = e.client.Upload(ctx, tg, mosaic.UploadFile{Name: "a.mp4", Size: 1, Body: strings.NewReader("1")}, nil)
	if !mosaic.IsRetryable(err) || e.requests("POST storage 503") != 1 {
		t.Errorf("storage 503: %v, %v", err, e.fake.RequestKeys())
	}
}

// dropProxy serves the fake's handler and cuts the first `cuts` download responses after `after`
// body bytes; it also records whether an Authorization header reached storage or download routes.
type dropProxy struct {
	fake      http.Handler
	cuts      atomic.Int32
	after     int
	mu        sync.Mutex
	ranges    []string
	authLeaks []string
	apiAuth   int
}

func (p *dropProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	isStorage := strings.HasPrefix(r.URL.Path, "/storage/") || strings.HasPrefix(r.URL.Path, "/download/")
	p.mu.Lock()
	switch {
	case isStorage && r.Header.Get("Authorization") != "":
		p.authLeaks = append(p.authLeaks, r.Method+" "+r.URL.Path)
	case !isStorage && r.Header.Get("Authorization") == "Bearer "+mosaictest.DefaultAPIKey:
		p.apiAuth++
	}
	if strings.HasPrefix(r.URL.Path, "/download/") {
		p.ranges = append(p.ranges, r.Header.Get("Range"))
	}
	p.mu.Unlock()
	if strings.HasPrefix(r.URL.Path, "/download/") && p.cuts.Add(-1) >= 0 {
		w = &cutWriter{ResponseWriter: w, left: p.after}
		defer func() {
			if v := recover(); v != nil && v != http.ErrAbortHandler {
				panic(v)
			}
		}()
	}
	p.fake.ServeHTTP(w, r)
}

// cutWriter passes `left` body bytes, then drops the connection mid-body.
type cutWriter struct {
	http.ResponseWriter
	left int
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if len(b) < c.left {
		c.left -= len(b)
		return c.ResponseWriter.Write(b)
	}
	n, _ := c.ResponseWriter.Write(b[:c.left])
	c.left = 0
	if conn, _, err := http.NewResponseController(c.ResponseWriter).Hijack(); err == nil {
		_ = conn.Close()
	}
	return n, errors.New("connection cut")
}

// completedRun uploads content through the proxy-facing client and returns the finished run.
func completedRun(t *testing.T, e *env, content []byte) *mosaic.Run {
	t.Helper()
	ctx := context.Background()
	videoID := e.uploadBytes(t, ctx, mosaic.UploadsAPI, "in.mp4", content)
	runID, err := e.client.RunAgent(ctx, e.fake.AgentIDs()[0], mosaic.RunRequest{VideoIDs: []string{videoID}})
	if err != nil {
		t.Fatal(err)
	}
	var run *mosaic.Run
	waitUntil(t, "run to finish", func() bool {
		run, err = e.client.GetRun(ctx, runID)
		return err == nil && run.Terminal()
	})
	if run.Status != mosaic.StatusCompleted || len(run.Outputs) == 0 {
		t.Fatalf("run %+v", run)
	}
	return run
}

func proxyEnv(t *testing.T, fopts mosaictest.Options, tweak ...func(*mosaic.Options)) (*env, *dropProxy) {
	t.Helper()
	fake := newFake(t, fopts)
	p := &dropProxy{fake: fake.Handler()}
	srv := newLocalServer(t, p)
	e := &env{fake: fake}
	e.client, e.logs = newClient(t, srv.URL+basePath, tweak...)
	return e, p
}

func TestDownloadResumesAfterDrop(t *testing.T) {
	const size = 2 << 20
	e, p := proxyEnv(t, mosaictest.Options{Agents: []mosaictest.AgentSpec{{}}, OutputSize: size})
	content := []byte("resume me")
	run := completedRun(t, e, content)
	p.cuts.Store(2)
	p.after = 700_000
	var buf bytes.Buffer
	var progress []int64
	n, err := e.client.Download(context.Background(), run.Outputs[0].VideoURL, &buf, mosaic.DownloadOptions{
		Progress: func(done, total int64) {
			if total != size {
				t.Errorf("progress total %d", total)
			}
			progress = append(progress, done)
		}})
	if err != nil {
		t.Fatal(err)
	}
	want := mosaictest.OutputBytes(e.fake.AgentIDs()[0], sha256Hex(content), 0, size)
	if n != size || !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("got %d bytes (n=%d), equal=%v", buf.Len(), n, bytes.Equal(buf.Bytes(), want))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ranges) != 3 || p.ranges[0] != "" || p.ranges[1] != "bytes=700000-" || p.ranges[2] != "bytes=1400000-" {
		t.Errorf("range headers %q", p.ranges)
	}
	if len(p.authLeaks) != 0 || p.apiAuth == 0 {
		t.Errorf("Authorization on storage/download: %v (API calls with auth: %d)", p.authLeaks, p.apiAuth)
	}
	if progress[len(progress)-1] != size {
		t.Errorf("last progress %d", progress[len(progress)-1])
	}
	if !strings.Contains(e.logs.String(), "download succeeded after retries") {
		t.Errorf("no retry log")
	}
	assertNoSecrets(t, "logs", e.logs.String())
}

func TestDownloadOffset(t *testing.T) {
	const size = 100_000
	e, p := proxyEnv(t, mosaictest.Options{Agents: []mosaictest.AgentSpec{{}}, OutputSize: size})
	run := completedRun(t, e, []byte("x"))
	want := mosaictest.OutputBytes(e.fake.AgentIDs()[0], sha256Hex([]byte("x")), 0, size)
	var buf bytes.Buffer
	var first int64 = -1
	n, err := e.client.Download(context.Background(), run.Outputs[0].VideoURL, &buf, mosaic.DownloadOptions{
		Offset: 40_000, Progress: func(done, total int64) {
			if first < 0 {
				first = done
			}
		}})
	if err != nil || n != size-40_000 || !bytes.Equal(buf.Bytes(), want[40_000:]) || first != 40_000 {
		t.Fatalf("offset download: n=%d err=%v first progress %d", n, err, first)
	}
	// The caller already holds everything: 416 from the server means done.
	n, err = e.client.Download(context.Background(), run.Outputs[0].VideoURL, &buf, mosaic.DownloadOptions{Offset: size})
	if err != nil || n != 0 {
		t.Errorf("complete offset: n=%d err=%v", n, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ranges[0] != "bytes=40000-" {
		t.Errorf("ranges %q", p.ranges)
	}
}

func TestDownloadExpiredAndFaults(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	e, _ := proxyEnv(t, mosaictest.Options{Agents: []mosaictest.AgentSpec{{}}, DownloadURLTTL: time.Hour, Now: now},
		func(o *mosaic.Options) { o.MaxRetries = 2 })
	run := completedRun(t, e, []byte("y"))
	ctx := context.Background()
	url := run.Outputs[0].VideoURL

	e.fake.InjectFault(mosaictest.RouteDownload, mosaictest.Fault{Kind: mosaictest.FaultStatus, Status: 503, Count: 2})
	if _, err := e.client.Download(ctx, url, io.Discard, mosaic.DownloadOptions{}); err != nil {
		t.Errorf("503 twice then ok: %v", err)
	}
	e.fake.InjectFault(mosaictest.RouteDownload, mosaictest.Fault{Kind: mosaictest.FaultDrop, Count: 10})
	_, err := e.client.Download(ctx, url, io.Discard, mosaic.DownloadOptions{})
	waitUntil(t, "drops counted", func() bool { return e.requests("GET download drop") >= 3 })
	if !mosaic.IsRetryable(err) || e.requests("GET download drop") < 3 {
		t.Errorf("drops: %v %v", err, e.fake.RequestKeys())
	}
	e.fake.ClearFaults()

	e.fake.InjectFault(mosaictest.RouteDownload, mosaictest.Fault{Kind: mosaictest.FaultExpired, Count: 1})
	_, err = e.client.Download(ctx, url, io.Discard, mosaic.DownloadOptions{})
	if !mosaic.IsURLExpired(err) || mosaic.IsAuth(err) || mosaic.IsRetryable(err) {
		t.Errorf("injected expiry: %v", err)
	}
	offset.Store(int64(2 * time.Hour))
	_, err = e.client.Download(ctx, url, io.Discard, mosaic.DownloadOptions{})
	if !mosaic.IsURLExpired(err) {
		t.Errorf("real expiry: %v", err)
	}
	assertNoSecrets(t, "error", err.Error())
	// A fresh GET of the run refreshes the URL.
	run, err = e.client.GetRun(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Download(ctx, run.Outputs[0].VideoURL, io.Discard, mosaic.DownloadOptions{}); err != nil {
		t.Errorf("refreshed URL: %v", err)
	}
}

// A server that ignores Range (200 with the whole body) after a drop: the client skips the prefix.
func TestDownloadServerIgnoresRange(t *testing.T) {
	content := bytes.Repeat([]byte("abcdefghij"), 50_000)
	var calls atomic.Int32
	srv := newLocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			conn, bw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(content))
			_, _ = bw.Write(content[:123_456])
			_ = bw.Flush()
			_ = conn.Close()
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		_, _ = w.Write(content)
	}))
	c, _ := newClient(t, srv.URL)
	var buf bytes.Buffer
	n, err := c.Download(context.Background(), srv.URL+"/o?sig=1", &buf, mosaic.DownloadOptions{})
	if err != nil || n != int64(len(content)) || !bytes.Equal(buf.Bytes(), content) {
		t.Fatalf("n=%d err=%v equal=%v", n, err, bytes.Equal(buf.Bytes(), content))
	}
	if calls.Load() != 2 {
		t.Errorf("calls %d", calls.Load())
	}
}

func TestDownload400IsExpired(t *testing.T) {
	srv := newLocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`<Error><Code>ExpiredToken</Code><Message>Invalid argument.</Message><Details>X-Goog-Signature=abc</Details></Error>`))
	}))
	c, _ := newClient(t, srv.URL)
	_, err := c.Download(context.Background(), srv.URL+"/o?X-Goog-Signature=abc&sig=1", io.Discard, mosaic.DownloadOptions{})
	if !mosaic.IsURLExpired(err) || mosaic.IsAuth(err) {
		t.Errorf("err = %v", err)
	}
	assertNoSecrets(t, "error", err.Error())
	if strings.Contains(err.Error(), "abc") {
		t.Errorf("signature leaked: %v", err)
	}
}

func TestDownloadCancel(t *testing.T) {
	srv := newLocalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000000")
		_, _ = w.Write(make([]byte, 1<<20))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	c, _ := newClient(t, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	n, err := c.Download(ctx, srv.URL+"/o", io.Discard, mosaic.DownloadOptions{Progress: func(done, total int64) {
		if done >= 1<<20 {
			cancel()
		}
	}})
	if !mosaic.IsCanceled(err) || !errors.Is(err, context.Canceled) || n != 1<<20 {
		t.Errorf("n=%d err=%v", n, err)
	}
}
