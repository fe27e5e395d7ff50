package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// tempSuffix marks a download in progress. The watcher's default excludes skip it, and the
// start-up cleanup removes the ones no job will resume.
const tempSuffix = ".mosaic-partial"

// removeTemp removes a published download's temporary name; tests make it fail.
var removeTemp = (*os.Root).Remove

// namingMu serializes choosing output names, so two jobs never pick the same file.
var namingMu sync.Mutex

// stepOutputs downloads every output, then handles the source, then closes the job.
func (p *Pipeline) stepOutputs(ctx context.Context, j *store.Job) error {
	f, err := p.folderOf(j)
	if err != nil {
		return err
	}
	if j.Step != store.StepSourceHandled {
		if err := p.folderReady(f); err != nil {
			return err
		}
	}
	switch j.Step {
	case store.StepRunFinished:
		if err := p.writeOutputs(ctx, f, j); err != nil {
			return err
		}
		if j.Step == store.StepRunFinished { // nothing was written: never go on to the source
			return attention("the run has no outputs to write; the source is left alone")
		}
		return nil
	case store.StepOutputsWritten:
		action, moveTo := f.AfterSuccess, f.AfterSuccessMoveTo
		if j.RunStatus == mosaic.StatusPartialComplete {
			// Some outputs failed: treat the source as after a failure, never delete it.
			action, moveTo = f.AfterFailure, f.AfterFailureMoveTo
		}
		if action == "" || action == "keep" {
			// Nothing to do to the source, so nothing to record before closing the job.
			return p.finish(ctx, j, "source kept; done")
		}
		note, err := p.handleSource(ctx, f, j, action, moveTo)
		if err != nil {
			return err
		}
		j.Step = store.StepSourceHandled
		j.Note = note
		return p.commit(ctx, j, "source: "+note)
	case store.StepSourceHandled:
		return p.finish(ctx, j, "done")
	}
	return nil
}

func (p *Pipeline) finish(ctx context.Context, j *store.Job, msg string) error {
	if j.CopyOf != 0 {
		msg = "done (" + copyNote(j) + ")"
		j.Note = strings.TrimSuffix(copyNote(j)+"; "+j.Note, "; ")
	}
	j.Step = store.StepDone
	j.Status = store.StatusDone
	p.log.Info("done", "job", j.ID, "path", j.RelPath, "outputs", len(j.Outputs))
	return p.commit(ctx, j, msg)
}

func (p *Pipeline) writeOutputs(ctx context.Context, f *Folder, j *store.Job) error {
	// The output folder was created at start if missing; a folder missing now is a share that
	// went away, and writing into a fresh one would hide the outputs once it is back.
	root, err := p.openPlace(f, "output folder", f.Output)
	if err != nil {
		return err
	}
	defer root.Close()
	refreshed := false
	for i := range j.Outputs {
		if j.Outputs[i].Written {
			continue
		}
		err := p.writeOutput(ctx, root, f, j, i)
		if mosaic.IsURLExpired(err) && !refreshed {
			// Signed URLs expire; fetching the run again issues fresh ones.
			refreshed = true
			run, rerr := p.api.GetRun(ctx, j.RunID)
			if rerr != nil {
				return rerr
			}
			j.Outputs, _ = mergeOutputs(j.Outputs, run.Outputs)
			if i >= len(j.Outputs) {
				return transient("the run has fewer outputs than before", nil)
			}
			err = p.writeOutput(ctx, root, f, j, i)
			if mosaic.IsURLExpired(err) {
				return transient("the download URL was refused even after refreshing it", err)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// writeOutput downloads output i to a temporary name beside its final name, syncs it and
// renames it into place, resuming a partial temporary file left by an earlier attempt.
func (p *Pipeline) writeOutput(ctx context.Context, root *os.Root, f *Folder, j *store.Job, i int) error {
	o := &j.Outputs[i]
	if o.Path == "" {
		if err := p.planOutput(ctx, root, f, j, i); err != nil {
			return err
		}
	}
	final := filepath.FromSlash(o.Path)
	temp := tempName(final)
	if size, ok := publishedEarlier(root, final, o.TempID); ok {
		// Our reserved file, put in place before a crash or before its temporary name could
		// be removed, but not recorded yet.
		if err := removeTemp(root, temp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return transient("remove temporary file", err)
		}
		o.Written, o.Size = true, size
		if allWritten(j.Outputs) {
			j.Step = store.StepOutputsWritten
		}
		return p.commit(ctx, j, "output "+o.Path+" written")
	}
	if j.CopyOf != 0 {
		if handled, err := p.copyOutput(ctx, root, j, i, temp); handled || err != nil {
			return err
		}
	}
	file, err := root.OpenFile(temp, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return outputDirError(f.Output, err)
	}
	defer file.Close()
	offset, err := file.Seek(0, 2)
	if err != nil {
		return transient("seek temporary file", err)
	}
	p.log.Info("downloading output", "job", j.ID, "output", o.Path, "resume_at", offset)
	n, err := p.api.Download(ctx, o.URL, file, mosaic.DownloadOptions{
		Offset: offset,
		Progress: func(done, total int64) {
			p.setProgress(j.ID, Progress{Phase: "downloading", Done: done, Total: total})
		},
	})
	if err != nil {
		if isDiskFull(err) {
			return transient("the output disk is full", err)
		}
		return err
	}
	if err := file.Sync(); err != nil {
		return transient("sync output", err)
	}
	if err := file.Close(); err != nil {
		return transient("close output", err)
	}
	if err := p.stillThere(f, "output folder", f.Output, root); err != nil {
		return err // the share went away during the download: publish once it is back
	}
	if err := p.publish(ctx, root, j, temp, final); err != nil {
		return err
	}
	syncDir(root, path.Dir(o.Path))
	p.opts.Observer.Transferred(f.Name, "download", n)
	o.Written, o.Size = true, offset+n
	msg := fmt.Sprintf("output %s written (%s)", o.Path, FormatBytes(o.Size))
	if allWritten(j.Outputs) {
		// The last output's commit is also the step's.
		j.Step = store.StepOutputsWritten
		j.Attempts = 0
		msg += fmt.Sprintf("; all %d output(s) written", len(j.Outputs))
	}
	return p.commit(ctx, j, msg)
}

// publish moves a finished download to its final name without ever replacing a file that
// mosaic-watch did not write for this source: a file that appeared there during the download
// (the name was free when it was planned) stays, and the job waits for a person.
func (p *Pipeline) publish(ctx context.Context, root *os.Root, j *store.Job, temp, final string) error {
	rel := filepath.ToSlash(final)
	appeared := attention(fmt.Sprintf("%s appeared in the output folder while it was being downloaded and was not written by mosaic-watch; move it away, then `mosaic-watch retry`", rel))
	if _, err := root.Lstat(final); err == nil {
		older, newer := p.versionsWrote(ctx, root, j, rel)
		if newer != nil {
			root.Remove(temp)
			return supersededBy(newer, rel)
		}
		if !older {
			return appeared
		}
		// An earlier version of this source's output: the new version replaces it.
		if err := root.Rename(temp, final); err != nil {
			return transient("rename output into place", err)
		}
		return nil
	}
	// A hard link creates the final name only if it does not exist yet: no window in which a
	// file that just appeared could be replaced.
	err := root.Link(temp, final)
	switch {
	case err == nil:
		if err := removeTemp(root, temp); err != nil {
			return transient("remove temporary file", err)
		}
		return nil
	case errors.Is(err, fs.ErrExist):
		return appeared
	}
	// No hard links on this file system: a plain rename, after one more look.
	if _, serr := root.Lstat(final); serr == nil {
		return appeared
	}
	if err := root.Rename(temp, final); err != nil {
		return transient("rename output into place", err)
	}
	return nil
}

// planOutput picks output i's name and records it. Rule: <dir>/<stem><-k><ext>; when that name
// is taken by a file mosaic-watch did not write for this source (e.g. clip.mov and clip.mp4
// side by side), the source's extension is kept in the name: <stem>.<srcext><-k><ext>
// (clip.mov.mp4). If that is taken too, a person decides. A file the daemon did not write is never overwritten.
//
// Versions of one source share its names: a newer version replaces an older one's outputs (and
// waits while the older one is still writing them), and an older version finishing late never
// replaces a newer one's outputs.
func (p *Pipeline) planOutput(ctx context.Context, root *os.Root, f *Folder, j *store.Job, i int) error {
	namingMu.Lock()
	defer namingMu.Unlock()
	dir, base := path.Split(j.RelPath)
	stem, srcExt := splitExt(base)
	suffix := ""
	if len(j.Outputs) > 1 {
		suffix = fmt.Sprintf("-%d", i+1)
	}
	ext := outputExt(j.Outputs[i].URL)
	candidates := []string{
		dir + stem + suffix + ext,
		dir + stem + "." + strings.TrimPrefix(srcExt, ".") + suffix + ext,
	}
	for _, c := range candidates {
		if !safeRel(c) {
			return permanent("output name would leave the output folder: "+c, nil)
		}
		use, other := p.nameUse(ctx, root, j, c)
		switch use {
		case nameNewer:
			return supersededBy(other, c)
		case nameOlderBusy:
			return deferUntil(p.now().Add(p.opts.Recheck), fmt.Sprintf("waiting for job %d, an earlier version of this file, to finish writing %s", other.ID, c))
		case nameTaken:
			continue
		}
		if d := path.Dir(c); d != "." {
			if err := root.MkdirAll(filepath.FromSlash(d), 0o755); err != nil {
				return outputDirError(f.Output, err)
			}
		}
		// Creating the temporary file reserves the name against other jobs.
		t, err := root.OpenFile(tempName(filepath.FromSlash(c)), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
		if err != nil {
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			return outputDirError(f.Output, err)
		}
		j.Outputs[i].TempID = fileIdentity(t) // recognises our file once it is in place
		t.Close()
		j.Outputs[i].Path = c
		// Recorded before namingMu is released: another version choosing its name must find
		// this reservation in the store, not only its temporary file (it would then take the
		// name for another source's and fall back to clip.mov.mp4).
		return p.commit(ctx, j, "output "+c+" planned")
	}
	return attention(fmt.Sprintf("output names %s and %s already exist in %s and were not written by mosaic-watch for this file; move them away, then `mosaic-watch retry`",
		candidates[0], candidates[1], f.Output))
}

// nameUse says whether output name c can be used by job j.
type nameUse int

const (
	nameFree      nameUse = iota // nothing there, or an older version of this source wrote it
	nameTaken                    // a file mosaic-watch did not write for this source
	nameOlderBusy                // an older version of this source is still writing it
	nameNewer                    // a newer version of this source wrote it or is writing it
)

// nameUse looks at c and at the other versions of j's source. An open version that planned c
// is still writing it (downloading, or between putting it in place and recording that). A
// temporary file left by a version that is closed now is taken over.
func (p *Pipeline) nameUse(ctx context.Context, root *os.Root, j *store.Job, c string) (nameUse, *store.Job) {
	versions, err := p.st.JobsAt(ctx, j.Folder, j.RelPath)
	if err != nil {
		return nameTaken, nil
	}
	temp := tempName(filepath.FromSlash(c))
	_, terr := root.Lstat(temp)
	tempThere := terr == nil
	var olderWrote bool
	var busy, stale *store.Job
	for k := range versions {
		other := &versions[k]
		if other.ID == j.ID {
			continue
		}
		for _, o := range other.Outputs {
			switch {
			case o.Path != c:
			case (o.Written || other.Status.Open()) && other.ID > j.ID:
				return nameNewer, other
			case o.Written:
				olderWrote = olderWrote || stillOurs(root, c, o)
			case other.Status.Open():
				busy = other
			case tempThere:
				stale = other
			}
		}
	}
	if busy != nil {
		return nameOlderBusy, busy
	}
	if tempThere {
		if stale == nil {
			return nameTaken, nil // another source's download, or a file that only looks like ours
		}
		if err := root.Remove(temp); err != nil { // left by a version that gave up: take it over
			return nameTaken, nil
		}
	}
	_, err = root.Lstat(filepath.FromSlash(c))
	switch {
	case errors.Is(err, fs.ErrNotExist), err == nil && olderWrote:
		return nameFree, nil
	}
	return nameTaken, nil
}

// versionsWrote reports whether the file at c is an older version's output of j's source as it
// wrote it, and which newer version recorded c as written, if any.
func (p *Pipeline) versionsWrote(ctx context.Context, root *os.Root, j *store.Job, c string) (older bool, newer *store.Job) {
	versions, err := p.st.JobsAt(ctx, j.Folder, j.RelPath)
	if err != nil {
		return false, nil
	}
	for k := range versions {
		other := &versions[k]
		for _, o := range other.Outputs {
			if o.Path != c || !o.Written || other.ID == j.ID {
				continue
			}
			if other.ID > j.ID {
				return false, other
			}
			older = older || stillOurs(root, c, o)
		}
	}
	return older, nil
}

// stillOurs reports whether the file at c is output o as mosaic-watch wrote it: the same file
// (its identity was recorded when the name was reserved) and size. Only then may a newer version
// of the source replace it: an editor's file put there since, or the output rewritten in place,
// is not ours to overwrite. Outputs recorded without an identity cannot be told apart.
func stillOurs(root *os.Root, c string, o store.Output) bool {
	if o.TempID == "" {
		return true
	}
	size, ok := publishedEarlier(root, filepath.FromSlash(c), o.TempID)
	return ok && size == o.Size
}

// supersededBy ends an older version's job whose output name belongs to a newer version.
func supersededBy(newer *store.Job, c string) error {
	return skip(fmt.Sprintf("superseded: job %d, a newer version of this file, writes %s; the outputs of this older version are not written", newer.ID, c))
}

// publishedEarlier reports whether final is the file reserved for this output (tempID is its
// identity), already linked or renamed into place, and its size.
func publishedEarlier(root *os.Root, final, tempID string) (int64, bool) {
	if tempID == "" {
		return 0, false
	}
	fi, err := root.Lstat(final)
	if err != nil || !fi.Mode().IsRegular() {
		return 0, false
	}
	f, err := root.Open(final)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	return fi.Size(), fileIdentity(f) == tempID
}

func allWritten(outs []store.Output) bool {
	for _, o := range outs {
		if !o.Written {
			return false
		}
	}
	return true
}

func tempName(final string) string {
	dir, base := filepath.Split(final)
	return filepath.Join(dir, "."+base+tempSuffix)
}

func splitExt(name string) (stem, ext string) {
	ext = path.Ext(name)
	if ext == name { // ".hidden"
		return name, ""
	}
	return strings.TrimSuffix(name, ext), ext
}

var extPattern = regexp.MustCompile(`^\.[a-zA-Z0-9]{1,5}$`)

// outputExt takes the extension from the download URL's path, else .mp4. Only a short
// alphanumeric extension is accepted: the name is ours, never the server's.
func outputExt(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ".mp4"
	}
	ext := path.Ext(u.Path)
	if !extPattern.MatchString(ext) {
		return ".mp4"
	}
	return strings.ToLower(ext)
}

func safeRel(rel string) bool {
	return rel != "" && !path.IsAbs(rel) && !strings.HasPrefix(path.Clean(rel), "../") && path.Clean(rel) != ".."
}

func syncDir(root *os.Root, dir string) {
	d, err := root.Open(filepath.FromSlash(dir))
	if err != nil {
		return
	}
	_ = d.Sync() // best effort: not every platform can sync a directory
	d.Close()
}

func isDiskFull(err error) bool { return errors.Is(err, syscall.ENOSPC) }

func outputDirError(dir string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return attention(fmt.Sprintf("cannot write to the output folder %s: permission denied", dir))
	}
	if isDiskFull(err) {
		return transient("the output disk is full", err)
	}
	return transient("output folder "+dir, err)
}
