package mosaictest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
)

// runRequest is a validated POST /agent/{id}/run body.
type runRequest struct {
	videoIDs    []string
	inputs      []runInput
	firstSource string // first non-upload source (url / render id), for the content hash
	callbackURL string
}

var runBodyFields = map[string]bool{
	"video_ids": true, "video_urls": true, "node_render_ids": true, "mimir_assets": true, "signed_urls": true,
	"video_inputs": true, "update_params": true, "ignore_nodes": true, "callback_url": true,
}

var videoInputFields = map[string]bool{
	"agent_node_id": true, "video_ids": true, "video_urls": true, "node_render_ids": true, "mimir_assets": true,
	"input_clip_start_ms": true, "input_clip_end_ms": true,
}

// badRequest is a 400 validation_error.
type badRequest string

func (b badRequest) Error() string { return string(b) }

func invalid(format string, a ...any) error { return badRequest(fmt.Sprintf(format, a...)) }

// sources of one input (top level or one video_inputs entry).
type sources struct {
	videoIDs, videoURLs, renderIDs []string
	mimir                          int
}

func (s sources) empty() bool {
	return len(s.videoIDs)+len(s.videoURLs)+len(s.renderIDs)+s.mimir == 0
}

// readRunBody reads and structurally validates a run body (agent-independent checks).
func readRunBody(r *http.Request, strict bool) (map[string]json.RawMessage, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody))
	if err != nil {
		return nil, invalid("Could not read request body")
	}
	var body map[string]json.RawMessage
	if len(bytes.TrimSpace(b)) == 0 || json.Unmarshal(b, &body) != nil || body == nil {
		return nil, invalid("Request body must be a JSON object")
	}
	if strict {
		if k := unknownKey(body, runBodyFields); k != "" {
			return nil, invalid("Unknown field: %s", k)
		}
	}
	return body, nil
}

func unknownKey(m map[string]json.RawMessage, known map[string]bool) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if !known[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		return ""
	}
	return keys[0]
}

func strList(m map[string]json.RawMessage, field string) ([]string, error) {
	raw, ok := m[field]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var v []string
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, invalid("%s must be an array of strings", field)
	}
	for _, s := range v {
		if s == "" {
			return nil, invalid("%s must not contain empty strings", field)
		}
	}
	return v, nil
}

func readSources(m map[string]json.RawMessage, urlField string) (sources, error) {
	var s sources
	var err error
	if s.videoIDs, err = strList(m, "video_ids"); err != nil {
		return s, err
	}
	if s.videoURLs, err = strList(m, urlField); err != nil {
		return s, err
	}
	if urlField == "video_urls" {
		// Seed-era alias.
		more, err := strList(m, "signed_urls")
		if err != nil {
			return s, err
		}
		s.videoURLs = append(s.videoURLs, more...)
	}
	if s.renderIDs, err = strList(m, "node_render_ids"); err != nil {
		return s, err
	}
	if raw, ok := m["mimir_assets"]; ok && string(raw) != "null" {
		var assets []json.RawMessage
		if json.Unmarshal(raw, &assets) != nil {
			return s, invalid("mimir_assets must be an array")
		}
		s.mimir = len(assets)
	}
	for _, u := range s.videoURLs {
		if !httpURL(u) {
			return s, invalid("video_urls entries must be http(s) URLs")
		}
	}
	return s, nil
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// validateRunLocked checks body against agent a and the upload state.
func (s *Server) validateRunLocked(a *agent, body map[string]json.RawMessage) (*runRequest, error) {
	strict := s.opts.StrictRunBody
	top, err := readSources(body, "video_urls")
	if err != nil {
		return nil, err
	}
	var entries []map[string]json.RawMessage
	if raw, ok := body["video_inputs"]; ok && string(raw) != "null" {
		if json.Unmarshal(raw, &entries) != nil {
			return nil, invalid("video_inputs must be an array of objects")
		}
	}
	if !top.empty() && len(entries) > 0 {
		return nil, invalid("Send either video_inputs or the top-level video_ids/video_urls/node_render_ids, not both")
	}
	all := []sources{top}
	if len(entries) > 0 {
		all = all[:0]
		for i, e := range entries {
			if e == nil {
				return nil, invalid("video_inputs[%d] must be an object", i)
			}
			if strict {
				if k := unknownKey(e, videoInputFields); k != "" {
					return nil, invalid("video_inputs[%d]: unknown field %s", i, k)
				}
			}
			var node string
			if json.Unmarshal(e["agent_node_id"], &node) != nil || node == "" {
				return nil, invalid("video_inputs[%d].agent_node_id is required", i)
			}
			if !a.hasNode(node) {
				return nil, invalid("video_inputs[%d].agent_node_id %s is not a node of this agent", i, node)
			}
			if !a.isVideoInput(node) {
				return nil, invalid("video_inputs[%d].agent_node_id %s is not a Video Input node of this agent", i, node)
			}
			src, err := readSources(e, "video_urls")
			if err != nil {
				return nil, invalid("video_inputs[%d]: %v", i, err)
			}
			if src.empty() {
				return nil, invalid("video_inputs[%d] needs at least one of video_ids, video_urls, node_render_ids, mimir_assets", i)
			}
			all = append(all, src)
		}
	} else if top.empty() && a.videoInputs > 0 {
		return nil, invalid("Provide video_inputs or at least one of video_ids, video_urls, node_render_ids")
	}
	if err := checkInputShape(a, top, entries); err != nil {
		return nil, err
	}

	if raw, ok := body["update_params"]; ok && string(raw) != "null" {
		var up map[string]map[string]any
		if json.Unmarshal(raw, &up) != nil {
			return nil, invalid("update_params must be an object of objects keyed by agent_node_id")
		}
		keys := make([]string, 0, len(up))
		for k := range up {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !a.hasNode(k) {
				return nil, invalid("update_params key %s is not an agent_node_id of this agent", k)
			}
		}
	}
	ignore, err := strList(body, "ignore_nodes")
	if err != nil {
		return nil, err
	}
	for _, n := range ignore {
		if !a.hasNode(n) {
			return nil, invalid("ignore_nodes entry %s is not an agent_node_id of this agent", n)
		}
	}
	req := &runRequest{}
	if raw, ok := body["callback_url"]; ok && string(raw) != "null" {
		if json.Unmarshal(raw, &req.callbackURL) != nil || (req.callbackURL != "" && !httpURL(req.callbackURL)) {
			return nil, invalid("callback_url must be an http(s) URL")
		}
	}
	for _, src := range all {
		for _, vid := range src.videoIDs {
			u := s.uploads[vid]
			if u == nil || !u.finalized {
				return nil, invalid("Video %s not found or not finalized", vid)
			}
			req.videoIDs = append(req.videoIDs, vid)
			req.inputs = append(req.inputs, runInput{videoID: vid})
		}
		for _, v := range src.videoURLs {
			req.inputs = append(req.inputs, runInput{videoURL: v})
			if req.firstSource == "" {
				req.firstSource = v
			}
		}
		for _, id := range src.renderIDs {
			req.inputs = append(req.inputs, runInput{renderID: id})
			if req.firstSource == "" {
				req.firstSource = id
			}
		}
	}
	return req, nil
}

// checkInputShape applies Mosaic's rules for agents with no or several Video
// Input nodes: a generation-only agent takes no video input, and a multi-input
// agent needs one video_inputs entry per Video Input node (no top-level arrays).
func checkInputShape(a *agent, top sources, entries []map[string]json.RawMessage) error {
	switch {
	case a.videoInputs == 0 && (!top.empty() || len(entries) > 0):
		return invalid("This agent has no Video Input node (generation-only); send no video inputs")
	case a.videoInputs > 1 && !top.empty():
		return invalid("This agent has %d Video Input nodes: send video_inputs with one entry per node, not top-level video_ids/video_urls/node_render_ids", a.videoInputs)
	case a.videoInputs > 1:
		fed := map[string]bool{}
		for _, e := range entries {
			var node string
			_ = json.Unmarshal(e["agent_node_id"], &node)
			fed[node] = true
		}
		for _, n := range a.nodes[:a.videoInputs] {
			if !fed[n] {
				return invalid("video_inputs has no entry for Video Input node %s", n)
			}
		}
	}
	return nil
}
