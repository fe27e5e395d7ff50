package mosaictest

import (
	"io"
	"mime/multipart"
	"net/http"
	"testing"
)

// BenchmarkStorageUpload streams a 256 MiB file part through the fake storage host.
func BenchmarkStorageUpload(b *testing.B) {
	const size = 256 << 20
	s, err := NewServer(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	chunk := make([]byte, 1<<20)
	b.SetBytes(size)
	for b.Loop() {
		st, m := call(b, "POST", s.URL()+"/uploads/video/get_upload_url", nil)
		if st != 200 {
			b.Fatal(st)
		}
		fields := m["upload_fields"].(map[string]any)
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		go func() {
			for _, p := range issuedParts(fields) {
				_ = mw.WriteField(p.name, p.value)
			}
			fw, _ := mw.CreateFormFile("file", "big.mp4")
			for range size / len(chunk) {
				_, _ = fw.Write(chunk)
			}
			_ = mw.Close()
			_ = pw.Close()
		}()
		req, _ := http.NewRequest("POST", m["upload_url"].(string), pr)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := testHTTP.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 {
			b.Fatal(resp.Status)
		}
	}
}
