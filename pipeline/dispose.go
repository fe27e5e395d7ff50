package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/mosaic-watch/mosaic-watch/store"
)

// noteChanged is recorded when the source found at disposal time is not the file that was
// processed: it is neither moved nor deleted.
const noteChanged = "source changed since it was processed; left in place"

// handleSource applies after_success / after_failure once the outputs are safe. The source's
// folder is pinned first (an os.Root on the folder holding the file), and the file in it must
// still be the one that was hashed and uploaded; only then is that very directory entry
// removed or moved.
func (p *Pipeline) handleSource(ctx context.Context, f *Folder, j *store.Job, action, moveTo string) (string, error) {
	if action == "" || action == "keep" {
		return "", nil
	}
	if action != "delete" && action != "move" {
		return "", permanent("unknown source action "+action, nil)
	}
	in, err := p.openPlace(f, "input folder", f.Input)
	if err != nil {
		return "", err
	}
	defer in.Close()
	dirRel, base := splitRel(j.RelPath)
	dir, err := in.OpenRoot(dirRel)
	if err != nil {
		return p.disposalLookError(f, err)
	}
	defer dir.Close()
	fi, err := dir.Lstat(base)
	if err != nil {
		return p.disposalLookError(f, err)
	}
	same, err := p.isProcessedFile(ctx, f, dir, base, fi, j)
	if err != nil || !same {
		return noteChanged, err
	}
	if action == "delete" {
		if err := p.stillThere(f, "input folder", f.Input, in); err != nil {
			return "", err
		}
		if err := dir.Remove(base); err != nil {
			return "", transient("delete source", err)
		}
		return "source deleted", nil
	}
	return p.moveSource(ctx, f, in, dir, base, fi, j, moveTo)
}

// isProcessedFile reports whether fi, found at the source's name, is the file the job hashed
// and uploaded. After a remount device and inode cannot tell (the device is new, or a recycled
// number with recycled inodes), so the content decides.
func (p *Pipeline) isProcessedFile(ctx context.Context, f *Folder, dir *os.Root, base string, fi os.FileInfo, j *store.Job) (bool, error) {
	if !fi.Mode().IsRegular() || fi.Size() != j.Size || !fi.ModTime().Equal(j.ModTime) {
		return false, nil
	}
	m := matchIdentity(j.FileID, fi)
	if m == idSame && p.place(f.Input).cameBackSince(j.CreatedAt) {
		m = idRemounted
	}
	switch m {
	case idOther:
		return false, nil
	case idRemounted:
		if j.ContentHash == "" {
			return false, nil
		}
		sum, err := hashEntry(ctx, dir, base, fi)
		if err != nil {
			return false, err
		}
		return sum == j.ContentHash, nil
	}
	return true, nil
}

// hashEntry hashes the file named base in dir, which must still be the file fi describes.
func hashEntry(ctx context.Context, dir *os.Root, base string, fi os.FileInfo) (string, error) {
	file, err := dir.Open(base)
	if err != nil {
		return "", transient("read source", err)
	}
	defer file.Close()
	if now, err := file.Stat(); err != nil || !sameFile(now, fi) {
		return "", nil // swapped meanwhile: no match
	}
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, file}); err != nil {
		return "", transient("read source", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// disposalLookError is the outcome of a failed look at the source before disposal.
func (p *Pipeline) disposalLookError(f *Folder, err error) (string, error) {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if werr := p.recheckPlace(f, "input folder", f.Input); werr != nil {
			return "", werr
		}
		return "source was already gone", nil
	case leavesTheFolder(err):
		return noteChanged, nil
	}
	return "", transient("look at source", err)
}

// moveSource moves the source entry base of dir to the same relative path under moveTo,
// never replacing a file there. The destination folder is synced before the source goes.
func (p *Pipeline) moveSource(ctx context.Context, f *Folder, in, dir *os.Root, base string, fi os.FileInfo, j *store.Job, moveTo string) (string, error) {
	out, err := p.openPlace(f, "move_to folder", moveTo)
	if err != nil {
		return "", err
	}
	defer out.Close()
	dirRel, _ := splitRel(j.RelPath)
	if err := out.MkdirAll(dirRel, 0o755); err != nil {
		return "", p.moveError(moveTo, j, err)
	}
	dst, err := out.OpenRoot(dirRel)
	if err != nil {
		return "", p.moveError(moveTo, j, err)
	}
	defer dst.Close()
	if err := p.stillThere(f, "input folder", f.Input, in); err != nil {
		return "", err
	}
	if err := p.stillThere(f, "move_to folder", moveTo, out); err != nil {
		return "", err
	}
	err = renameNoReplace(dir, base, dst, base)
	if errors.Is(err, errCrossDevice) {
		err = p.copyAcross(ctx, dir, base, fi, dst, j)
	}
	if errors.Is(err, errSourceChanged) {
		return noteChanged, nil
	}
	var je *jobError
	if err != nil && !errors.As(err, &je) {
		return "", p.moveError(moveTo, j, err)
	}
	if err != nil {
		return "", err
	}
	syncRoot(dst)
	return "source moved to " + filepath.Join(moveTo, filepath.FromSlash(j.RelPath)), nil
}

func (p *Pipeline) moveError(moveTo string, j *store.Job, err error) error {
	if errors.Is(err, fs.ErrExist) {
		return attention(fmt.Sprintf("%s already exists in the move_to folder %s; it was not overwritten and the source was left in place: move one of them away, then `mosaic-watch retry`",
			j.RelPath, moveTo))
	}
	if errors.Is(err, fs.ErrPermission) {
		return attention(fmt.Sprintf("cannot move the source into %s: permission denied", moveTo))
	}
	if isDiskFull(err) {
		return transient("the move_to disk is full", err)
	}
	return transient("move source to "+moveTo, err)
}

// errSourceChanged stops a move whose source changed while it was copied.
var errSourceChanged = errors.New("source changed during the move")

// copyAcross moves a file to another filesystem: copy to a temporary name, sync, put it in
// place without replacing anything, sync the folder, and only then remove the source — if it
// is still the file that was copied. Every failure removes the temporary file.
func (p *Pipeline) copyAcross(ctx context.Context, dir *os.Root, base string, fi os.FileInfo, dst *os.Root, j *store.Job) (err error) {
	src, err := dir.Open(base)
	if err != nil {
		return err
	}
	defer src.Close()
	if now, err := src.Stat(); err != nil || !sameFile(now, fi) {
		return errSourceChanged
	}
	tmp := "." + base + tempSuffix
	if err := dst.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err // a leftover of an interrupted move of this file; ours to remove
	}
	out, err := dst.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fi.Mode().Perm())
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			out.Close()
			dst.Remove(tmp)
		}
	}()
	if _, err := io.Copy(out, ctxReader{ctx, src}); err != nil {
		return err
	}
	if err := out.Sync(); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if after, err := src.Stat(); err != nil || after.Size() != fi.Size() || !after.ModTime().Equal(fi.ModTime()) {
		return errSourceChanged // written to while copied: the copy is not that file
	}
	if err := placeNew(dst, tmp, base); err != nil {
		return err
	}
	syncRoot(dst) // the copy is on disk under its name before the source goes
	if now, err := dir.Lstat(base); err != nil || !sameFile(now, fi) {
		p.log.Warn("the source changed while it was copied to move_to; it was left in place", "path", j.RelPath)
		return nil // the copy is complete and named; the changed source stays
	}
	if rerr := dir.Remove(base); rerr != nil {
		return attention(fmt.Sprintf("the source was copied to the move_to folder but could not be removed (%v); remove it by hand", rerr))
	}
	return nil
}

// placeNew renames temp to final within r, failing with fs.ErrExist instead of replacing a
// file that is there. A hard link creates the name only if it is free; where links are not
// supported, a rename after one more look is the best the platform offers.
func placeNew(r *os.Root, temp, final string) error {
	err := r.Link(temp, final)
	switch {
	case err == nil:
		return r.Remove(temp)
	case errors.Is(err, fs.ErrExist):
		return err
	}
	if _, err := r.Lstat(final); err == nil {
		return &fs.PathError{Op: "place", Path: final, Err: fs.ErrExist}
	}
	return r.Rename(temp, final)
}

// syncRoot makes r's entries durable (best effort: not every platform syncs a folder).
func syncRoot(r *os.Root) {
	if d, err := r.Open("."); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// splitRel splits a slash-separated relative path into its folder ("." for none) and name,
// in the platform's form.
func splitRel(rel string) (dir, base string) {
	d, b := path.Split(rel)
	if d == "" {
		return ".", b
	}
	return filepath.FromSlash(path.Clean(d)), b
}

// handleFailedSource applies after_failure: move for a job that failed for good. A folder
// that is away leaves the source where it is (the job is closed; nothing waits).
func (p *Pipeline) handleFailedSource(ctx context.Context, j *store.Job) {
	f, ok := p.folder(j.Folder)
	if !ok || f.AfterFailure != "move" {
		return
	}
	note, err := p.handleSource(ctx, f, j, f.AfterFailure, f.AfterFailureMoveTo)
	if err != nil {
		p.log.Error("move failed source", "job", j.ID, "path", j.RelPath, "err", err)
		j.Note = "the source was left in place: " + err.Error()
		return
	}
	j.Note = note
}
