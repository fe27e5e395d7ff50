package mosaictest

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"mime/multipart"
	"net/http"
	"sort"
	"sync"
	"testing"
)

// TestLegacyFlowLikeExampleScripts replays Mosaic's run_agent.py / get_status.py requests.
func TestLegacyFlowLikeExampleScripts(t *testing.T) {
	s := newFake(t, Options{})
	agentID := s.AddAgent(AgentSpec{Outputs: 2})
	base := s.URL()
	content := "legacy video bytes"

	meta := map[string]any{"filename": "clip.mp4", "content_type": "video/mp4", "file_size": len(content),
		"width": 1920, "height": 1080, "duration_ms": 12000}
	st, m := call(t, "POST", base+"/videos/get_upload_url", meta)
	if st != 200 || m["method"] != "POST" || m["upload_fields"] != nil {
		t.Fatalf("get_upload_url: %d %v", st, m)
	}
	fields := m["fields"].(map[string]any)
	if fields["key"] != "uploads/"+m["video_id"].(string) || fields["x-goog-algorithm"] != "GOOG4-RSA-SHA256" {
		t.Fatalf("fields %v", fields)
	}
	// requests.post(upload_url, data=fields, files={"file": f}): fields first, file last, expect 204.
	ct, body := formBody(t, append(issuedParts(fields), part{"file", content}))
	if st, b := postForm(t, m["upload_url"].(string), ct, body); st != 204 {
		t.Fatalf("upload: %d %s", st, b)
	}
	videoID := m["video_id"].(string)
	st, fin := call(t, "POST", base+"/videos/finalize_upload", map[string]string{"video_id": videoID})
	if st != 200 || fin["status"] != "ok" {
		t.Fatalf("finalize: %d %v", st, fin)
	}
	runID := startRun(t, s, agentID, map[string]any{"video_ids": []string{videoID}, "callback_url": "http://127.0.0.1:1/hook"})
	// get_status.py polls until completed/failed and reads outputs[].video_url.
	var r map[string]any
	waitFor(t, "terminal", func() bool {
		r = getRun(t, s, runID)
		return r["status"] == "completed" || r["status"] == "failed"
	})
	sum := sha256.Sum256([]byte(content))
	for i, o := range r["outputs"].([]any) {
		st, b := callRaw(t, "GET", o.(map[string]any)["video_url"].(string), "", nil)
		if st != 200 || string(b) != string(OutputBytes(agentID, hex.EncodeToString(sum[:]), i, 64<<10)) {
			t.Fatalf("output %d: %d", i, st)
		}
	}

	// Metadata validation of the seed-era endpoint.
	for _, tc := range []struct {
		name   string
		change map[string]any
		status int
	}{
		{"missing filename", map[string]any{"filename": nil}, 400},
		{"negative width", map[string]any{"width": -1}, 400},
		{"bad content type", map[string]any{"content_type": "text/plain"}, 400},
		{"too big", map[string]any{"file_size": DefaultMaxFileSize + 1}, 413},
		{"too long", map[string]any{"duration_ms": 90*60*1000 + 1}, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := map[string]any{}
			for k, v := range meta {
				b[k] = v
			}
			for k, v := range tc.change {
				if v == nil {
					delete(b, k)
				} else {
					b[k] = v
				}
			}
			if st, m := call(t, "POST", base+"/videos/get_upload_url", b); st != tc.status || m["detail"] == nil {
				t.Fatalf("%d %v", st, m)
			}
		})
	}
}

func TestStatsCounts(t *testing.T) {
	s := newFake(t, Options{ManualRuns: true})
	a1, a2 := s.AddAgent(AgentSpec{}), s.AddAgent(AgentSpec{})
	v1, h1 := uploadContent(t, s, "one")
	v2, h2 := uploadContent(t, s, "two")
	startRun(t, s, a1, map[string]any{"video_ids": []string{v1}})
	startRun(t, s, a1, map[string]any{"video_ids": []string{v1}})
	startRun(t, s, a2, map[string]any{"video_ids": []string{v2}})
	call(t, "GET", s.URL()+"/agent_run/"+newUUID(), nil)
	st := s.Stats()
	if st.UploadURLsIssued != 2 || st.StoragePosts != 2 || st.Finalizes != 2 || st.BytesUploaded != 6 || st.RunsCreated != 3 {
		t.Fatalf("stats %+v", st)
	}
	if st.RunsByContent[RunKey{h1, a1}] != 2 || st.RunsByContent[RunKey{h2, a2}] != 1 || len(st.RunsByContent) != 2 {
		t.Fatalf("RunsByContent %v", st.RunsByContent)
	}
	want := map[string]int{"POST run_agent 200": 3, "POST run_agent 2xx": 3, "POST storage 204": 2, "POST finalize 200": 2,
		"POST get_upload_url 200": 2, "GET get_run 404": 1, "GET get_run 4xx": 1}
	for k, v := range want {
		if st.Requests[k] != v {
			keys := make([]string, 0)
			for k := range st.Requests {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			t.Fatalf("Requests[%q] = %d, want %d (keys %v)", k, st.Requests[k], v, keys)
		}
	}
	// Stats is a copy.
	st.Requests["x"] = 1
	if s.Stats().Requests["x"] != 0 {
		t.Fatal("Stats shares its maps")
	}
}

// TestStorageStreamsConcurrentUploads pushes uploads through pipes so they are
// in flight together, and a larger body to check hashing while streaming.
func TestStorageStreamsConcurrentUploads(t *testing.T) {
	s := newFake(t, Options{})
	const n = 3
	const size = 8 << 20
	var started sync.WaitGroup
	started.Add(n)
	release := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		u := getUploadURL(t, s)
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		wg.Add(2)
		go func() { // writer: fields, then part of the file, wait, then the rest
			defer wg.Done()
			for _, p := range issuedParts(u.fields) {
				_ = mw.WriteField(p.name, p.value)
			}
			fw, _ := mw.CreateFormFile("file", "big.mp4")
			chunk := make([]byte, 1<<20)
			for j := range chunk {
				chunk[j] = byte(i + j)
			}
			_, _ = fw.Write(chunk)
			started.Done()
			<-release
			for range size/len(chunk) - 1 {
				_, _ = fw.Write(chunk)
			}
			_ = mw.Close()
			_ = pw.Close()
		}()
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", u.url, pr)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			resp, err := testHTTP.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 204 {
				errs <- resp.Status
			}
		}()
	}
	started.Wait()
	waitFor(t, "three uploads in flight", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.uploadsNow == n
	})
	close(release)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	st := s.Stats()
	if st.PeakConcurrentUploads != n || st.StoragePosts != n || st.BytesUploaded != n*size {
		t.Fatalf("stats %+v", st)
	}
}
