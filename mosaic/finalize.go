package mosaic

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

// FinalizeUpload tells Mosaic the bytes are in storage. It is safe to repeat, so it is retried on
// transient errors and also on 400 "not uploaded", which can happen briefly right after the
// storage POST.
func (c *Client) FinalizeUpload(ctx context.Context, api UploadAPI, videoID string) error {
	api, err := normalizeAPI(api)
	if err != nil {
		return err
	}
	if videoID == "" {
		return errors.New("mosaic: finalize upload: empty video id")
	}
	prefix := []string{"uploads", "video"}
	if api == VideosAPI {
		prefix = []string{"videos"}
	}
	var resp struct {
		VideoID flexString `json:"video_id"`
		Status  string     `json:"status"`
	}
	call := apiCall{
		op:        "finalize upload",
		method:    http.MethodPost,
		url:       c.endpoint(nil, append(prefix, "finalize_upload")...),
		in:        map[string]string{"video_id": videoID},
		safe:      true,
		retryAlso: isNotUploaded,
	}
	if err := c.doJSON(ctx, call, &resp); err != nil {
		return err
	}
	if resp.VideoID != "" && string(resp.VideoID) != videoID {
		c.log.Warn("mosaic: finalize answered a different video id", "want", videoID, "got", string(resp.VideoID))
	}
	if resp.Status != "" && !strings.EqualFold(resp.Status, "ok") {
		c.log.Warn("mosaic: finalize answered an unexpected status", "video_id", videoID, "status", resp.Status)
	}
	return nil
}

// isNotUploaded recognizes finalize's 400 "File not uploaded" (storage not yet consistent).
func isNotUploaded(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest {
		return false
	}
	d := strings.ToLower(ae.Detail + " " + ae.Code)
	return strings.Contains(d, "not uploaded") || strings.Contains(d, "not yet uploaded") ||
		strings.Contains(d, "not_uploaded") || strings.Contains(d, "upload not found")
}
