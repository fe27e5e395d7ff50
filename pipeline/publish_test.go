package pipeline_test

import (
	"errors"
	"os"
	"sync/atomic"
	"testing"

	"github.com/mosaic-watch/mosaic-watch/pipeline"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// The hard link into place succeeds but removing the temporary name fails (a virus scanner or
// an indexer holding it, say). The retry must recognise the final file as the daemon's own, by
// the reserved temporary file's identity, not report that it "appeared in the output folder".
func TestPublishedOutputIsOursWhenRemovingItsTempNameFailed(t *testing.T) {
	var removals atomic.Int32
	restore := pipeline.SetRemoveTemp(func(root *os.Root, name string) error {
		if removals.Add(1) == 1 {
			return &os.PathError{Op: "remove", Path: name, Err: errors.New("the file is in use")}
		}
		return root.Remove(name)
	})
	t.Cleanup(restore) // registered first, so it runs after the pipeline has stopped
	h := newHarness(t, harnessOpts{})
	src := video("held temp")
	h.drop("held.mov", src)
	j := h.waitClosed("held.mov")
	if j.Status != store.StatusDone {
		t.Fatalf("status %s: %s", j.Status, j.LastError)
	}
	if removals.Load() < 2 {
		t.Fatalf("the temporary name was removed %d time(s); want a failed removal, then one that worked", removals.Load())
	}
	h.checkOutputs(h.folder.AgentID, src, "held.mp4") // the same name, and no temporary file left
	if n := h.fake.Stats().Requests["GET download 2xx"]; n != 1 {
		t.Errorf("the output was downloaded %d times; want once", n)
	}
}
