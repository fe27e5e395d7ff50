package mosaictest

import (
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Node type ids the fake reports. The Video Input id is Mosaic's (skills repo,
// nodes/video-input.md); the edit id is made up.
const (
	VideoInputTypeID = "9451e6ff-ac7f-4317-9055-a2f35f641b29"
	editTypeID       = "c3d9a2f1-8b4e-4f7a-b6c5-1e2d3f4a5b60"
	// videoGenerationTypeID is Mosaic's Video Generation tile, the first node of a
	// generation-only agent.
	videoGenerationTypeID = "a2eb3ec2-da7a-4f97-94d2-a9a537548522"
)

type agent struct {
	id, name    string
	nodes       []string // the first videoInputs nodes are Video Input tiles
	videoInputs int      // 0 for a generation-only agent
	outputs     int
	outcome     Outcome
	duration    *time.Duration
	createdAt   time.Time
}

func (a *agent) hasNode(id string) bool { return slices.Contains(a.nodes, id) }

func (a *agent) isVideoInput(id string) bool {
	return slices.Contains(a.nodes[:a.videoInputs], id)
}

// editNode is where outputs come from (the last node).
func (a *agent) editNode() string { return a.nodes[len(a.nodes)-1] }

func (s *Server) addAgent(spec AgentSpec) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &agent{id: spec.ID, name: spec.Name, outputs: spec.Outputs, outcome: spec.Outcome, duration: spec.RunDuration,
		videoInputs: max(spec.VideoInputs, 1)}
	if spec.GenerationOnly {
		a.videoInputs = 0
	}
	if a.id == "" {
		a.id = newUUID()
	}
	if _, dup := s.agents[a.id]; dup {
		return "", fmt.Errorf("mosaictest: agent %s registered twice", a.id)
	}
	if a.name == "" {
		a.name = fmt.Sprintf("Fake agent %d", len(s.agentOrder)+1)
	}
	if len(spec.Nodes) == 0 {
		for range a.videoInputs + 1 {
			a.nodes = append(a.nodes, newUUID())
		}
	} else {
		a.nodes = slices.Clone(spec.Nodes)
	}
	if len(a.nodes) <= a.videoInputs {
		return "", fmt.Errorf("mosaictest: agent %s: %d nodes cannot hold %d Video Input nodes and an edit node", a.id, len(a.nodes), a.videoInputs)
	}
	if a.outputs <= 0 {
		a.outputs = 1
	}
	if a.outcome == "" {
		a.outcome = OutcomeCompleted
	}
	switch a.outcome {
	case OutcomeCompleted, OutcomePartial, OutcomeFailed, OutcomeNeedsCredits:
	default:
		return "", fmt.Errorf("mosaictest: agent %s: unknown outcome %q", a.id, a.outcome)
	}
	a.createdAt = s.now()
	s.agents[a.id] = a
	s.agentOrder = append(s.agentOrder, a.id)
	return a.id, nil
}

func nodeType(a *agent, node string) map[string]any {
	switch {
	case a.isVideoInput(node):
		return map[string]any{"node_type_id": VideoInputTypeID, "node_type_name": "Video Input",
			"docs_url": "https://docs.mosaic.so/nodes/video-input", "params_docs_url": nil}
	case a.videoInputs == 0 && node == a.nodes[0]:
		return map[string]any{"node_type_id": videoGenerationTypeID, "node_type_name": "Video Generation",
			"docs_url": "https://docs.mosaic.so/nodes/video-generation", "params_docs_url": nil}
	}
	return map[string]any{"node_type_id": editTypeID, "node_type_name": "AI Edit",
		"docs_url": "https://docs.mosaic.so/nodes/ai-edit", "params_docs_url": "https://docs.mosaic.so/nodes/ai-edit/params"}
}

func (s *Server) handleGetAgent(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	a := s.agents[r.PathValue("agent_id")]
	s.mu.Unlock()
	if a == nil {
		writeError(w, http.StatusNotFound, "not_found", "Agent not found")
		return
	}
	nodes := make([]any, 0, len(a.nodes))
	for _, n := range a.nodes {
		nodes = append(nodes, map[string]any{"agent_node_id": n, "node_type": nodeType(a, n), "params_used": map[string]any{}})
	}
	conns := make([]any, 0, len(a.nodes))
	for i := 1; i < len(a.nodes); i++ {
		conns = append(conns, map[string]any{"source_agent_node_id": a.nodes[i-1], "target_agent_node_id": a.nodes[i]})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"agent": map[string]any{"id": a.id, "name": a.name, "description": "Fake agent (" + string(a.outcome) + ")",
			"visibility": "private", "created_at": ts(a.createdAt), "updated_at": ts(a.createdAt)},
		"agent_nodes": nodes,
		"connections": conns,
	})
}

// handleListAgents serves GET /agents (all agents on one page).
func (s *Server) handleListAgents(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	list := make([]any, 0, len(s.agentOrder))
	for _, id := range s.agentOrder {
		a := s.agents[id]
		list = append(list, map[string]any{"id": a.id, "name": a.name, "description": "Fake agent (" + string(a.outcome) + ")",
			"created_at": ts(a.createdAt), "updated_at": ts(a.createdAt)})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"agents": list, "next_cursor": nil})
}

const fakeOrgID = "3c9f1e7a-5b2d-4a8c-9e6f-1d2c3b4a5f60"

func (s *Server) handleWhoAmI(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	legacy := s.opts.LegacyWhoAmI
	s.mu.Unlock()
	created := time.Date(2025, 8, 6, 12, 0, 0, 0, time.UTC)
	if legacy {
		writeJSON(w, http.StatusOK, map[string]any{
			"user_id": "5f0c8a52-3a8e-4d7e-9a43-2f1f6f9d0a01", "email": "dev@example.com", "is_admin": false,
			"api_key_id": "0b6d7f3e-1c2a-4e5b-8f9a-7d6c5b4a3f21", "created_at": ts(created), "last_used_at": ts(s.now()),
		})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"organization_id": fakeOrgID, "organization_name": "Fake Org",
		"organization_slug": "fake-org", "created_at": ts(created), "last_used_at": ts(s.now()), "scopes": nil,
	})
}
