package mosaic

import (
	"context"
	"errors"
	"net/http"
)

// VideoInput feeds one Video Input tile of the agent.
type VideoInput struct {
	AgentNodeID   string   `json:"agent_node_id"`
	VideoIDs      []string `json:"video_ids,omitempty"`
	VideoURLs     []string `json:"video_urls,omitempty"`
	NodeRenderIDs []string `json:"node_render_ids,omitempty"`
}

// RunRequest is the body of POST /agent/{agent_id}/run.
type RunRequest struct {
	VideoIDs     []string                  `json:"video_ids,omitempty"`
	VideoInputs  []VideoInput              `json:"video_inputs,omitempty"`
	VideoURLs    []string                  `json:"video_urls,omitempty"`
	UpdateParams map[string]map[string]any `json:"update_params,omitempty"`
	IgnoreNodes  []string                  `json:"ignore_nodes,omitempty"`
	CallbackURL  string                    `json:"callback_url,omitempty"`
}

// RunAgent starts a run. It is NEVER retried by the client: Mosaic has no idempotency key, so a
// repeat could bill twice. On error, OutcomeUnknown(err) tells whether the run may exist.
func (c *Client) RunAgent(ctx context.Context, agentID string, req RunRequest) (runID string, err error) {
	if agentID == "" {
		return "", errors.New("mosaic: run agent: empty agent id")
	}
	var resp struct {
		RunID flexString `json:"run_id"`
		ID    flexString `json:"id"`
	}
	call := apiCall{op: "run agent", method: http.MethodPost, url: c.endpoint(nil, "agent", agentID, "run"), in: req}
	if err := c.doJSON(ctx, call, &resp); err != nil {
		return "", err
	}
	runID = firstNonEmpty(string(resp.RunID), string(resp.ID))
	if runID == "" {
		// A 2xx without a run id: the run probably exists, we just cannot name it.
		return "", &APIError{Op: call.op, Method: call.method, URL: RedactURL(call.url), StatusCode: http.StatusOK,
			Detail: "answer lacks run_id"}
	}
	return runID, nil
}
