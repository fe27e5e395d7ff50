package config

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const testAgent = "123e4567-e89b-12d3-a456-789012345678"

// testEnv is a lookupEnv backed by a map.
func testEnv(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

var defaultTestEnv = testEnv(map[string]string{"MOSAIC_API_KEY": "mk_test_secret_value"})

// testDir returns a temp dir holding the folders in, in2 and out.
func testDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"in", "in2", "out"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// writeConfig writes body, with {{DIR}} replaced by dir, to dir/config.yaml.
func writeConfig(t *testing.T, dir, body string, mode fs.FileMode) string {
	t.Helper()
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(body, "{{DIR}}", dir)), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, mode); err != nil { // umask-proof
		t.Fatal(err)
	}
	return file
}

// loadOK loads body and fails the test on any error.
func loadOK(t *testing.T, dir, body string, env func(string) (string, bool)) *Config {
	t.Helper()
	cfg, err := Load(writeConfig(t, dir, body, 0o600), env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

const minimal = `mosaic:
  api_key: ${MOSAIC_API_KEY}
folders:
  - input: {{DIR}}/in
    output: {{DIR}}/out
    agent_id: 123e4567-e89b-12d3-a456-789012345678
`

type wantProblem struct {
	path string
	line int
	frag string
}

func TestLoadConfigProblems(t *testing.T) {
	tests := []struct {
		name string
		body string
		env  map[string]string // nil => MOSAIC_API_KEY only
		want []wantProblem
	}{
		{
			name: "unknown top-level key with suggestion",
			body: minimal + "sate_dir: /tmp/x\n",
			want: []wantProblem{{"sate_dir", 7, `unknown key; did you mean "state_dir"?`}},
		},
		{
			name: "unknown nested key with suggestion",
			body: "mosaic:\n  api_key: ${MOSAIC_API_KEY}\n  pol_interval: 5s\n" +
				minimal[strings.Index(minimal, "folders:"):],
			want: []wantProblem{{"mosaic.pol_interval", 3, `did you mean "poll_interval"?`}},
		},
		{
			name: "unknown folder key with suggestion",
			body: minimal + "    agentid: x\n",
			want: []wantProblem{{"folders[0].agentid", 7, `did you mean "agent_id"?`}},
		},
		{
			name: "folder setting at the top level says where it belongs",
			body: minimal + "settle: 10s\n",
			want: []wantProblem{{"settle", 7, "belongs under defaults: or a folder entry"}},
		},
		{
			name: "folder-only key in defaults says where it belongs",
			body: minimal + "defaults:\n  name: x\n",
			want: []wantProblem{{"defaults.name", 8, "unknown key here; name belongs under a folder entry"}},
		},
		{
			name: "invalid variable name",
			body: minimal + "    name: ${MY-VAR}\n",
			want: []wantProblem{{"folders[0].name", 7, "invalid variable reference"}},
		},
		{
			name: "wrong type duration",
			body: minimal + "defaults:\n  settle: abc\n",
			want: []wantProblem{{"defaults.settle", 8,
				`expected a duration like 30s, 2m or 1h30m, got "abc"`}},
		},
		{
			name: "duration without unit",
			body: minimal + "    settle: 10\n",
			want: []wantProblem{{"folders[0].settle", 7, "has no unit"}},
		},
		{
			name: "zero duration",
			body: minimal + "    poll_interval: 0s\n",
			want: []wantProblem{{"folders[0].poll_interval", 7, "must be a positive duration, got 0s"}},
		},
		{
			name: "negative settle",
			body: minimal + "    settle: -1s\n",
			want: []wantProblem{{"folders[0].settle", 7, "must be a positive duration"}},
		},
		{
			name: "wrong type bool",
			body: minimal + "    recursive: \"yes please\"\n",
			want: []wantProblem{{"folders[0].recursive", 7, `expected true or false, got "yes please"`}},
		},
		{
			name: "wrong type list",
			body: minimal + "    include: \"*.mov\"\n",
			want: []wantProblem{{"folders[0].include", 7, "expected a list"}},
		},
		{
			name: "folders not a list",
			body: "mosaic:\n  api_key: ${MOSAIC_API_KEY}\nfolders:\n  input: {{DIR}}/in\n",
			want: []wantProblem{{"folders", 4, "expected a list of folders"}},
		},
		{
			name: "limit below one",
			body: minimal + "limits:\n  uploads: 0\n",
			want: []wantProblem{{"limits.uploads", 8, "must be at least 1"}},
		},
		{
			name: "unknown enum value lists the allowed ones",
			body: minimal + "    mode: evnts\n",
			want: []wantProblem{{"folders[0].mode", 7,
				`unknown value "evnts"; allowed: auto, events, poll (did you mean "events"?)`}},
		},
		{
			name: "bad size",
			body: minimal + "    limits:\n      max_file_size: 5 parsecs\n",
			want: []wantProblem{{"folders[0].limits.max_file_size", 8, `unknown size unit "parsecs"`}},
		},
		{
			name: "non-loopback listen needs a token",
			body: minimal + "http:\n  listen: 0.0.0.0:8787\n",
			want: []wantProblem{{"http.listen", 8, "set http.token"}},
		},
		{
			name: "listen on every interface needs a token",
			body: minimal + "http:\n  listen: :8787\n",
			want: []wantProblem{{"http.listen", 8, "non-loopback"}},
		},
		{
			name: "base_url must be http(s)",
			body: strings.Replace(minimal, "mosaic:\n", "mosaic:\n  base_url: ftp://x\n", 1),
			want: []wantProblem{{"mosaic.base_url", 2, "expected an http:// or https:// URL"}},
		},
		{
			name: "duplicate key",
			body: minimal + "    agent_id: 123e4567-e89b-12d3-a456-789012345678\n",
			want: []wantProblem{{"folders[0].agent_id", 7, "duplicate key (first set on line 6)"}},
		},
		{
			name: "missing agent_id names the folder index",
			body: minimal + "  - input: {{DIR}}/in2\n    output: {{DIR}}/out2\n",
			want: []wantProblem{{"folders[1].agent_id", 7, "missing"}},
		},
		{
			name: "agent_id with a slash",
			body: strings.Replace(minimal, testAgent, "agents/123", 1),
			want: []wantProblem{{"folders[0].agent_id", 6, "must not contain spaces or '/'"}},
		},
		{
			name: "missing input key",
			body: "mosaic:\n  api_key: ${MOSAIC_API_KEY}\nfolders:\n  - output: {{DIR}}/out\n    " +
				"agent_id: x\n",
			want: []wantProblem{{"folders[0].input", 4, "missing; set the folder to watch"}},
		},
		{
			name: "input folder does not exist",
			body: strings.Replace(minimal, "{{DIR}}/in\n", "{{DIR}}/nope\n", 1),
			want: []wantProblem{{"folders[0].input", 4, "nope does not exist"}},
		},
		{
			name: "input is a file",
			body: strings.Replace(minimal, "{{DIR}}/in\n", "{{DIR}}/config.yaml\n", 1),
			want: []wantProblem{{"folders[0].input", 4, "is not a folder"}},
		},
		{
			name: "output inside input",
			body: strings.Replace(minimal, "{{DIR}}/out", "{{DIR}}/in/out", 1),
			want: []wantProblem{{"folders[0].output", 5, "is inside the input folder"}},
		},
		{
			name: "output same as input",
			body: strings.Replace(minimal, "{{DIR}}/out", "{{DIR}}/in/", 1),
			want: []wantProblem{{"folders[0].output", 5, "same as the input folder"}},
		},
		{
			name: "input inside output",
			body: strings.Replace(minimal, "{{DIR}}/out", "{{DIR}}", 1),
			want: []wantProblem{{"folders[0].output", 5, "is inside the output folder"}},
		},
		{
			name: "two folders on the same input",
			body: minimal + "  - input: {{DIR}}/in/../in\n    output: {{DIR}}/out2\n" +
				"    agent_id: " + testAgent + "\n",
			want: []wantProblem{{"folders[1].input", 7, "same input folder as folders[0] (line 4)"}},
		},
		{
			name: "one input inside another",
			body: minimal + "  - input: {{DIR}}\n    output: {{DIR}}/../out2\n" +
				"    agent_id: " + testAgent + "\n",
			want: []wantProblem{{"folders[1].input", 7, "contains folders[0].input"}},
		},
		{
			name: "state_dir inside an input",
			body: minimal + "state_dir: in/.state\n",
			want: []wantProblem{{"state_dir", 7, "inside the input folder of folders[0]"}},
		},
		{
			name: "YAML syntax error reports the line",
			body: minimal + "defaults:\n  settle: [10s\n",
			want: []wantProblem{{"", 8, "YAML syntax error: did not find expected ',' or ']'"}},
		},
		{
			name: "bad indentation reports the offending line",
			body: minimal + "   settle: 5s\nlog:\n  level: info\n",
			want: []wantProblem{{"", 7, "YAML syntax error: did not find expected '-' indicator"}},
		},
		{
			name: "mapping value in a plain scalar",
			body: minimal + "    name: a: b\n",
			want: []wantProblem{{"", 7,
				"YAML syntax error: mapping values are not allowed in this context"}},
		},
		{
			name: "tab indentation",
			body: "mosaic:\n\tapi_key: x\n",
			want: []wantProblem{{"", 2, "not tabs"}},
		},
		{
			name: "unset variable names the key and variable",
			body: minimal + "    name: ${FOLDER_NAME}\n",
			want: []wantProblem{{"folders[0].name", 7, "environment variable FOLDER_NAME is not set"}},
		},
		{
			name: "api key variable unset",
			body: minimal,
			env:  map[string]string{},
			want: []wantProblem{{"mosaic.api_key", 2, "environment variable MOSAIC_API_KEY is not set"}},
		},
		{
			name: "unterminated variable",
			body: minimal + "    name: ${OOPS\n",
			want: []wantProblem{{"folders[0].name", 7, "unterminated ${"}},
		},
		{
			name: "both key sources",
			body: strings.Replace(minimal, "  api_key: ${MOSAIC_API_KEY}\n",
				"  api_key: mk_literal_secret\n  api_key_file: key.txt\n", 1),
			want: []wantProblem{{"mosaic.api_key_file", 3, "not both"}},
		},
		{
			name: "no key source",
			body: strings.Replace(minimal, "  api_key: ${MOSAIC_API_KEY}\n", "  poll_interval: 5s\n", 1),
			want: []wantProblem{{"mosaic.api_key", 1,
				"missing; set api_key: ${MOSAIC_API_KEY} or api_key_file"}},
		},
		{
			name: "unreadable key file names the path",
			body: strings.Replace(minimal, "  api_key: ${MOSAIC_API_KEY}\n",
				"  api_key_file: secrets/key.txt\n", 1),
			want: []wantProblem{{"mosaic.api_key_file", 2,
				filepath.Join("secrets", "key.txt") + ": "}},
		},
		{
			name: "move without move_to",
			body: minimal + "    after_success: move\n",
			want: []wantProblem{{"folders[0].after_success_move_to", 7,
				"required when after_success is move"}},
		},
		{
			name: "move without move_to inherited from defaults",
			body: minimal + "defaults:\n  after_failure: move\n",
			want: []wantProblem{{"folders[0].after_failure_move_to", 8,
				"required when after_failure is move"}},
		},
		{
			name: "move_to inside the input",
			body: minimal + "    after_failure: move\n    after_failure_move_to: in/failed\n",
			want: []wantProblem{{"folders[0].after_failure_move_to", 8, "inside its own input folder"}},
		},
		{
			name: "move_to inside another folder's input",
			body: minimal + "    after_success: move\n    after_success_move_to: in2/done\n" +
				"  - input: {{DIR}}/in2\n    output: {{DIR}}/out2\n    agent_id: " + testAgent + "\n",
			want: []wantProblem{{"folders[0].after_success_move_to", 8,
				"inside the input folder of folders[1]"}},
		},
		{
			name: "update_params must be a map of maps",
			body: minimal + "    update_params:\n      node-1: bold\n",
			want: []wantProblem{{"folders[0].update_params.node-1", 8,
				"expected a mapping of parameter names to values"}},
		},
		{
			name: "empty include list",
			body: minimal + "    include: []\n",
			want: []wantProblem{{"folders[0].include", 7, "matches no file"}},
		},
		{
			name: "empty file",
			body: "",
			want: []wantProblem{{"mosaic.api_key", 0, "missing"},
				{"folders", 0, "folders: at least one folder is required"}},
		},
		{
			name: "empty folders list",
			body: "mosaic:\n  api_key: ${MOSAIC_API_KEY}\nfolders: []\n",
			want: []wantProblem{{"folders", 3, "at least one folder is required"}},
		},
		{
			name: "shutdown timeout above maximum",
			body: minimal + "shutdown_timeout: 5m\n",
			want: []wantProblem{{"shutdown_timeout", 7, "must be at most 1m0s"}},
		},
		{
			name: "retry max below base",
			body: minimal + "retry:\n  base: 2m\n  max: 1m\n  attempts: 0\n",
			want: []wantProblem{{"retry.max", 9, "must not be shorter than retry.base (2m0s)"},
				{"retry.attempts", 10, "must be at least 1"}},
		},
		{
			name: "merge keys refused",
			body: minimal + "    <<: {settle: 5s}\n",
			want: []wantProblem{{"folders[0].<<", 7, "merge keys"}},
		},
		{
			name: "folder entry not a mapping",
			body: minimal + "  - just-a-path\n",
			want: []wantProblem{{"folders[1]", 7, "expected a folder entry"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := testDir(t)
			env := defaultTestEnv
			if tc.env != nil {
				env = testEnv(tc.env)
			}
			file := writeConfig(t, dir, tc.body, 0o600)
			cfg, err := Load(file, env)
			if err == nil {
				t.Fatalf("Load succeeded (%+v); want problems %+v", cfg, tc.want)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not an ErrorList: %v", err, err)
			}
			if list[0].File != file {
				t.Errorf("Error.File = %q, want %q", list[0].File, file)
			}
			if len(list) != len(tc.want) {
				t.Errorf("got %d problems, want %d:\n%v", len(list), len(tc.want), err)
			}
			for _, w := range tc.want {
				if !hasProblem(list, w) {
					t.Errorf("missing problem %+v in:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "mk_") {
				t.Errorf("error text leaks the API key:\n%v", err)
			}
		})
	}
}

func hasProblem(list ErrorList, w wantProblem) bool {
	for _, p := range list {
		if p.Path == w.path && p.Line == w.line && strings.Contains(p.Error(), w.frag) {
			return true
		}
	}
	return false
}

func TestConfigErrorFormatCollectsAllProblems(t *testing.T) {
	dir := testDir(t)
	file := writeConfig(t, dir, `mosaic:
  api_key: ${MOSAIC_API_KEY}
  poll_intervall: 5s
defaults:
  settle: abc
folders:
  - input: {{DIR}}/in
    output: {{DIR}}/out
    agent_id: `+testAgent+`
  - input: {{DIR}}/in2
    output: {{DIR}}/out2
`, 0o600)
	_, err := Load(file, defaultTestEnv)
	if err == nil {
		t.Fatal("want an error")
	}
	want := strings.Join([]string{
		file + `:3: mosaic.poll_intervall: unknown key; did you mean "poll_interval"?`,
		file + `:5: defaults.settle: expected a duration like 30s, 2m or 1h30m, got "abc"`,
		file + `:10: folders[1].agent_id: missing; set the Mosaic agent ID ` +
			"(from the agent's page on the Mosaic dashboard)",
	}, "\n")
	if err.Error() != want {
		t.Errorf("Error() =\n%s\nwant\n%s", err, want)
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(missing, defaultTestEnv)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
	_, osErr := os.ReadFile(missing) // the system's own words, which differ between systems
	want := "nope.yaml: cannot read config file: " + errors.Unwrap(osErr).Error()
	if !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want it to contain %q", err, want)
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	dir := testDir(t)
	cfg := loadOK(t, dir, minimal, defaultTestEnv)
	want := &Config{
		File:            filepath.Join(dir, "config.yaml"),
		BaseURL:         "https://api.mosaic.so",
		APIKey:          "mk_test_secret_value",
		PollInterval:    10 * time.Second,
		ReconcileAfter:  2 * time.Minute,
		MaxRetryAfter:   10 * time.Minute,
		UploadAPI:       "uploads",
		StateDir:        DefaultStateDir(),
		Database:        Database{Lease: DefaultLease},
		LogLevel:        slog.LevelInfo,
		LogFormat:       "text",
		Limits:          Limits{Uploads: 2, ActiveRuns: 8, Downloads: 2, BacklogConfirmOver: 50},
		ShutdownTimeout: 10 * time.Second,
		ScanInterval:    time.Hour,
		Retry:           Retry{Base: 30 * time.Second, Max: time.Hour, Attempts: 8},
		Folders: []Folder{{
			Index:           0,
			Name:            "in",
			Input:           filepath.Join(dir, "in"),
			Output:          filepath.Join(dir, "out"),
			AgentID:         testAgent,
			Recursive:       true,
			Settle:          10 * time.Second,
			IncompleteAfter: 30 * time.Minute,
			Mode:            "auto",
			PollInterval:    10 * time.Second,
			AfterSuccess:    "keep",
			AfterFailure:    "keep",
			MaxFileSize:     5 << 30,
			OnSourceChange:  "finish",
			ExistingFiles:   "confirm",
		}},
	}
	for i := range cfg.Folders { // where keys were set is checked in TestProblemAfterLoading
		cfg.Folders[i].at, cfg.Folders[i].src = nil, location{}
	}
	if cfg.lookupEnv == nil {
		t.Error("Load did not keep its lookupEnv for Reload")
	}
	cfg.lookupEnv = nil // funcs never compare equal
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Load =\n%+v\nwant\n%+v", cfg, want)
	}
}

func TestLoadConfigDefaultsInheritance(t *testing.T) {
	dir := testDir(t)
	cfg := loadOK(t, dir, `mosaic:
  api_key: ${MOSAIC_API_KEY}
defaults:
  settle: 30s
  recursive: false
  mode: poll
  include: ["*.mov"]
  exclude: ["*_proxy.mov"]
  after_success: move
  after_success_move_to: done
  limits:
    max_file_size: 500MB
folders:
  - input: in
    output: out
    agent_id: `+testAgent+`
  - name: second
    input: in2
    output: out2
    agent_id: `+testAgent+`
    settle: 1500ms
    recursive: true
    include: ["*.mp4", "*.mxf"]
    after_success: delete
    limits:
      max_file_size: 1GiB
`, defaultTestEnv)
	a, b := cfg.Folders[0], cfg.Folders[1]
	if a.Settle != 30*time.Second || a.Recursive || a.Mode != "poll" || a.AfterSuccess != "move" ||
		a.AfterSuccessMoveTo != filepath.Join(dir, "done") || a.MaxFileSize != 500_000_000 {
		t.Errorf("folder 0 did not inherit defaults: %+v", a)
	}
	if !reflect.DeepEqual(a.Include, []string{"*.mov"}) ||
		!reflect.DeepEqual(a.Exclude, []string{"*_proxy.mov"}) {
		t.Errorf("folder 0 include/exclude = %q/%q", a.Include, a.Exclude)
	}
	if b.Name != "second" || b.Index != 1 || b.Settle != 1500*time.Millisecond || !b.Recursive ||
		b.Mode != "poll" ||
		b.AfterSuccess != "delete" || b.AfterSuccessMoveTo != "" || b.MaxFileSize != 1<<30 {
		t.Errorf("folder 1 overrides wrong: %+v", b)
	}
	if !reflect.DeepEqual(b.Include, []string{"*.mp4", "*.mxf"}) ||
		!reflect.DeepEqual(b.Exclude, []string{"*_proxy.mov"}) {
		t.Errorf("folder 1 include should replace the default list, exclude inherit: %q/%q", b.Include,
			b.Exclude)
	}
	if a.Name != "in" {
		t.Errorf("default name = %q, want base name of input", a.Name)
	}
}

func TestLoadConfigEnvExpansion(t *testing.T) {
	dir := testDir(t)
	env := testEnv(map[string]string{
		"MOSAIC_API_KEY": "mk_from_env",
		"VIDEO_ROOT":     dir,
		"SETTLE":         "45s",
		"STYLE":          "bold: yes # not a comment",
		"COUNT":          "3",
	})
	cfg := loadOK(t, dir, `mosaic:
  api_key: ${MOSAIC_API_KEY}
folders:
  - name: cost $5 and $${LITERAL} and $$
    input: ${VIDEO_ROOT}/in
    output: ${VIDEO_ROOT}/out
    agent_id: `+testAgent+`
    settle: ${SETTLE}
    update_params:
      node-1:
        style: ${STYLE}
        count: ${COUNT}
        quoted: "${COUNT}"
        plain: 7
        flag: true
        list: [a, 2]
        nested: {k: v, nothing: null}
`, env)
	f := cfg.Folders[0]
	if cfg.APIKey != "mk_from_env" {
		t.Errorf("APIKey not expanded")
	}
	if f.Name != "cost $5 and ${LITERAL} and $$" {
		t.Errorf("Name = %q", f.Name)
	}
	if f.Input != filepath.Join(dir, "in") || f.Settle != 45*time.Second {
		t.Errorf("Input = %q, Settle = %v", f.Input, f.Settle)
	}
	want := map[string]map[string]any{"node-1": {
		"style":  "bold: yes # not a comment",
		"count":  int64(3),
		"quoted": "3",
		"plain":  7,
		"flag":   true,
		"list":   []any{"a", 2},
		"nested": map[string]any{"k": "v", "nothing": nil},
	}}
	if !reflect.DeepEqual(f.UpdateParams, want) {
		t.Errorf("UpdateParams =\n%#v\nwant\n%#v", f.UpdateParams, want)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("unexpected warnings: %q", cfg.Warnings)
	}
}

func TestLoadConfigAPIKeyFile(t *testing.T) {
	dir := testDir(t)
	if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets", "key"), []byte("  mk_from_file\n"),
		0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir()) // relative to the config file, not the working directory
	body := strings.Replace(minimal, "  api_key: ${MOSAIC_API_KEY}\n",
		"  api_key_file: secrets/key\n", 1)
	cfg := loadOK(t, dir, body, testEnv(nil))
	if cfg.APIKey != "mk_from_file" {
		t.Errorf("APIKey not read and trimmed from the file")
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("unexpected warnings: %q", cfg.Warnings)
	}
}

func TestLoadConfigLiteralKeyWarning(t *testing.T) {
	literal := strings.Replace(minimal, "${MOSAIC_API_KEY}", "mk_literal_secret", 1)
	tests := []struct {
		name  string
		body  string
		mode  fs.FileMode
		wants []string // fragments; nil => no warning
	}{
		{"literal key in 0644 file", literal, 0o644,
			[]string{":2: mosaic.api_key: ", "other users can read (mode 0644)", "chmod 600 ",
				"${MOSAIC_API_KEY}", "api_key_file"}},
		{"literal key in 0600 file", literal, 0o600, nil},
		{"key from env in 0644 file", minimal, 0o644, nil},
	}
	for _, tc := range tests {
		if runtime.GOOS == "windows" {
			// No Unix modes there (a writable file reports 0666): the loader never warns.
			tc.wants = nil
		}
		t.Run(tc.name, func(t *testing.T) {
			dir := testDir(t)
			file := writeConfig(t, dir, tc.body, tc.mode)
			cfg, err := Load(file, defaultTestEnv)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wants == nil {
				if len(cfg.Warnings) != 0 {
					t.Errorf("unexpected warnings: %q", cfg.Warnings)
				}
				return
			}
			if len(cfg.Warnings) != 1 {
				t.Fatalf("warnings = %q, want one", cfg.Warnings)
			}
			w := cfg.Warnings[0]
			for _, frag := range append(tc.wants, file) {
				if !strings.Contains(w, frag) {
					t.Errorf("warning %q lacks %q", w, frag)
				}
			}
			if strings.Contains(w, "mk_literal_secret") {
				t.Errorf("warning leaks the key: %q", w)
			}
		})
	}
}

func TestLoadConfigWarnings(t *testing.T) {
	dir := testDir(t)
	body := strings.Replace(minimal, testAgent, "my-agent", 1)
	cfg := loadOK(t, dir, body, testEnv(map[string]string{"MOSAIC_API_KEY": "sk_other"}))
	want := []string{
		filepath.Join(dir, "config.yaml") + ":2: mosaic.api_key: the API key does not start with mk_; " +
			"is it a Mosaic API key?",
		filepath.Join(dir, "config.yaml") + `:6: folders[0].agent_id: agent ID "my-agent" ` +
			`does not look like a UUID (123e4567-e89b-12d3-a456-789012345678)`,
	}
	if !reflect.DeepEqual(cfg.Warnings, want) {
		t.Errorf("Warnings =\n%q\nwant\n%q", cfg.Warnings, want)
	}
}

func TestLoadConfigRelativePaths(t *testing.T) {
	dir := testDir(t)
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home directory")
	}
	t.Chdir(t.TempDir())
	cfg := loadOK(t, dir, `mosaic:
  api_key: ${MOSAIC_API_KEY}
state_dir: ./state/../state
folders:
  - input: in
    output: ./out/sub/
    agent_id: `+testAgent+`
    after_success: move
    after_success_move_to: ../done
    after_failure: move
    after_failure_move_to: ~/failed
`, defaultTestEnv)
	f := cfg.Folders[0]
	got := []string{cfg.StateDir, f.Input, f.Output, f.AfterSuccessMoveTo, f.AfterFailureMoveTo}
	want := []string{filepath.Join(dir, "state"), filepath.Join(dir, "in"),
		filepath.Join(dir, "out", "sub"),
		filepath.Join(filepath.Dir(dir), "done"), filepath.Join(home, "failed")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paths =\n%q\nwant\n%q", got, want)
	}
}

func TestLoadConfigFixture(t *testing.T) {
	// testdata/relative.yaml uses relative paths only: copy it next to fresh folders.
	data, err := os.ReadFile(filepath.Join("testdata", "relative.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := testDir(t)
	cfg := loadOK(t, dir, string(data), defaultTestEnv)
	if len(cfg.Folders) != 2 || cfg.Folders[1].Input != filepath.Join(dir, "in2") ||
		cfg.Folders[1].Mode != "events" {
		t.Errorf("fixture folders = %+v", cfg.Folders)
	}
}

func TestLoadConfigSymlinkedOutputInsideInput(t *testing.T) {
	dir := testDir(t)
	if err := os.Symlink(filepath.Join(dir, "in"), filepath.Join(dir, "link")); err != nil {
		t.Skip("symlinks unavailable:", err)
	}
	_, err := Load(writeConfig(t, dir,
		strings.Replace(minimal, "{{DIR}}/out", "{{DIR}}/link/new/out", 1), 0o600), defaultTestEnv)
	var list ErrorList
	if !errors.As(err, &list) ||
		!hasProblem(list, wantProblem{"folders[0].output", 5, "is inside the input folder"}) {
		t.Errorf("err = %v; want output inside input through the symlink", err)
	}
}

func TestLoadConfigOtherSections(t *testing.T) {
	dir := testDir(t)
	cfg := loadOK(t, dir, minimal+`scan_interval: 2m
retry:
  base: 50ms
  max: 500ms
  attempts: 30
http:
  listen: 127.0.0.1:8787
  token: ${TOKEN}
webhook:
  secret: s3cret
  public_url: https://watch.example.com/hook/
log:
  level: DEBUG
  format: json
`, testEnv(map[string]string{"MOSAIC_API_KEY": "mk_x", "TOKEN": "tok"}))
	if cfg.HTTPListen != "127.0.0.1:8787" || cfg.HTTPToken != "tok" || cfg.WebhookSecret != "s3cret" ||
		cfg.WebhookPublicURL != "https://watch.example.com/hook" || cfg.LogLevel != slog.LevelDebug ||
		cfg.LogFormat != "json" ||
		cfg.ScanInterval != 2*time.Minute ||
		cfg.Retry != (Retry{Base: 50 * time.Millisecond, Max: 500 * time.Millisecond, Attempts: 30}) {
		t.Errorf("cfg = %+v", cfg)
	}
}

func TestLoadConfigHTTPListen(t *testing.T) {
	dir := testDir(t)
	env := testEnv(map[string]string{"MOSAIC_API_KEY": "mk_x"})
	for _, addr := range []string{"127.0.0.1:0", "localhost:8787", "[::1]:8787"} {
		cfg := loadOK(t, dir, minimal+"http:\n  listen: \""+addr+"\"\n", env)
		if cfg.HTTPListen != addr || cfg.HTTPToken != "" {
			t.Errorf("%s: listen %q token %q", addr, cfg.HTTPListen, cfg.HTTPToken)
		}
	}
	// The token may come before or after listen.
	cfg := loadOK(t, dir, minimal+"http:\n  token: t0k\n  listen: 0.0.0.0:8787\n", env)
	if cfg.HTTPListen != "0.0.0.0:8787" || cfg.HTTPToken != "t0k" {
		t.Errorf("listen %q token %q", cfg.HTTPListen, cfg.HTTPToken)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"5GiB", 5 << 30, true},
		{"500MB", 500_000_000, true},
		{"1.5 GB", 1_500_000_000, true},
		{"1048576", 1 << 20, true},
		{"10kib", 10 << 10, true},
		{"12 B", 12, true},
		{"5 GiBs", 0, false},
		{"-1", 0, false},
		{"lots", 0, false},
	}
	for _, tc := range tests {
		got, err := parseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestStateDirFor(t *testing.T) {
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	none := env(nil)
	tests := []struct {
		goos   string
		root   bool
		getenv func(string) string
		want   string
	}{
		{"linux", true, none, "/var/lib/mosaic-watch"},
		{"linux", false, none, "/home/ed/.local/state/mosaic-watch"},
		{"linux", false, env(map[string]string{"XDG_STATE_HOME": "/xdg"}), "/xdg/mosaic-watch"},
		{"linux", false, env(map[string]string{"XDG_STATE_HOME": "relative"}),
			"/home/ed/.local/state/mosaic-watch"},
		{"darwin", true, none, "/Library/Application Support/mosaic-watch"},
		{"darwin", false, none, "/home/ed/Library/Application Support/mosaic-watch"},
		{"windows", true, env(map[string]string{"ProgramData": "/pd"}),
			filepath.Join("/pd", "mosaic-watch")},
	}
	for _, tc := range tests {
		if got := stateDirFor(tc.goos, tc.root, tc.getenv, "/home/ed"); got != tc.want {
			t.Errorf("stateDirFor(%s, root=%v) = %q, want %q", tc.goos, tc.root, got, tc.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	tests := map[string]string{
		"agent":        "agent_id",
		"agentId":      "agent_id",
		"agent-id":     "agent_id",
		"ouptut":       "output",
		"updateParams": "update_params",
		"banana":       "",
	}
	for in, want := range tests {
		if got := suggest(in, folderKeys); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestConfigExampleValidates loads config.example.yaml with its folders moved into a temp dir.
func TestConfigExampleValidates(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	body := strings.ReplaceAll(string(data), "/srv/video", filepath.ToSlash(dir))
	body = strings.ReplaceAll(body, "state_dir: /var/lib/mosaic-watch", "state_dir: state")
	for _, d := range []string{"inbox/captions", "inbox/social"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := loadOK(t, dir, body, testEnv(map[string]string{"MOSAIC_API_KEY": "mk_example"}))
	if len(cfg.Warnings) != 0 {
		t.Errorf("example config warnings: %q", cfg.Warnings)
	}
	if len(cfg.Folders) != 2 ||
		cfg.Folders[1].AfterSuccessMoveTo != filepath.Join(dir, "done", "social") {
		t.Errorf("example folders = %+v", cfg.Folders)
	}
}

// TestConfigExampleDocumentsEveryKey checks that config.example.yaml mentions every schema key
// (set or commented out) and that every key it mentions is known to the schema.
func TestConfigExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	commented := regexp.MustCompile(`^\s*#\s?(?:\s*- )?\s*([a-z_]+):(?:\s|$)`)
	for i, line := range strings.Split(string(data), "\n") {
		if m := commented.FindStringSubmatch(line); m != nil {
			documented[m[1]] = true
			if _, ok := keyHome[m[1]]; !ok {
				t.Errorf("config.example.yaml:%d: commented key %q is not in the schema", i+1, m[1])
			}
		}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				documented[n.Content[i].Value] = true
				if n.Content[i].Value != "update_params" { // node ids and parameters are free-form
					walk(n.Content[i+1])
				}
			}
		}
	}
	walk(&doc)
	var missing []string
	for key := range keyHome {
		if !documented[key] {
			missing = append(missing, key)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("config.example.yaml does not document keys %q", missing)
	}
}

func TestOnSourceChange(t *testing.T) {
	dir := testDir(t)
	cfg := loadOK(t, dir, minimal+"    on_source_change: cancel\n", defaultTestEnv)
	if got := cfg.Folders[0].PipelineFolder().OnSourceChange; got != "cancel" {
		t.Fatalf("on_source_change = %q", got)
	}
	_, err := Load(writeConfig(t, dir, minimal+"    on_source_change: stop\n", 0o600), defaultTestEnv)
	if err == nil || !strings.Contains(err.Error(), "on_source_change") ||
		!strings.Contains(err.Error(), "finish") {
		t.Fatalf("bad value: %v", err)
	}
}

// A problem found after loading (Mosaic says a node does not exist) points at the line that set
// the key, or at the folder entry when the key was not set.
func TestProblemAfterLoading(t *testing.T) {
	dir := testDir(t)
	cfg := loadOK(t, dir, minimal+"    update_params:\n      nope: {x: 1}\n", defaultTestEnv)
	f := &cfg.Folders[0]
	e := cfg.Problem(f, "update_params", `"nope" is not a node`)
	if e.Path != "folders[0].update_params" || e.Line != 7 ||
		!strings.Contains(e.Error(), "config.yaml:7: ") {
		t.Fatalf("problem at %+v", e)
	}
	if e := cfg.Problem(f, "ignore_nodes", "x"); e.Path != "folders[0].ignore_nodes" || e.Line != 4 {
		t.Fatalf("unset key placed at %+v", e)
	}
}

// TestStateDirFromEnvironment: MOSAIC_WATCH_STATE_DIR (set by the container image) is the
// state_dir when the file sets none; a state_dir in the file wins, with a warning; a relative
// value is refused.
func TestStateDirFromEnvironment(t *testing.T) {
	env := func(stateDir string) func(string) (string, bool) {
		return testEnv(map[string]string{"MOSAIC_API_KEY": "mk_test_secret_value",
			EnvStateDir: stateDir})
	}
	dir := testDir(t)
	volume := filepath.Join(dir, "volume") // the image's /state, as an absolute path here
	cfg := loadOK(t, dir, minimal, env(volume+string(filepath.Separator)))
	if cfg.StateDir != volume {
		t.Errorf("state_dir = %q, want %s from %s", cfg.StateDir, volume, EnvStateDir)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %q", cfg.Warnings)
	}

	cfg = loadOK(t, dir, "state_dir: {{DIR}}/state\n"+minimal, env(volume))
	if want := filepath.Join(dir, "state"); cfg.StateDir != want {
		t.Errorf("state_dir = %q, want the file's %q", cfg.StateDir, want)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], ":1: state_dir:") ||
		!strings.Contains(cfg.Warnings[0], EnvStateDir+"="+volume+" is ignored") {
		t.Errorf("warnings = %q, want one on state_dir naming %s", cfg.Warnings, EnvStateDir)
	}
	cfg = loadOK(t, dir, "state_dir: {{DIR}}/volume\n"+minimal, env(volume))
	if len(cfg.Warnings) != 0 {
		t.Errorf("the same state_dir in file and environment warns: %q", cfg.Warnings)
	}

	_, err := Load(writeConfig(t, dir, minimal, 0o600), env("state"))
	if err == nil || !strings.Contains(err.Error(), EnvStateDir) ||
		!strings.Contains(err.Error(), "absolute") {
		t.Errorf("relative %s: err = %v, want a problem naming it", EnvStateDir, err)
	}
}

// TestLoadHTTPIgnoresFolders: the health command must still read http.listen and http.token when
// an input folder is gone (that is what it asks the daemon about), but not a broken file.
func TestLoadHTTPIgnoresFolders(t *testing.T) {
	dir := testDir(t)
	body := minimal + "http:\n  listen: 0.0.0.0:8787\n  token: ${TOKEN}\n"
	env := testEnv(map[string]string{"MOSAIC_API_KEY": "mk_test_secret_value", "TOKEN": "s3cret"})
	if err := os.Remove(filepath.Join(dir, "in")); err != nil {
		t.Fatal(err)
	}
	file := writeConfig(t, dir, body, 0o600)
	if _, err := Load(file, env); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Load with the input folder gone: %v", err)
	}
	h, err := LoadHTTP(file, env)
	if err != nil {
		t.Fatalf("LoadHTTP: %v", err)
	}
	if h.Listen != "0.0.0.0:8787" || h.Token != "s3cret" || h.File != file {
		t.Errorf("LoadHTTP = %+v", h)
	}
	h, err = LoadHTTP(writeConfig(t, dir, minimal, 0o600), env)
	if err != nil || h.Listen != "" {
		t.Errorf("no http section: %+v, %v", h, err)
	}
	_, err = LoadHTTP(writeConfig(t, dir, minimal+"http:\n  listne: 127.0.0.1:1\n", 0o600), env)
	if err == nil || !strings.Contains(err.Error(), "listne") {
		t.Errorf("unknown key under http: err = %v", err)
	}
}
