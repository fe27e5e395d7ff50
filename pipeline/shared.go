package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/mosaic-watch/mosaic-watch/store"
)

// SharedAgent records that an agent's runs are also started by another API client (a run was
// listed that no job of ours owns and no start of ours can explain). For a shared agent a lost
// run-start answer is never settled by inference: the job waits for a person.
type SharedAgent struct {
	AgentID string    `json:"agent_id"`
	Since   time.Time `json:"since"`
	RunIDs  []string  `json:"run_ids"` // the runs that showed it
}

func sharedKey(agentID string) string { return "shared_agent:" + agentID }

// LoadSharedAgent reads whether agentID was found shared; nil if not. It works on a read-only
// store, for status displays.
func LoadSharedAgent(ctx context.Context, st MetaReader, agentID string) (*SharedAgent, error) {
	v, err := st.GetMeta(ctx, sharedKey(agentID))
	if err != nil || v == "" {
		return nil, err
	}
	var s SharedAgent
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		return nil, fmt.Errorf("read shared-agent record of %s: %w", agentID, err)
	}
	return &s, nil
}

// ForgetSharedAgent clears the record, e.g. once the other client stopped using the agent.
func ForgetSharedAgent(ctx context.Context, st store.Store, agentID string) error {
	return st.SetMeta(ctx, sharedKey(agentID), "")
}

// SharedAgents lists the configured folders' agents that were found shared.
func (p *Pipeline) SharedAgents(ctx context.Context) ([]SharedAgent, error) {
	var out []SharedAgent
	seen := map[string]bool{}
	for _, f := range p.opts.Folders {
		if seen[f.AgentID] {
			continue
		}
		seen[f.AgentID] = true
		s, err := p.sharedState(ctx, f.AgentID)
		if err != nil {
			return nil, err
		}
		if s != nil {
			out = append(out, *s)
		}
	}
	return out, nil
}

func (p *Pipeline) agentShared(ctx context.Context, agentID string) (bool, error) {
	s, err := p.sharedState(ctx, agentID)
	return s != nil, err
}

func (p *Pipeline) sharedState(ctx context.Context, agentID string) (*SharedAgent, error) {
	a := p.agent(agentID)
	a.mu.Lock()
	defer a.mu.Unlock()
	// Another host sharing the store may find the agent shared: read it each time then.
	if !a.sharedLoaded || (p.opts.Shared && a.shared == nil) {
		s, err := LoadSharedAgent(ctx, p.st, agentID)
		if err != nil {
			return nil, transient("read shared-agent record", err)
		}
		a.shared, a.sharedLoaded = s, true
	}
	return a.shared, nil
}

// markShared records the agent as shared, with the runs that showed it.
func (p *Pipeline) markShared(ctx context.Context, agentID string, runIDs []string) error {
	s, err := p.sharedState(ctx, agentID)
	if err != nil {
		return err
	}
	a := p.agent(agentID)
	a.mu.Lock()
	defer a.mu.Unlock()
	rec := SharedAgent{AgentID: agentID, Since: p.now().UTC()}
	if s != nil {
		rec = *s
		rec.RunIDs = slices.Clone(s.RunIDs)
	}
	added := false
	for _, id := range runIDs {
		if !slices.Contains(rec.RunIDs, id) && len(rec.RunIDs) < 20 {
			rec.RunIDs = append(rec.RunIDs, id)
			added = true
		}
	}
	if s != nil && !added {
		return nil
	}
	b, _ := json.Marshal(rec)
	if err := p.st.SetMeta(ctx, sharedKey(agentID), string(b)); err != nil {
		return transient("record shared agent", err)
	}
	if s == nil {
		p.log.Warn("agent is also used by another client: runs were listed that mosaic-watch did not start; "+
			"from now on a lost run-start answer for this agent needs a person", "agent", agentID, "runs", runIDs)
	}
	a.shared = &rec
	return nil
}
