package mosaictest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injectable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newFake(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := NewServer(opts)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var testHTTP = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: nil}}

// call does one request with the default key; body is JSON-encoded unless []byte or nil.
func call(t testing.TB, method, url string, body any) (int, map[string]any) {
	t.Helper()
	return callKey(t, method, url, "Bearer "+DefaultAPIKey, body)
}

func callKey(t testing.TB, method, url, auth string, body any) (int, map[string]any) {
	t.Helper()
	status, raw := callRaw(t, method, url, auth, body)
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: status %d, body not a JSON object: %q", method, url, status, raw)
		}
	}
	return status, m
}

func callRaw(t testing.TB, method, url, auth string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := testHTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, url, err)
	}
	return resp.StatusCode, raw
}

type part struct{ name, value string }

// formBody builds a multipart body from parts in order; a part named "file" carries content.
func formBody(t testing.TB, parts []part) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		if p.name == "file" {
			fw, err := mw.CreateFormFile("file", "clip.mp4")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = fw.Write([]byte(p.value))
			continue
		}
		if err := mw.WriteField(p.name, p.value); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), buf.Bytes()
}

// issuedParts turns an upload_fields/fields object into sorted parts.
func issuedParts(fields map[string]any) []part {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]part, 0, len(names))
	for _, n := range names {
		out = append(out, part{n, fields[n].(string)})
	}
	return out
}

func postForm(t testing.TB, url, contentType string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := testHTTP.Do(req)
	if err != nil {
		t.Fatalf("POST storage: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type issued struct {
	videoID, url string
	fields       map[string]any
}

func getUploadURL(t testing.TB, s *Server) issued {
	t.Helper()
	st, m := call(t, "POST", s.URL()+"/uploads/video/get_upload_url", nil)
	if st != 200 {
		t.Fatalf("get_upload_url: %d %v", st, m)
	}
	return issued{m["video_id"].(string), m["upload_url"].(string), m["upload_fields"].(map[string]any)}
}

// uploadContent does the newest flow (get URL, storage POST, finalize) and returns the video id and content hash.
func uploadContent(t testing.TB, s *Server, content string) (string, string) {
	t.Helper()
	u := getUploadURL(t, s)
	ct, body := formBody(t, append(issuedParts(u.fields), part{"file", content}))
	if st, b := postForm(t, u.url, ct, body); st != http.StatusNoContent {
		t.Fatalf("storage POST: %d %s", st, b)
	}
	if st, m := call(t, "POST", s.URL()+"/uploads/video/finalize_upload", map[string]string{"video_id": u.videoID}); st != 200 {
		t.Fatalf("finalize: %d %v", st, m)
	}
	h := sha256.Sum256([]byte(content))
	return u.videoID, hex.EncodeToString(h[:])
}

func startRun(t testing.TB, s *Server, agentID string, body any) string {
	t.Helper()
	st, m := call(t, "POST", s.URL()+"/agent/"+agentID+"/run", body)
	if st != 200 {
		t.Fatalf("run agent: %d %v", st, m)
	}
	return m["run_id"].(string)
}

func getRun(t testing.TB, s *Server, runID string) map[string]any {
	t.Helper()
	st, m := call(t, "GET", s.URL()+"/agent_run/"+runID, nil)
	if st != 200 {
		t.Fatalf("get run: %d %v", st, m)
	}
	return m
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantErrBody(t testing.TB, m map[string]any, code, detailSub string) {
	t.Helper()
	if code != "" && m["error"] != code {
		t.Errorf("error = %v, want %q (body %v)", m["error"], code, m)
	}
	if d, _ := m["detail"].(string); !strings.Contains(d, detailSub) {
		t.Errorf("detail = %q, want it to contain %q", d, detailSub)
	}
}

func str(v any) string { return fmt.Sprint(v) }

func copyBody(w io.Writer, resp *http.Response) (int64, error) { return io.Copy(w, resp.Body) }
