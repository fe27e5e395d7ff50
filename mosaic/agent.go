package mosaic

import (
	"context"
	"encoding/json"
	"net/http"
)

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
	ParamsUsed map[string]any `json:"params_used"`
}

type agentJSON struct {
	ID          flexString      `json:"id"`
	AgentID     flexString      `json:"agent_id"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	AgentNodes  []agentNodeJSON `json:"agent_nodes"`
}

// GetAgent fetches GET /agent/{agent_id}: {"agent":{...},"agent_nodes":[...]}.
func (c *Client) GetAgent(ctx context.Context, agentID string) (*Agent, error) {
	var resp struct {
		Agent      json.RawMessage `json:"agent"`
		AgentNodes []agentNodeJSON `json:"agent_nodes"`
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
	nodes := resp.AgentNodes
	if len(nodes) == 0 {
		nodes = a.AgentNodes
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
			TypeID:     firstNonEmpty(string(n.NodeType.NodeTypeID), string(n.NodeType.ID)),
			TypeName:   firstNonEmpty(n.NodeType.NodeTypeName, n.NodeType.Name),
			ParamsUsed: n.ParamsUsed,
		}
		out.Nodes = append(out.Nodes, node)
	}
	return out, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
