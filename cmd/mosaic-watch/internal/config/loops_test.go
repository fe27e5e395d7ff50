package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func loopFolders(pairs ...[2]string) string {
	var b strings.Builder
	b.WriteString("mosaic:\n  api_key: ${MOSAIC_API_KEY}\nfolders:\n")
	for _, p := range pairs {
		b.WriteString("  - input: {{DIR}}/" + p[0] + "\n    output: {{DIR}}/" + p[1] +
			"\n    agent_id: " + testAgent + "\n")
	}
	return b.String()
}

// Reproduction 4: folder A writes into B's input and B into A's: one dropped file made 13 runs
// in 40 s and would go on. Such a configuration is refused, naming both folders' lines; a
// one-way chain (A's output is B's input) is how agents are chained and stays allowed.
func TestFolderLoopsAreRefused(t *testing.T) {
	cases := []struct {
		name  string
		pairs [][2]string
		want  []string // substrings of the error
	}{
		{"two folders", [][2]string{{"a", "b"}, {"b", "a"}},
			[]string{":5: folders[0].output", `folders[1] "b" (line 7)`, ":8: folders[1].output",
				`folders[0] "a" (line 4)`}},
		{"three folders", [][2]string{{"a", "b"}, {"b", "c"}, {"c", "a/sub"}},
			[]string{"folders[0].output", "folders[1].output", "folders[2].output",
				`folders[2] "c" (line 10)`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range []string{"a", "b", "c", "a/sub"} {
				os.MkdirAll(filepath.Join(dir, d), 0o755)
			}
			_, err := Load(writeConfig(t, dir, loopFolders(c.pairs...), 0o600), defaultTestEnv)
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("Load = %v; want the loop refused", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			if !strings.Contains(err.Error(), "loop") {
				t.Errorf("error should call it a loop:\n%v", err)
			}
		})
	}
}

func TestFolderChainIsAllowed(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"a", "b", "c"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	cfg := loadOK(t, dir, loopFolders([2]string{"a", "b"}, [2]string{"b", "c"}), defaultTestEnv)
	if len(cfg.Folders) != 2 {
		t.Fatalf("%d folders", len(cfg.Folders))
	}
}
