package mosaic

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
)

// VideoInputNodeType is the node type id of Mosaic's Video Input tile (Mosaic's skills repo,
// nodes/video-input.md): the node a run's video_ids feed.
const VideoInputNodeType = "9451e6ff-ac7f-4317-9055-a2f35f641b29"

// Agent is an agent definition with its nodes (tiles).
type Agent struct {
	ID, Name, Description string
	Nodes                 []AgentNode
}

// AgentNode is one tile of an agent. ID is its agent_node_id (the key for update_params,
// ignore_nodes and video_inputs).
type AgentNode struct {
	ID, TypeID, TypeName string
	ParamsUsed           map[string]any
}

type agentNodeJSON struct {
	AgentNodeID flexString `json:"agent_node_id"`
	ID          flexString `json:"id"`
	NodeType    struct {
		NodeTypeID   flexString `json:"node_type_id"`
		NodeTypeName string     `json:"node_type_name"`
		ID           flexString `json:"id"`
		Name         string     `json:"name"`
	} `json:"node_type"`
	// An older variant lists nodes flat: {"id", "node_type_id", "node_type_name"}.
	FlatTypeID   flexString     `json:"node_type_id"`
	FlatTypeName string         `json:"node_type_name"`
	ParamsUsed   map[string]any `json:"params_used"`
}

type agentJSON struct {
	ID          flexString      `json:"id"`
	AgentID     flexString      `json:"agent_id"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	AgentNodes  []agentNodeJSON `json:"agent_nodes"`
	Nodes       []agentNodeJSON `json:"nodes"` // older variant
}

// GetAgent fetches GET /agent/{agent_id}: {"agent":{...},"agent_nodes":[...]}.
func (c *Client) GetAgent(ctx context.Context, agentID string) (*Agent, error) {
	var resp struct {
		Agent      json.RawMessage `json:"agent"`
		AgentNodes []agentNodeJSON `json:"agent_nodes"`
		Nodes      []agentNodeJSON `json:"nodes"`
		agentJSON                  // tolerate a flat shape without the "agent" wrapper
	}
	call := apiCall{op: "get agent", method: http.MethodGet, url: c.endpoint(nil, "agent", agentID), safe: true}
	if err := c.doJSON(ctx, call, &resp); err != nil {
		return nil, err
	}
	a := resp.agentJSON
	if len(resp.Agent) > 0 && string(resp.Agent) != "null" {
		var inner agentJSON
		if err := json.Unmarshal(resp.Agent, &inner); err == nil {
			a = inner
		}
	}
	var nodes []agentNodeJSON
	for _, l := range [][]agentNodeJSON{resp.AgentNodes, resp.Nodes, a.AgentNodes, a.Nodes} {
		if len(l) > 0 {
			nodes = l
			break
		}
	}
	out := &Agent{ID: string(a.ID), Name: a.Name, Description: a.Description}
	if out.ID == "" {
		out.ID = string(a.AgentID)
	}
	if out.ID == "" {
		out.ID = agentID
	}
	for _, n := range nodes {
		node := AgentNode{
			ID:         firstNonEmpty(string(n.AgentNodeID), string(n.ID)),
			TypeID:     firstNonEmpty(string(n.NodeType.NodeTypeID), string(n.NodeType.ID), string(n.FlatTypeID)),
			TypeName:   firstNonEmpty(n.NodeType.NodeTypeName, n.NodeType.Name, n.FlatTypeName),
			ParamsUsed: n.ParamsUsed,
		}
		out.Nodes = append(out.Nodes, node)
	}
	return out, nil
}

// VideoInputs lists the agent's Video Input nodes (by type id, or by type name when an older
// answer gives no id).
func (a *Agent) VideoInputs() []AgentNode {
	var out []AgentNode
	for _, n := range a.Nodes {
		if n.TypeID == VideoInputNodeType || (n.TypeID == "" && strings.EqualFold(strings.TrimSpace(n.TypeName), "video input")) {
			out = append(out, n)
		}
	}
	return out
}

// Node returns the node with agent_node_id id.
func (a *Agent) Node(id string) (AgentNode, bool) {
	for _, n := range a.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return AgentNode{}, false
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
