package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadConfigBacklogAndRunLimits(t *testing.T) {
	dir := testDir(t)
	cfg := loadOK(t, dir, `mosaic:
  api_key: ${MOSAIC_API_KEY}
limits:
  max_runs_per_day: 3
  backlog_confirm_over: 0
defaults:
  existing_files: ignore
  limits:
    max_runs_per_day: 2
folders:
  - input: in
    output: out
    agent_id: `+testAgent+`
  - input: in2
    output: out2
    agent_id: `+testAgent+`
    existing_files: process
    limits:
      max_runs_per_day: 0
`, defaultTestEnv)
	if cfg.Limits.MaxRunsPerDay != 3 || cfg.Limits.BacklogConfirmOver != 0 {
		t.Errorf("limits = %+v", cfg.Limits)
	}
	a, b := cfg.Folders[0], cfg.Folders[1]
	if a.ExistingFiles != ExistingIgnore || a.MaxRunsPerDay != 2 ||
		a.PipelineFolder().MaxRunsPerDay != 2 {
		t.Errorf("folder 0: existing_files %q, max_runs_per_day %d", a.ExistingFiles, a.MaxRunsPerDay)
	}
	if b.ExistingFiles != ExistingProcess || b.MaxRunsPerDay != 0 {
		t.Errorf("folder 1: existing_files %q, max_runs_per_day %d", b.ExistingFiles, b.MaxRunsPerDay)
	}
	_, err := Load(writeConfig(t, dir, strings.Replace(minimal, "folders:", `limits:
  max_runs_per_day: -1
defaults:
  existing_files: ask
folders:`, 1), 0o600), defaultTestEnv)
	var list ErrorList
	if !errors.As(err, &list) ||
		!hasProblem(list, wantProblem{"limits.max_runs_per_day", 4, "at least 0"}) ||
		!hasProblem(list, wantProblem{"defaults.existing_files", 6, "confirm, process, ignore"}) {
		t.Errorf("problems = %v", err)
	}
}

func TestPlanReloadDescribesAndKeepsRestartKeys(t *testing.T) {
	dir := testDir(t)
	for _, d := range []string{"social", "old"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	running := loadOK(t, dir, `mosaic:
  api_key: ${MOSAIC_API_KEY}
state_dir: state
http:
  listen: 127.0.0.1:8787
folders:
  - name: captions
    input: in
    output: out
    agent_id: `+testAgent+`
    settle: 10s
  - name: old
    input: old
    output: out-old
    agent_id: `+testAgent+`
`, defaultTestEnv)
	next := loadOK(t, dir, `mosaic:
  api_key: ${MOSAIC_API_KEY}
state_dir: state2
http:
  listen: 127.0.0.1:9999
limits:
  max_runs_per_day: 20
folders:
  - name: captions
    input: in
    output: out
    agent_id: 9b2f6d7e-3c1a-4e8b-a0f5-6d4c2b1e9a70
    settle: 30s
  - name: social
    input: social
    output: out-social
    agent_id: `+testAgent+`
`, testEnv(map[string]string{"MOSAIC_API_KEY": "mk_rotated_key"}))
	r := PlanReload(running, next)
	got := strings.Join(r.Changes, ", ")
	want := "+folder social, -folder old, folder captions: agent_id changed, settle 10s→30s, " +
		"limits.max_runs_per_day 0→20, mosaic.api_key changed"
	if got != want {
		t.Errorf("changes:\n got %s\nwant %s", got, want)
	}
	if strings.Contains(got, "mk_rotated_key") {
		t.Error("the API key reached the change list")
	}
	if !reflect.DeepEqual(r.NeedRestart, []string{"state_dir", "http.listen"}) {
		t.Errorf("need restart = %q", r.NeedRestart)
	}
	if r.Config.StateDir != running.StateDir || r.Config.HTTPListen != running.HTTPListen ||
		r.Config.APIKey != "mk_rotated_key" || len(r.Config.Folders) != 2 ||
		r.Config.Limits.MaxRunsPerDay != 20 {
		t.Errorf("applied config: state %s, listen %s, key changed %v, %d folders",
			r.Config.StateDir, r.Config.HTTPListen, r.Config.APIKey != running.APIKey, len(r.Config.Folders))
	}
	if same := PlanReload(running, running); len(same.Changes)+len(same.NeedRestart) != 0 {
		t.Errorf("no change reported as %q / %q", same.Changes, same.NeedRestart)
	}
}

func TestStateDirOfABrokenFile(t *testing.T) {
	dir := testDir(t)
	file := writeConfig(t, dir, "state_dir: ./state\nfolders: [unclosed\n", 0o600)
	if _, err := Load(file, defaultTestEnv); err == nil {
		t.Fatal("the broken file loaded")
	}
	file = writeConfig(t, dir, "state_dir: ./state\nfolders:\n  - input: missing\n", 0o600)
	if got := StateDirOf(file, defaultTestEnv); got != filepath.Join(dir, "state") {
		t.Errorf("StateDirOf = %q", got)
	}
	if got := StateDirOf(filepath.Join(dir, "none.yaml"), nil); got != DefaultStateDir() {
		t.Errorf("StateDirOf(missing file) = %q", got)
	}
}
