package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs one command line in-process.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cliEnv{stdout: &out, stderr: &errb,
		lookupEnv: func(string) (string, bool) { return "", false }}
	code = run(context.Background(), env, args)
	return code, out.String(), errb.String()
}

// writeServiceTestConfig writes a valid config with one folder (dir/in -> dir/out); mosaicExtra
// adds lines under mosaic:, topExtra top-level sections.
func writeServiceTestConfig(t *testing.T, dir, agent, mosaicExtra, topExtra string) string {
	t.Helper()
	for _, d := range []string{"in", "out"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "config.yaml")
	body := "mosaic:\n  api_key: mk_test_0123456789abcdef\n" + mosaicExtra +
		"state_dir: ./state\n" + topExtra +
		"folders:\n  - input: ./in\n    output: ./out\n    agent_id: " + agent + "\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServiceInstallDryRunUsesAbsoluteConfigPath(t *testing.T) {
	dir := t.TempDir()
	writeServiceTestConfig(t, dir, "123e4567-e89b-12d3-a456-789012345678", "", "")
	t.Chdir(dir)
	code, out, errOut := runCLI(t, "service", "install", "--dry-run", "--config", "config.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	abs := filepath.Join(dir, "config.yaml")
	if !strings.Contains(out, abs) {
		t.Errorf("definition does not carry the absolute config path %s:\n%s", abs, out)
	}
	if strings.Contains(strings.ReplaceAll(out, abs, ""), "config.yaml") {
		t.Errorf("definition mentions the config by a relative path:\n%s", out)
	}
}

func TestServiceCommandErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad,
		[]byte("mosaic:\n  api_key: mk_x\nfolders:\n  - input: ./missing\n    output: ./out\n    "+
			"agnt_id: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"service", "install", "--config", bad}, exitUsage, "agnt_id"},
		{[]string{"service", "install"}, exitUsage, "--config FILE is required"},
		{[]string{"service"}, exitUsage, "name an action"},
		{[]string{"service", "explode"}, exitUsage, `unknown action "explode"`},
		{[]string{"service", "status", "--name", "bad name"}, exitUsage, "--name"},
		{[]string{"service", "status", "extra"}, exitUsage, `unexpected argument "extra"`},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, errOut, tc.code,
				tc.want)
		}
	}
	// Flags may come before the action.
	code, out, errOut := runCLI(t, "service", "--name", "mw-flags-first", "status")
	if code != 0 || !strings.Contains(out, "mw-flags-first: not installed") {
		t.Errorf("flags first: exit %d, out %q, err %q", code, out, errOut)
	}
}
