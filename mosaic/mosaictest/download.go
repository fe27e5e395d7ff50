package mosaictest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
)

// signedURL builds <root>/<kind>/<id>?expires=<unix>&sig=<hmac>, valid for DownloadURLTTL from now.
func (s *Server) signedURL(root, kind, id string, now time.Time) string {
	exp := strconv.FormatInt(now.Add(s.opts.DownloadURLTTL).Unix(), 10)
	return root + "/" + kind + "/" + id + "?expires=" + exp + "&sig=" + s.sign(kind, id, exp)
}

func (s *Server) sign(kind, id, expires string) string {
	mac := hmac.New(sha256.New, s.signKey)
	mac.Write([]byte(kind + "\n" + id + "\n" + expires))
	return hex.EncodeToString(mac.Sum(nil))
}

// checkSignature writes a GCS-style 403 and returns false when the URL is bad or expired.
func (s *Server) checkSignature(w http.ResponseWriter, r *http.Request, kind, id string) bool {
	q := r.URL.Query()
	exp, sig := q.Get("expires"), q.Get("sig")
	if exp == "" || sig == "" || !hmac.Equal([]byte(sig), []byte(s.sign(kind, id, exp))) {
		writeXMLError(w, http.StatusForbidden, "AccessDenied", "Access denied. The request signature does not match.")
		return false
	}
	unix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || s.now().Unix() > unix {
		writeXMLError(w, http.StatusForbidden, "ExpiredToken", "Invalid argument. The provided token has expired.")
		return false
	}
	return true
}

// handleDownload serves output bytes with Range support (206/416) via ServeContent.
func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("render_id")
	if !s.checkSignature(w, r, "download", id) {
		return
	}
	s.mu.Lock()
	rd := s.renders[id]
	var agentID, hash string
	var finished time.Time
	ok := rd != nil && rd.index < rd.run.deliveredOutputs()
	if ok {
		agentID, hash, finished = rd.run.agent.id, rd.run.inputHash, rd.run.finishedAt
	}
	s.mu.Unlock()
	if !ok {
		writeXMLError(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	w.Header().Set("Content-Type", "video/mp4")
	http.ServeContent(w, r, "", finished, newOutputReader(agentID, hash, rd.index, s.opts.OutputSize))
}

// thumbnailBytes is a tiny stand-in JPEG for any id.
var thumbnailBytes = []byte("\xff\xd8\xff\xe0fake-mosaic-thumbnail\xff\xd9")

func (s *Server) handleThumbnail(w http.ResponseWriter, r *http.Request) {
	if !s.checkSignature(w, r, "thumbnail", r.PathValue("render_id")) {
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(thumbnailBytes))
}

// handleSource answers input video URLs; the fake does not keep uploaded bytes.
func (s *Server) handleSource(w http.ResponseWriter, r *http.Request) {
	if !s.checkSignature(w, r, "source", r.PathValue("token")) {
		return
	}
	writeXMLError(w, http.StatusNotFound, "NoSuchKey", "The fake does not retain uploaded bytes.")
}
