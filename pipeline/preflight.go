package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
)

// PreflightError says why a folder's agent cannot be used as configured. Each problem names the
// folder's configuration key at fault, so the caller can point at the line.
type PreflightError struct {
	Folder   string // the folder's name
	AgentID  string
	Problems []PreflightProblem
}

// PreflightProblem is one thing wrong with a folder's agent.
type PreflightProblem struct {
	Key string // "agent_id", "update_params", "ignore_nodes"
	Msg string
}

func (e *PreflightError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Key + ": " + p.Msg
	}
	return fmt.Sprintf("folder %q: %s", e.Folder, strings.Join(parts, "; "))
}

// Preflight checks folder f's agent with GET /agent/{id} before any file is run: the agent
// exists and the key can read it; every update_params and ignore_nodes key is a node of it; it
// has exactly one Video Input node (agents with several, and generation-only agents, are not
// supported yet). A problem with the configuration is a *PreflightError. Any other error (no
// network, 5xx, 429: mosaic.IsRetryable; a key that is rejected or may not read agents:
// mosaic.IsAuth) says nothing about the folder's configuration, so the caller warns and checks
// again later rather than stopping.
func Preflight(ctx context.Context, api *mosaic.Client, f Folder) (*mosaic.Agent, error) {
	a, err := api.GetAgent(ctx, f.AgentID)
	problem := func(key, format string, args ...any) *PreflightError {
		return &PreflightError{Folder: f.Name, AgentID: f.AgentID, Problems: []PreflightProblem{{key, fmt.Sprintf(format, args...)}}}
	}
	switch {
	case mosaic.IsNotFound(err):
		return nil, problem("agent_id", "Mosaic has no agent %s (or this API key cannot see it); copy the id from the agent's page on the Mosaic dashboard", f.AgentID)
	case mosaic.IsAuth(err):
		// The key, not the folder: the daemon pauses on a rejected key and goes on when it
		// works again, so this is no reason to refuse the configuration.
		return nil, fmt.Errorf("check the agent of folder %q: the API key may not read agents "+
			"(check mosaic.api_key and its scopes, agents:read): %w", f.Name, err)
	case mosaic.IsPermanent(err):
		return nil, problem("agent_id", "Mosaic refused to describe agent %s: %v", f.AgentID, err)
	case err != nil:
		return nil, fmt.Errorf("check the agent of folder %q: %w", f.Name, err)
	}
	pe := &PreflightError{Folder: f.Name, AgentID: f.AgentID}
	add := func(key, format string, args ...any) {
		pe.Problems = append(pe.Problems, PreflightProblem{key, fmt.Sprintf(format, args...)})
	}
	switch inputs := a.VideoInputs(); {
	case len(inputs) == 0:
		add("agent_id", "agent %s (%s) has no Video Input node: generation-only agents are not supported yet", f.AgentID, a.Name)
	case len(inputs) > 1:
		add("agent_id", "agent %s (%s) has %d Video Input nodes: agents that take several videos are not supported yet", f.AgentID, a.Name, len(inputs))
	}
	keys := make([]string, 0, len(f.UpdateParams))
	for k := range f.UpdateParams {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, ok := a.Node(k); !ok {
			add("update_params", "%q is not a node of agent %s; its nodes are %s", k, f.AgentID, nodeList(a))
		}
	}
	for _, k := range f.IgnoreNodes {
		if _, ok := a.Node(k); !ok {
			add("ignore_nodes", "%q is not a node of agent %s; its nodes are %s", k, f.AgentID, nodeList(a))
		}
	}
	if len(pe.Problems) > 0 {
		return a, pe
	}
	return a, nil
}

func nodeList(a *mosaic.Agent) string {
	parts := make([]string, len(a.Nodes))
	for i, n := range a.Nodes {
		parts[i] = n.ID
		if n.TypeName != "" {
			parts[i] += " (" + n.TypeName + ")"
		}
	}
	return strings.Join(parts, ", ")
}
