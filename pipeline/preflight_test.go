package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
)

func TestPreflight(t *testing.T) {
	fake, err := mosaictest.NewServer(mosaictest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	single := fake.AddAgent(mosaictest.AgentSpec{Nodes: []string{"in", "edit"}})
	multi := fake.AddAgent(mosaictest.AgentSpec{VideoInputs: 2})
	gen := fake.AddAgent(mosaictest.AgentSpec{GenerationOnly: true})
	client, err := mosaic.New(mosaic.Options{BaseURL: fake.URL(), APIKey: mosaictest.DefaultAPIKey, RetryBaseDelay: time.Millisecond, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		folder pipeline.Folder
		key    string // "" = fine
		text   string
	}{
		{"fine", pipeline.Folder{AgentID: single, UpdateParams: map[string]map[string]any{"edit": {"x": 1}}, IgnoreNodes: []string{"edit"}}, "", ""},
		{"unknown agent", pipeline.Folder{AgentID: "a0000000-0000-4000-8000-0000000000ff"}, "agent_id", "has no agent"},
		{"bad update_params key", pipeline.Folder{AgentID: single, UpdateParams: map[string]map[string]any{"nope": {"x": 1}}}, "update_params", `"nope" is not a node`},
		{"bad ignore_nodes entry", pipeline.Folder{AgentID: single, IgnoreNodes: []string{"gone"}}, "ignore_nodes", `"gone" is not a node`},
		{"several video inputs", pipeline.Folder{AgentID: multi}, "agent_id", "not supported yet"},
		{"generation-only", pipeline.Folder{AgentID: gen}, "agent_id", "generation-only agents are not supported yet"},
	}
	for _, c := range cases {
		c.folder.Name = "clips"
		_, err := pipeline.Preflight(context.Background(), client, c.folder)
		var pe *pipeline.PreflightError
		switch {
		case c.key == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.key != "" && (!errors.As(err, &pe) || pe.Problems[0].Key != c.key || !strings.Contains(err.Error(), c.text) || !strings.Contains(err.Error(), `folder "clips"`)):
			t.Errorf("%s: %v; want a problem with %s mentioning %q", c.name, err, c.key, c.text)
		}
	}
	// A rejected key says nothing about the folder: no PreflightError (the daemon pauses on it).
	other, _ := mosaic.New(mosaic.Options{BaseURL: fake.URL(), APIKey: "mk_not_this_one", MaxRetries: -1})
	var pe *pipeline.PreflightError
	_, err = pipeline.Preflight(context.Background(), other, pipeline.Folder{Name: "clips", AgentID: single})
	if err == nil || errors.As(err, &pe) || !mosaic.IsAuth(err) || !strings.Contains(err.Error(), "api_key") {
		t.Errorf("bad key: %v", err)
	}
	// No answer is not a configuration problem: the caller retries.
	fake.InjectFault(mosaictest.RouteGetAgent, mosaictest.Fault{Kind: mosaictest.FaultStatus, Status: 503, Count: 1})
	_, err = pipeline.Preflight(context.Background(), client, pipeline.Folder{Name: "clips", AgentID: single})
	if err == nil || errors.As(err, &pe) || !mosaic.IsRetryable(err) {
		t.Errorf("503: %v; want a retryable error that is no PreflightError", err)
	}
}
