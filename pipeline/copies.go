package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mosaic-watch/mosaic-watch/store"
)

// Copies: a file whose content matches a job of the same folder that ran (or runs) with the same
// agent and run parameters is not run again. It gets that job's outputs at its own mirror path,
// hard-linked (else copied) and published like a download, and bills nothing. A copy of a file
// still in flight waits for it.

// matchContent decides what a freshly hashed job does about an earlier job with the same
// content: nil means "process it normally".
func (p *Pipeline) matchContent(ctx context.Context, f *Folder, j *store.Job) error {
	prev, err := p.st.FindByContent(ctx, j.Folder, j.ContentHash, j.ID)
	if err != nil {
		return transient("look up content", err)
	}
	if prev == nil || prev.CopyOf == j.ID || prev.AgentID != j.AgentID {
		return nil
	}
	j.CopyOf = prev.ID
	return p.followOriginal(ctx, f, j)
}

// followOriginal acts on job j's original (j.CopyOf): reuse its outputs once it is done, wait
// while it is open, and run normally if it failed or ran with other parameters.
func (p *Pipeline) followOriginal(ctx context.Context, f *Folder, j *store.Job) error {
	orig, err := p.st.Get(ctx, j.CopyOf)
	if err != nil {
		return transient("read the job with the same content", err)
	}
	switch {
	case orig.Status.Open():
		return deferUntil(p.now().Add(p.opts.PollInterval),
			fmt.Sprintf("same content as job %d (%s), which is not finished yet: waiting to reuse its outputs", orig.ID, orig.RelPath))
	case orig.Status == store.StatusDone && len(orig.Outputs) > 0 && sameRun(orig, f):
		return p.becomeCopy(ctx, j, orig)
	}
	// The original failed, waits for a person, or ran differently: this file runs on its own.
	j.CopyOf = 0
	return nil
}

// sameRun reports whether orig's run used what folder f would run now. A job recorded before
// run parameters were kept is trusted on its agent alone.
func sameRun(orig *store.Job, f *Folder) bool {
	return orig.AgentID == f.AgentID && (orig.RunParams == "" || orig.RunParams == runParams(f))
}

// becomeCopy takes over orig's run and outputs; the output stage then links them into place.
func (p *Pipeline) becomeCopy(ctx context.Context, j, orig *store.Job) error {
	j.CopyOf = orig.ID
	j.RunID, j.RunStatus, j.RunParams = orig.RunID, orig.RunStatus, orig.RunParams
	j.RunMessage = orig.RunMessage
	j.Outputs = make([]store.Output, len(orig.Outputs))
	for i, o := range orig.Outputs {
		j.Outputs[i] = store.Output{Index: o.Index, RenderID: o.RenderID, URL: o.URL}
	}
	j.Step = store.StepRunFinished
	j.Attempts = 0
	p.log.Info("same content as an earlier file: reusing its outputs", "job", j.ID, "path", j.RelPath, "from_job", orig.ID)
	return p.commit(ctx, j, fmt.Sprintf("same content as job %d (%s): reusing its outputs, no run", orig.ID, orig.RelPath))
}

// copyOutput writes output i of a copy from its original's file: a hard link, else a copy, into
// the reserved temporary name, which publish then moves into place. handled is false when the
// original's file is gone or changed: the temporary name is then reserved afresh (it must not
// stay a link to the original's file) and the output is downloaded like any other.
func (p *Pipeline) copyOutput(ctx context.Context, root *os.Root, j *store.Job, i int, temp string) (handled bool, err error) {
	o := &j.Outputs[i]
	src, ok := p.originalOutput(ctx, j, o)
	if ok {
		// Same size is not enough: a file put in its place (an editor's, or a hostile user's)
		// must not be handed out as this copy's render. It must be the file that was written.
		if fi, err := root.Lstat(filepath.FromSlash(src.Path)); err != nil || !fi.Mode().IsRegular() ||
			fi.Size() != src.Size || !stillOurs(root, src.Path, src) {
			ok = false
		}
	}
	if err := root.Remove(temp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, transient("remove temporary file", err)
	}
	if !ok {
		p.log.Warn("the earlier file's output is gone or changed; downloading it", "job", j.ID, "output", o.Path, "from_job", j.CopyOf)
		return false, p.reserveTemp(ctx, root, j, o, temp)
	}
	how := "linked"
	if err := root.Link(filepath.FromSlash(src.Path), temp); err != nil {
		how = "copied"
		if err := copyWithin(ctx, root, filepath.FromSlash(src.Path), temp); err != nil {
			return false, err
		}
	}
	t, err := root.Open(temp)
	if err != nil {
		return false, transient("open temporary file", err)
	}
	o.TempID = fileIdentity(t) // recognises the published file after a crash mid-rename
	t.Close()
	if err := p.commit(ctx, j, fmt.Sprintf("output %s %s from job %d's %s", o.Path, how, j.CopyOf, src.Path)); err != nil {
		return false, err
	}
	final := filepath.FromSlash(o.Path)
	if err := p.publish(ctx, root, j, temp, final); err != nil {
		return false, err
	}
	o.Written, o.Size = true, src.Size
	msg := fmt.Sprintf("output %s written (%s, %s from job %d)", o.Path, FormatBytes(o.Size), how, j.CopyOf)
	if allWritten(j.Outputs) {
		j.Step = store.StepOutputsWritten
		j.Attempts = 0
	}
	return true, p.commit(ctx, j, msg)
}

// originalOutput finds the original job's written file for output o.
func (p *Pipeline) originalOutput(ctx context.Context, j *store.Job, o *store.Output) (store.Output, bool) {
	orig, err := p.st.Get(ctx, j.CopyOf)
	if err != nil {
		return store.Output{}, false
	}
	for _, s := range orig.Outputs {
		if s.Written && s.Path != "" && s.Index == o.Index && s.RenderID == o.RenderID {
			return s, true
		}
	}
	return store.Output{}, false
}

// reserveTemp creates output o's temporary file afresh and records its identity.
func (p *Pipeline) reserveTemp(ctx context.Context, root *os.Root, j *store.Job, o *store.Output, temp string) error {
	t, err := root.OpenFile(temp, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err != nil {
		return transient("reserve temporary file", err)
	}
	o.TempID = fileIdentity(t)
	t.Close()
	return p.commit(ctx, j, "output "+o.Path+" will be downloaded")
}

// copyWithin copies src to a new file dst inside root and syncs it.
func copyWithin(ctx context.Context, root *os.Root, src, dst string) error {
	in, err := root.Open(src)
	if err != nil {
		return transient("open the earlier output", err)
	}
	defer in.Close()
	out, err := root.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err != nil {
		return transient("create temporary file", err)
	}
	if _, err := io.Copy(out, ctxReader{ctx, in}); err != nil {
		out.Close()
		if isDiskFull(err) {
			return transient("the output disk is full", err)
		}
		return transient("copy the earlier output", err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return transient("sync output", err)
	}
	if err := out.Close(); err != nil {
		return transient("close output", err)
	}
	return nil
}

// copyNote is the note of a finished copy.
func copyNote(j *store.Job) string { return fmt.Sprintf("outputs from job %d", j.CopyOf) }
