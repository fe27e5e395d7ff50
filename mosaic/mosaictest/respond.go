package mosaictest

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"time"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError writes Mosaic's error body {"error": code, "detail": text}.
func writeError(w http.ResponseWriter, status int, code, detail string) {
	writeJSON(w, status, map[string]string{"error": code, "detail": detail})
}

// writeDetail writes the detail-only error body (resume/cancel 409).
func writeDetail(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, map[string]string{"detail": detail})
}

// writeXMLError writes a GCS-style XML error (storage and download hosts).
func writeXMLError(w http.ResponseWriter, status int, code, message string) {
	body := "<?xml version='1.0' encoding='UTF-8'?><Error><Code>" + html.EscapeString(code) +
		"</Code><Message>" + html.EscapeString(message) + "</Message></Error>"
	w.Header().Set("Content-Type", "application/xml; charset=UTF-8")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// ts formats a time the way the API does (UTC, RFC 3339 with microseconds when present).
func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// tsOrNil is ts, or JSON null for the zero time.
func tsOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return ts(t)
}

// strOrNil is s, or JSON null when empty.
func strOrNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// requestRoot is where the client reached us (works when Handler is served elsewhere).
func (s *Server) requestRoot(r *http.Request) string {
	if r == nil || r.Host == "" {
		return s.rootURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
