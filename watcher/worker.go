package watcher

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// checkWorker performs check jobs: all stat/open/read I/O happens here, never
// in the loop or in the fsnotify readers.
func (w *Watcher) checkWorker(ctx context.Context) {
	defer w.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-w.work:
			w.check(ctx, job)
		}
	}
}

func (w *Watcher) check(ctx context.Context, job checkJob) {
	r := job.root
	abs := r.abs(job.rel)
	o := observation{rel: job.rel, t: job.t}
	fi, err := os.Lstat(abs)
	o.at = time.Now()
	switch {
	case err != nil && !notExist(err):
		// e.g. permission denied on a parent: keep what we knew, look again later
		w.log.Debug("watcher: stat failed", "path", abs, "err", err)
		o.failed = true
		w.sendCheck(ctx, job, &o)
		return
	case err != nil, fi.Mode()&fs.ModeSymlink != 0:
		o.missing = true
	case fi.IsDir():
		o.missing = true // not a file; a folder: watch it, then scan it
		if r.filter.Load().dirAllowed(job.rel) && r.watches.active() {
			w.walk(ctx, r, abs, true, 0)
		}
	case !fi.Mode().IsRegular() || (job.t == nil && !r.filter.Load().fileAllowed(job.rel)):
		o.missing = true
	default:
		o.size, o.mtime, o.id = fi.Size(), fi.ModTime(), fileIdentity(abs, fi)
		if job.probe {
			probe(abs, &o)
		}
	}
	if o.missing {
		if !fi2IsDir(fi) && r.watches.removeTree(abs) {
			w.send(ctx, result{kind: resDirGone, root: r, path: job.rel})
		}
		o.rootOK, o.rootID, _, _ = rootIdentity(r.clean, false)
	}
	w.sendCheck(ctx, job, &o)
}

func fi2IsDir(fi fs.FileInfo) bool { return fi != nil && fi.IsDir() }

func (w *Watcher) sendCheck(ctx context.Context, job checkJob, o *observation) {
	res := result{kind: resObs, root: job.root, path: job.rel}
	if job.t == nil {
		res.kind = resUntracked
	}
	if o != nil {
		res.obs = []observation{*o}
	}
	w.send(ctx, res)
}

// probe opens the file and, for ISO-BMFF containers, walks the top-level box
// headers. If the open file no longer matches the stat, o is updated and left
// unprobed so the loop restarts the settle window.
func probe(abs string, o *observation) {
	if o.size == 0 {
		o.probed, o.verdict = true, "empty file"
		return
	}
	f, err := openRead(abs)
	if err != nil {
		o.probed, o.verdict = true, "cannot open: "+errText(err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		o.probed, o.verdict = true, "cannot stat open file: "+errText(err)
		return
	}
	if fi.Size() != o.size || !fi.ModTime().Equal(o.mtime) {
		o.size, o.mtime = fi.Size(), fi.ModTime()
		return
	}
	o.probed = true
	if needsBoxCheck(o.rel) {
		o.verdict = checkBoxes(f, o.size)
	}
}

// errText is the OS reason without the path ("permission denied").
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// rootIdentity checks that the root is a readable folder and returns its
// identity, or why it is not usable. A root that was a mount point must still
// be one: once a share is unmounted, the bare folder beneath it (often empty,
// sometimes with stale files) is not the root.
func rootIdentity(root string, wasMount bool) (ok bool, id, reason string, mount bool) {
	fi, err := os.Stat(root)
	if err != nil {
		return false, "", "root folder unavailable: " + errText(err), false
	}
	if !fi.IsDir() {
		return false, "", "root is not a folder", false
	}
	rid := fileIdentity(root, fi)
	if parent := filepath.Dir(root); parent != root {
		if pfi, err := os.Stat(parent); err == nil {
			mount = fileIdentity(parent, pfi).hi != rid.hi
		}
	}
	if wasMount && !mount {
		return false, "", "root folder is not mounted any more (it was a mount point when watching started)", false
	}
	f, err := os.Open(root)
	if err != nil {
		return false, "", "root folder unreadable: " + errText(err), mount
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); err != nil && !errors.Is(err, io.EOF) {
		return false, "", "root folder unreadable: " + errText(err), mount
	}
	return true, rid.String(), "", mount
}
