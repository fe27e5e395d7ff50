//go:build unix

package pipeline_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mosaic-watch/mosaic-watch/pipeline"
)

// A lock file planted as a link (symbolic or hard) in a folder other people write to must
// not make a root daemon write through it.
func TestLockFileLinkIsRefused(t *testing.T) {
	for _, kind := range []string{"symlink", "hardlink"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			victim := filepath.Join(t.TempDir(), "victim")
			if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(dir, pipeline.LockName)
			if kind == "symlink" {
				if err := os.Symlink(victim, link); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Link(victim, link); err != nil {
				t.Skip("no hard links across these folders")
			}
			if l, err := pipeline.LockFolder(dir, holder("x")); err == nil {
				l.Close()
				t.Fatal("a linked lock file was accepted")
			}
			if b, _ := os.ReadFile(victim); string(b) != "precious" {
				t.Fatalf("the link's target was written: %q", b)
			}
		})
	}
}
