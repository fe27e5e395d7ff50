package mosaictest

import "time"

// outputsLocked renders r's delivered outputs with freshly signed URLs.
func (s *Server) outputsLocked(r *run, root string, now time.Time) []any {
	out := []any{}
	for i := range r.deliveredOutputs() {
		id := r.renders[i]
		out = append(out, map[string]any{
			"id":                  id,
			"video_url":           s.signedURL(root, "download", id, now),
			"thumbnail_url":       s.signedURL(root, "thumbnail", id, now),
			"premiere_prproj_url": nil,
			"completed_at":        tsOrNil(r.finishedAt),
			"original_node_id":    r.agent.editNode(),
		})
	}
	return out
}

// inputURL is what the API reports as an input's video_url.
func (s *Server) inputURL(in runInput, root string, now time.Time) string {
	switch {
	case in.videoID != "":
		return s.signedURL(root, "source", in.token, now)
	case in.renderID != "":
		return s.signedURL(root, "download", in.renderID, now)
	}
	return in.videoURL
}

func (s *Server) inputsLocked(r *run, root string, now time.Time) []any {
	out := []any{}
	for _, in := range r.inputs {
		thumb := any(nil)
		if in.videoID != "" {
			thumb = s.signedURL(root, "thumbnail", in.token, now)
		}
		out = append(out, map[string]any{"video_url": s.inputURL(in, root, now), "thumbnail_url": thumb})
	}
	return out
}

// runViewLocked is the newest GET /agent_run/{id} shape (no run_id echoed, as documented).
func (s *Server) runViewLocked(r *run, root string) map[string]any {
	now := s.now()
	v := map[string]any{
		"agent_id":           r.agent.id,
		"started_at":         ts(r.createdAt),
		"status":             r.status,
		"status_message":     r.statusMessage(),
		"needs_credits":      r.needsCredits(),
		"errors":             r.errorsView(),
		"node_status_counts": r.nodeCounts(),
		"inputs":             s.inputsLocked(r, root, now),
		"outputs":            s.outputsLocked(r, root, now),
	}
	if s.opts.OlderRunShape {
		olderShape(v)
	}
	return v
}

// olderShape strips fields that older API captures lack, to test client tolerance.
func olderShape(v map[string]any) {
	for _, k := range []string{"status_message", "needs_credits", "errors", "node_status_counts"} {
		delete(v, k)
	}
	for _, o := range v["outputs"].([]any) {
		for _, k := range []string{"id", "original_node_id", "premiere_prproj_url"} {
			delete(o.(map[string]any), k)
		}
	}
}

// listItemLocked is one entry of the list-runs endpoints: exactly the fields
// Mosaic documents for list items. No needs_credits, no created_at, and inputs
// as {video_url, thumbnail_url} without video ids.
func (s *Server) listItemLocked(r *run, root string) map[string]any {
	now := s.now()
	var trig any
	if r.triggeredBy != nil {
		trig = r.triggeredBy
	}
	return map[string]any{
		"run_id":             r.id,
		"agent_id":           r.agent.id,
		"status":             r.status,
		"status_message":     r.statusMessage(),
		"started_at":         ts(r.createdAt),
		"updated_at":         ts(r.updatedAt),
		"node_status_counts": r.nodeCounts(),
		"inputs":             s.inputsLocked(r, root, now),
		"outputs":            s.outputsLocked(r, root, now),
		"triggered_by":       trig,
	}
}

func (s *Server) nodesViewLocked(r *run) []any {
	out := []any{}
	for i, n := range r.nodesLocked() {
		out = append(out, map[string]any{
			"agent_node_id":    runtimeNodeID(r.id, i),
			"original_node_id": n.original,
			"status":           n.status,
			"status_message":   strOrNil(n.message),
			"errors":           n.errors,
			"node_type":        nodeType(r.agent, n.original),
			"needs_credits":    n.needsCredits,
		})
	}
	return out
}

// runtimeNodeID derives a stable runtime node id from the run id and position.
func runtimeNodeID(runID string, i int) string {
	h := sha256Hex(runID + "/" + string(rune('0'+i)))
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-8" + h[17:20] + "-" + h[20:32]
}
