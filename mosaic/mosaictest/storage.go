package mosaictest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
)

const maxFieldSize = 64 << 10

// storageError is a GCS-style rejection.
type storageError struct {
	status  int
	code    string
	message string
}

func (e *storageError) Error() string { return e.code + ": " + e.message }

func badForm(format string, a ...any) *storageError {
	return &storageError{http.StatusBadRequest, "InvalidArgument", fmt.Sprintf(format, a...)}
}

// handleStorage is the fake GCS host: it accepts a POST-policy multipart
// upload, streaming the file part through SHA-256 without keeping it.
func (s *Server) handleStorage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.rejectStorage(w, &storageError{http.StatusMethodNotAllowed, "MethodNotAllowed",
			"The specified method is not allowed against this resource; use a multipart/form-data POST."})
		return
	}
	s.mu.Lock()
	s.uploadsNow++
	if s.uploadsNow > s.stats.PeakConcurrentUploads {
		s.stats.PeakConcurrentUploads = s.uploadsNow
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.uploadsNow--
		s.mu.Unlock()
	}()

	u, sum, n, serr := s.receiveForm(r)
	if serr != nil {
		s.rejectStorage(w, serr)
		return
	}
	s.mu.Lock()
	u.uploaded = true
	u.sha256 = sum
	u.size = n
	s.stats.StoragePosts++
	s.stats.BytesUploaded += n
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) rejectStorage(w http.ResponseWriter, e *storageError) {
	s.mu.Lock()
	s.stats.StorageRejected++
	s.mu.Unlock()
	s.log.Debug("mosaictest: storage rejected", "status", e.status, "code", e.code, "msg", e.message)
	if e.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	writeXMLError(w, e.status, e.code, e.message)
}

// receiveForm validates the form against the issued policy and streams the
// file part. It returns the upload, the file's SHA-256 hex and its size.
func (s *Server) receiveForm(r *http.Request) (*upload, string, int64, *storageError) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, "", 0, badForm("Content-Type must be multipart/form-data with a boundary")
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	fields := map[string]string{}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, "", 0, badForm("Missing file part: the form must end with a part named \"file\"")
		}
		if err != nil {
			return nil, "", 0, badForm("Malformed multipart body")
		}
		name := part.FormName()
		if name == "" {
			return nil, "", 0, badForm("Form part without a name")
		}
		if name != "file" {
			if _, dup := fields[name]; dup {
				return nil, "", 0, badForm("Duplicate form field %q", name)
			}
			v, err := io.ReadAll(io.LimitReader(part, maxFieldSize+1))
			if err != nil || len(v) > maxFieldSize {
				return nil, "", 0, badForm("Form field %q unreadable or too large", name)
			}
			fields[name] = string(v)
			continue
		}
		u, serr := s.checkPolicy(fields)
		if serr != nil {
			return nil, "", 0, serr
		}
		sum, n, serr := s.streamFile(part)
		if serr != nil {
			return nil, "", 0, serr
		}
		if _, err := mr.NextPart(); !errors.Is(err, io.EOF) {
			return nil, "", 0, badForm("The file part must be the last part of the form; found more after it")
		}
		return u, sum, n, nil
	}
}

// checkPolicy verifies the fields seen before the file part.
func (s *Server) checkPolicy(fields map[string]string) (*upload, *storageError) {
	if len(fields) == 0 {
		return nil, badForm("The file part came before the policy fields; all fields must precede the file part")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.uploadsByKey[fields["key"]]
	if u == nil {
		return nil, &storageError{http.StatusBadRequest, "InvalidPolicyDocument", "Missing or unknown key field (fields must precede the file part)"}
	}
	for name, want := range u.fields {
		got, ok := fields[name]
		if !ok {
			return nil, &storageError{http.StatusBadRequest, "InvalidPolicyDocument", fmt.Sprintf("Missing policy field %q (fields must precede the file part)", name)}
		}
		if got != want {
			return nil, &storageError{http.StatusBadRequest, "InvalidPolicyDocument", fmt.Sprintf("Policy field %q does not match the signed policy", name)}
		}
	}
	for name := range fields {
		if _, ok := u.fields[name]; !ok {
			return nil, &storageError{http.StatusBadRequest, "InvalidPolicyDocument", fmt.Sprintf("Unexpected form field %q not allowed by the policy", name)}
		}
	}
	if s.now().After(u.expiresAt) {
		return nil, &storageError{http.StatusForbidden, "ExpiredToken", "Invalid argument. The policy has expired."}
	}
	return u, nil
}

// streamFile hashes and counts the file part, enforcing the size limit.
func (s *Server) streamFile(part io.Reader) (string, int64, *storageError) {
	h := sha256.New()
	limit := s.opts.MaxFileSize
	n, err := io.Copy(h, io.LimitReader(part, limit+1))
	if err != nil {
		return "", 0, badForm("Reading the file part failed")
	}
	if n > limit {
		return "", 0, &storageError{http.StatusBadRequest, "EntityTooLarge",
			fmt.Sprintf("Your proposed upload is larger than the maximum object size specified in your Policy Document (%d bytes).", limit)}
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
