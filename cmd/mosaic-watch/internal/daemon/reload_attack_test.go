package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/testenv"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
)

// A reload that adds a folder another instance serves: the reload applies, that folder is not
// served here (shown degraded, naming the other instance), its files are not processed here,
// and the other folders go on.
func TestReloadAddingAFolderAnotherInstanceServes(t *testing.T) {
	e := startHTTPEnv(t, mosaictest.Options{}, "100ms", "")
	taken := filepath.Join(e.dir, "in", "taken")
	mkdirs(t, taken, filepath.Join(e.dir, "out", "taken"))
	other, err := pipeline.LockFolder(taken, pipeline.LockHolder{Host: "nas-box", PID: 4242})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	original := readFile(t, e.cfg.File)
	e.saveConfig(original + "  - name: taken\n    input: ./in/taken\n    output: ./out/taken\n" +
		"    agent_id: " + e.fake.AgentIDs()[0] + "\n    settle: 200ms\n")
	testenv.WaitFor(t, 20*time.Second, "the reload", func() bool {
		return strings.Contains(e.logs.String(), "config reloaded: +folder taken")
	})
	if why := e.d.folderHealth()[taken]; !strings.Contains(why, "PID 4242 on nas-box") {
		t.Fatalf("health of the folder another instance serves: %q", why)
	}
	clip := testenv.Clip("not ours to process")
	testenv.DropFile(t, filepath.Join(taken, "clip.mp4"), clip)
	e.writeClip("mine.mp4", "main still works")
	e.waitJob("mine.mp4", "done")
	for _, v := range e.jobs("") {
		if v.Path == "clip.mp4" {
			t.Fatalf("a file of a folder another instance serves was taken: %s", v.Status)
		}
	}
	if n := e.fake.Stats().RunsByContent[mosaictest.RunKey{ContentSHA256: testenv.ShaHex(clip),
		AgentID: e.fake.AgentIDs()[0]}]; n != 0 {
		t.Fatalf("%d run(s) billed for a folder another instance serves", n)
	}
	if _, err := os.Stat(filepath.Join(taken, pipeline.LockName)); err != nil {
		t.Fatalf("the other instance's lock file: %v", err)
	}
}

// A reload that would make two folders feed each other is refused as a whole: the running
// configuration stays, and a dropped file is run once.
func TestReloadCreatingALoopIsRefused(t *testing.T) {
	e := startHTTPEnv(t, mosaictest.Options{}, "100ms", "")
	original := readFile(t, e.cfg.File)
	e.saveConfig(original + "  - name: back\n    input: ./out/main\n    output: ./in/main/back\n" +
		"    agent_id: " + e.fake.AgentIDs()[0] + "\n")
	testenv.WaitFor(t, 20*time.Second, "the refused reload", func() bool {
		return strings.Contains(e.d.ReloadFailure(), "folder loop")
	})
	clip := e.writeClip("once.mp4", "looped?")
	e.waitJob("once.mp4", "done")
	key := mosaictest.RunKey{ContentSHA256: testenv.ShaHex(clip), AgentID: e.fake.AgentIDs()[0]}
	if n := e.fake.Stats().RunsByContent[key]; n != 1 {
		t.Fatalf("%d runs for one file", n)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.dir, "in", "main", "back")); len(entries) != 0 {
		t.Fatalf("outputs were written back into the input: %d file(s)", len(entries))
	}
}
