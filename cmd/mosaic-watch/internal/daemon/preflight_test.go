package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

// loadDaemon writes a configuration with one folder for agent (and extra folder lines) and
// builds a daemon from it.
func loadDaemon(t *testing.T, fake *mosaictest.Server, agent, folderExtra string) (*Daemon,
	*testenv.SyncBuffer) {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"in", "out"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	body := fmt.Sprintf(`mosaic:
  base_url: %s
  api_key: %s
state_dir: ./state
folders:
  - name: clips
    input: ./in
    output: ./out
    agent_id: %s
%s`, fake.URL(), mosaictest.DefaultAPIKey, agent, folderExtra)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.SyncBuffer{}
	d, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)), "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, logs
}

// An agent Mosaic cannot run as configured stops the start, naming the file, line and key.
func TestPreflightStopsABadConfiguration(t *testing.T) {
	fake := testenv.StartFake(t, mosaictest.Options{Agents: []mosaictest.AgentSpec{
		{ID: "a0000000-0000-4000-8000-000000000001", Nodes: []string{"in-node", "edit-node"}},
		{ID: "a0000000-0000-4000-8000-000000000002", VideoInputs: 2},
	}})
	cases := []struct{ agent, extra, want string }{
		{"a0000000-0000-4000-8000-000000000001", "    update_params:\n      nope: {x: 1}\n",
			`config.yaml:10: folders[0].update_params: "nope" is not a node`},
		{"a0000000-0000-4000-8000-000000000002", "",
			"config.yaml:9: folders[0].agent_id: agent a0000000-0000-4000-8000-000000000002"},
		{"a0000000-0000-4000-8000-0000000000ff", "", "folders[0].agent_id: Mosaic has no agent"},
	}
	for _, c := range cases {
		d, _ := loadDaemon(t, fake, c.agent, c.extra)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := d.Run(ctx)
		cancel()
		var problems config.ErrorList
		if !errors.As(err, &problems) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("agent %s: Run = %v; want a configuration problem %q", c.agent, err, c.want)
		}
	}
	if n := fake.Stats().Requests["POST run_agent 200"]; n != 0 {
		t.Errorf("%d runs started", n)
	}
}

// No answer from Mosaic at start is no reason to stop: the daemon works on and checks again.
func TestPreflightWithoutAnAnswerWarnsAndWorksOn(t *testing.T) {
	fake := testenv.StartFake(t, mosaictest.Options{Agents: []mosaictest.AgentSpec{{}}})
	fake.InjectFault(mosaictest.RouteGetAgent,
		mosaictest.Fault{Kind: mosaictest.FaultStatus, Status: 503, Count: 8})
	d, logs := loadDaemon(t, fake, fake.AgentIDs()[0], "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	testenv.WaitFor(t, 30*time.Second, "the check to succeed later", func() bool {
		return strings.Contains(logs.String(), "agent checked")
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if !strings.Contains(logs.String(), "could not check the folder's agent") {
		t.Error("no warning about the unanswered check")
	}
}

// /healthz answers while the agents are still being checked: a container's HEALTHCHECK (the
// `health` command) must not see a daemon that hangs because Mosaic is slow to answer at start.
func TestHealthAnswersWhileAgentsAreChecked(t *testing.T) {
	fake := testenv.StartFake(t, mosaictest.Options{Agents: []mosaictest.AgentSpec{{}}})
	fake.InjectFault(mosaictest.RouteGetAgent,
		mosaictest.Fault{Kind: mosaictest.FaultSlow, Delay: 10 * time.Second, Count: 1})
	addr := testenv.FreePort(t)
	d, logs := loadDaemon(t, fake, fake.AgentIDs()[0], "http:\n  listen: "+addr+"\n")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	client := &http.Client{Timeout: time.Second}
	testenv.WaitFor(t, 5*time.Second, "/healthz to answer during the agent check", func() bool {
		resp, err := client.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	if strings.Contains(logs.String(), "agent checked") {
		t.Fatal("the agent check was not under way: the test proves nothing")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}
