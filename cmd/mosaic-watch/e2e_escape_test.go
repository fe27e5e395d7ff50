package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

// Names with control characters are printed escaped by status and retry: an escape sequence
// in a file name must not reach the terminal, nor a newline break the table.
func TestE2EStatusEscapesFileNames(t *testing.T) {
	e := newE2E(t, mosaictest.Options{}, []folderSpec{{name: "main"}}, "")
	e.start()
	os.WriteFile(e.path("in/main", "evil\x1b[31mred\nnext.mkv"), []byte("not a video at all"), 0o644)
	testenv.WaitFor(t, 60*time.Second, "the bad file to fail", func() bool {
		out, _ := e.cli("status", "--config", e.cfg)
		return strings.Contains(out, "Failed:")
	})
	e.stop()
	for _, args := range [][]string{
		{"status", "--config", e.cfg},
		{"status", "--config", e.cfg, "--all"},
		{"retry", "--config", e.cfg, "--failed"},
	} {
		out, _ := e.cli(args...)
		if strings.ContainsAny(out, "\x1b") || strings.Contains(out, "red\nnext") {
			t.Errorf("%v printed the raw name:\n%q", args, out)
		}
		if args[0] == "status" && !strings.Contains(out, `evil\x1b[31mred\nnext.mkv`) {
			t.Errorf("%v does not show the escaped name:\n%s", args, out)
		}
	}
}
