package mosaic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
)

// UploadAPI selects the generation of upload endpoints.
type UploadAPI string

const (
	UploadsAPI UploadAPI = "uploads" // newest: POST /uploads/video/get_upload_url (no body), /uploads/video/finalize_upload
	VideosAPI  UploadAPI = "videos"  // older:  POST /videos/get_upload_url (JSON metadata), /videos/finalize_upload
)

// UploadRequest asks for a signed upload target. Metadata is sent only for VideosAPI (all required there).
type UploadRequest struct {
	API           UploadAPI // "" means UploadsAPI
	Filename      string
	ContentType   string // see ContentTypeFor; "" => ContentTypeFor(Filename)
	FileSize      int64
	Width, Height int
	DurationMS    int64
}

// FormField is one storage policy field, sent verbatim before the file part.
type FormField struct{ Name, Value string }

// UploadTarget is where and how to POST the file bytes.
type UploadTarget struct {
	API         UploadAPI
	VideoID     string
	URL         string      // signed storage URL (secret query!)
	Fields      []FormField // every issued policy field, in the order received ("upload_fields" or older "fields")
	MaxFileSize int64       // 0 if not given
}

// ContentTypeFor maps a video file name to the MIME type Mosaic's examples use.
func ContentTypeFor(filename string) string {
	switch strings.ToLower(filepath.Ext(filename)) {
	case ".mp4":
		return "video/mp4"
	case ".mov":
		return "video/quicktime"
	case ".avi":
		return "video/x-msvideo"
	case ".webm":
		return "video/webm"
	case ".mkv":
		return "video/x-matroska"
	case ".m4v":
		return "video/x-m4v"
	}
	return "application/octet-stream"
}

func normalizeAPI(api UploadAPI) (UploadAPI, error) {
	switch api {
	case "", UploadsAPI:
		return UploadsAPI, nil
	case VideosAPI:
		return VideosAPI, nil
	}
	return "", fmt.Errorf("mosaic: unknown upload API %q (want %q or %q)", string(api), UploadsAPI, VideosAPI)
}

type videosUploadBody struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	FileSize    int64  `json:"file_size"`
	Width       int    `json:"width"`
	Height      int    `json:"height"`
	DurationMS  int64  `json:"duration_ms"`
}

// GetUploadURL asks for a signed storage target for one video. It is not retried: every call
// issues a new video id.
func (c *Client) GetUploadURL(ctx context.Context, req UploadRequest) (*UploadTarget, error) {
	api, err := normalizeAPI(req.API)
	if err != nil {
		return nil, err
	}
	call := apiCall{op: "get upload url", method: http.MethodPost}
	if api == UploadsAPI {
		call.url = c.endpoint(nil, "uploads", "video", "get_upload_url")
	} else {
		// Metadata is validated by the server (400, a permanent error), not guessed at here.
		ct := req.ContentType
		if ct == "" {
			ct = ContentTypeFor(req.Filename)
		}
		call.url = c.endpoint(nil, "videos", "get_upload_url")
		call.in = videosUploadBody{Filename: req.Filename, ContentType: ct, FileSize: req.FileSize,
			Width: req.Width, Height: req.Height, DurationMS: req.DurationMS}
	}
	var resp struct {
		VideoID      flexString      `json:"video_id"`
		UploadURL    string          `json:"upload_url"`
		Method       string          `json:"method"`
		UploadFields json.RawMessage `json:"upload_fields"`
		Fields       json.RawMessage `json:"fields"`
		MaxFileSize  int64           `json:"max_file_size_bytes"`
	}
	if err := c.doJSON(ctx, call, &resp); err != nil {
		return nil, err
	}
	raw := resp.UploadFields
	if len(raw) == 0 || string(raw) == "null" {
		raw = resp.Fields
	}
	fields, err := orderedFields(raw)
	if err != nil {
		return nil, fmt.Errorf("mosaic: get upload url: unreadable upload fields: %w", err)
	}
	if resp.VideoID == "" || resp.UploadURL == "" {
		return nil, errors.New("mosaic: get upload url: answer lacks video_id or upload_url")
	}
	if resp.Method != "" && !strings.EqualFold(resp.Method, http.MethodPost) {
		c.log.Warn("mosaic: upload method is not POST; using a multipart POST anyway", "method", resp.Method)
	}
	return &UploadTarget{
		API:         api,
		VideoID:     string(resp.VideoID),
		URL:         resp.UploadURL,
		Fields:      fields,
		MaxFileSize: resp.MaxFileSize,
	}, nil
}
