package mosaictest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

const (
	uploadBucket   = "fake-mosaic-uploads"
	maxLegacyMS    = int64(90 * 60 * 1000)
	maxJSONBody    = 1 << 20
	gcsAlgorithm   = "GOOG4-RSA-SHA256"
	gcsCredentialF = "fake-mosaic@fake-project.iam.gserviceaccount.com/%s/auto/storage/goog4_request"
)

type upload struct {
	videoID   string
	key       string
	fields    map[string]string // issued policy fields
	expiresAt time.Time
	legacy    bool
	uploaded  bool
	finalized bool
	sha256    string
	size      int64
}

// newUploadLocked issues a video id and a signed POST policy for it.
func (s *Server) newUploadLocked(legacy bool) *upload {
	now := s.now()
	u := &upload{videoID: newUUID(), expiresAt: now.Add(s.opts.UploadURLTTL), legacy: legacy}
	u.key = "uploads/" + u.videoID
	date := now.Format("20060102T150405Z")
	cred := fmt.Sprintf(gcsCredentialF, now.Format("20060102"))
	policy, _ := json.Marshal(map[string]any{
		"expiration": u.expiresAt.Format(time.RFC3339),
		"conditions": []any{
			map[string]string{"bucket": uploadBucket},
			map[string]string{"key": u.key},
			map[string]string{"x-goog-algorithm": gcsAlgorithm},
			map[string]string{"x-goog-credential": cred},
			map[string]string{"x-goog-date": date},
			[]any{"content-length-range", 0, s.opts.MaxFileSize},
		},
	})
	p64 := base64.StdEncoding.EncodeToString(policy)
	mac := hmac.New(sha256.New, s.signKey)
	mac.Write([]byte(p64))
	u.fields = map[string]string{
		"key":               u.key,
		"policy":            p64,
		"x-goog-algorithm":  gcsAlgorithm,
		"x-goog-credential": cred,
		"x-goog-date":       date,
		"x-goog-signature":  hex.EncodeToString(mac.Sum(nil)),
	}
	s.uploads[u.videoID] = u
	s.uploadsByKey[u.key] = u
	s.stats.UploadURLsIssued++
	return u
}

func (s *Server) storageURL(r *http.Request) string {
	return s.requestRoot(r) + "/storage/" + uploadBucket
}

// handleGetUploadURL serves the newest POST /uploads/video/get_upload_url (any body ignored).
func (s *Server) handleGetUploadURL(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxJSONBody))
	s.mu.Lock()
	u := s.newUploadLocked(false)
	fields := cloneMap(u.fields)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"video_id":            u.videoID,
		"upload_url":          s.storageURL(r),
		"upload_fields":       fields,
		"max_file_size_bytes": s.opts.MaxFileSize,
	})
}

// handleLegacyGetUploadURL serves the seed-era POST /videos/get_upload_url with required metadata.
func (s *Server) handleLegacyGetUploadURL(w http.ResponseWriter, r *http.Request) {
	var body map[string]json.RawMessage
	if err := decodeJSON(r, &body); err != nil || body == nil {
		writeError(w, http.StatusBadRequest, "validation_error", "Request body must be a JSON object")
		return
	}
	for _, f := range []string{"filename", "content_type"} {
		var v string
		if err := json.Unmarshal(body[f], &v); err != nil || strings.TrimSpace(v) == "" {
			writeError(w, http.StatusBadRequest, "validation_error", f+" is required and must be a non-empty string")
			return
		}
		if f == "content_type" && !strings.HasPrefix(v, "video/") && v != "application/octet-stream" {
			writeError(w, http.StatusBadRequest, "validation_error", "Invalid content type: "+v)
			return
		}
	}
	ints := map[string]int64{}
	for _, f := range []string{"file_size", "width", "height", "duration_ms"} {
		raw, ok := body[f]
		var n int64
		if !ok || json.Unmarshal(raw, &n) != nil {
			writeError(w, http.StatusBadRequest, "validation_error", f+" is required and must be an integer")
			return
		}
		if n < 0 {
			writeError(w, http.StatusBadRequest, "validation_error", f+" must not be negative")
			return
		}
		ints[f] = n
	}
	if ints["file_size"] > s.opts.MaxFileSize {
		writeError(w, http.StatusRequestEntityTooLarge, "file_too_large", fmt.Sprintf("File size exceeds the maximum of %d bytes", s.opts.MaxFileSize))
		return
	}
	if ints["duration_ms"] > maxLegacyMS {
		writeError(w, http.StatusRequestEntityTooLarge, "video_too_long", "Video duration exceeds the maximum of 90 minutes")
		return
	}
	s.mu.Lock()
	u := s.newUploadLocked(true)
	fields := cloneMap(u.fields)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"video_id":   u.videoID,
		"upload_url": s.storageURL(r),
		"method":     "POST",
		"fields":     fields,
	})
}

func (s *Server) handleFinalize(w http.ResponseWriter, r *http.Request) {
	if id, ok := s.finalize(w, r); ok {
		writeJSON(w, http.StatusOK, map[string]string{"video_id": id})
	}
}

func (s *Server) handleLegacyFinalize(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.finalize(w, r); ok {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

// finalize applies both eras' rules; on failure it has written the error.
func (s *Server) finalize(w http.ResponseWriter, r *http.Request) (string, bool) {
	var body struct {
		VideoID *string `json:"video_id"`
	}
	if err := decodeJSON(r, &body); err != nil || body.VideoID == nil || *body.VideoID == "" {
		writeError(w, http.StatusBadRequest, "validation_error", "video_id is required")
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.uploads[*body.VideoID]
	if u == nil || (!u.uploaded && s.now().After(u.expiresAt)) {
		writeError(w, http.StatusNotFound, "not_found", "Upload not found or expired")
		return "", false
	}
	if !u.uploaded {
		writeError(w, http.StatusBadRequest, "validation_error", "File not uploaded")
		return "", false
	}
	u.finalized = true
	s.stats.Finalizes++
	return u.videoID, true
}

// decodeJSON reads a bounded JSON body into v.
func decodeJSON(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return fmt.Errorf("empty body")
	}
	return json.Unmarshal(b, v)
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
