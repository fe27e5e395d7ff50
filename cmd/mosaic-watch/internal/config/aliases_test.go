package config

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// aliasBomb is a 620-byte-class "billion laughs": each level repeats the one before nine times,
// so seven levels expand to 9^7 (4.8 million) values.
const aliasBomb = `mosaic:
  api_key: ${MOSAIC_API_KEY}
folders:
  - input: {{DIR}}/in
    output: {{DIR}}/out
    agent_id: ` + testAgent + `
    update_params:
      node:
        a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
        b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
        c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
        d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
        e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
        f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
        g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
`

// Reproduction (6): a 620-byte configuration took 680 MB and 2 s to validate. It must be
// refused with a clear error, using a bounded amount of memory (the time bound is
// BenchmarkLoadAliasBomb's).
func TestAliasBombIsRefused(t *testing.T) {
	dir := testDir(t)
	file := writeConfig(t, dir, aliasBomb, 0o600)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Load(file, defaultTestEnv)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "aliases") {
		t.Fatalf("Load = %v; want the aliases refused", err)
	}
	if !strings.Contains(err.Error(), ":10:") {
		t.Errorf("the error should point at the first alias (line 10): %v", err)
	}
	const limit = 50 << 20
	if got := after.TotalAlloc - before.TotalAlloc; got > limit {
		t.Fatalf("loading the alias bomb allocated %d MiB, want at most %d MiB", got>>20, limit>>20)
	}
}

// Aliases that expand to a sensible size are still fine.
func TestSmallAliasesAreKept(t *testing.T) {
	dir := testDir(t)
	cfg := loadOK(t, dir, `mosaic:
  api_key: ${MOSAIC_API_KEY}
folders:
  - input: {{DIR}}/in
    output: {{DIR}}/out
    agent_id: `+testAgent+`
    update_params:
      node:
        colors: &c [red, green]
        again: *c
`, defaultTestEnv)
	if got := cfg.Folders[0].UpdateParams["node"]["again"]; len(got.([]any)) != 2 {
		t.Fatalf("again = %v", got)
	}
}

func BenchmarkLoadAliasBomb(b *testing.B) {
	dir := b.TempDir()
	for _, d := range []string{"in", "out"} {
		if err := mkdir(dir, d); err != nil {
			b.Fatal(err)
		}
	}
	file := dir + "/config.yaml"
	if err := writeFile(file, strings.ReplaceAll(aliasBomb, "{{DIR}}", dir)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(file, defaultTestEnv); err == nil {
			b.Fatal("the alias bomb was accepted")
		}
	}
}

func mkdir(dir, name string) error { return os.Mkdir(filepath.Join(dir, name), 0o755) }

func writeFile(path, body string) error { return os.WriteFile(path, []byte(body), 0o600) }
