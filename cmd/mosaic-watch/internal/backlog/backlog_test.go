package backlog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/sample"
	"github.com/mosaic-watch/mosaic-watch/store"
)

func TestFirstWatchDecidesOnceAndNeverHoldsNewFiles(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	for i := range 5 {
		p := filepath.Join(in, fmt.Sprintf("v%d.mp4", i))
		os.MkdirAll(in, 0o755)
		if err := os.WriteFile(p, sample.MP4(100, 16, 16, []byte{byte(i)}), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(in, "notes.txt"), []byte("not a video"), 0o644)
	st, err := store.Open(context.Background(), filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	f := config.Folder{Name: "in", Input: in, Recursive: true, ExistingFiles: config.ExistingConfirm}
	m, first, err := FirstWatch(ctx, st, f, 2, time.Now())
	if err != nil || !first || m.Total != 5 || m.Held != 3 {
		t.Fatalf("FirstWatch = %+v, %v, %v", m, first, err)
	}
	fi, _ := os.Stat(filepath.Join(in, "v0.mp4"))
	if d, ok := m.Lookup("v0.mp4", fi.Size(), fi.ModTime()); ok || d != "" {
		t.Errorf("the first videos in path order start: v0 is %q", d)
	}
	fi, _ = os.Stat(filepath.Join(in, "v4.mp4"))
	if d, ok := m.Lookup("v4.mp4", fi.Size(), fi.ModTime()); !ok || d != Hold {
		t.Errorf("v4 = %q, %v; want held", d, ok)
	}
	if _, ok := m.Lookup("v4.mp4", fi.Size()+1, fi.ModTime()); ok {
		t.Error("a changed file is a new version, not the one found at the first watch")
	}
	// The record is kept: a second watch (a restart) decides nothing new, and a file added since
	// is not in it.
	os.WriteFile(filepath.Join(in, "later.mp4"), sample.MP4(100, 16, 16, []byte("later")), 0o644)
	again, first, err := FirstWatch(ctx, st, f, 2, time.Now())
	if err != nil || first || again.Held != 3 || again.Total != 5 {
		t.Fatalf("second FirstWatch = %+v, %v, %v", again, first, err)
	}
	if ok, _ := Approved(ctx, st, in); ok {
		t.Fatal("approved before approve")
	}
	if _, err := Approve(ctx, st, in, time.Now()); err != nil {
		t.Fatal(err)
	}
	if ok, _ := Approved(ctx, st, in); !ok {
		t.Fatal("not approved after approve")
	}
	f.Input = filepath.Join(dir, "other")
	os.MkdirAll(f.Input, 0o755)
	os.WriteFile(filepath.Join(f.Input, "a.mp4"), sample.MP4(100, 16, 16, nil), 0o644)
	f.ExistingFiles = config.ExistingIgnore
	ig, _, err := FirstWatch(ctx, st, f, 50, time.Now())
	if err != nil || ig.Files["a.mp4"].Decision != Ignore {
		t.Fatalf("ignore: %+v, %v", ig, err)
	}
}
