package pipeline

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/mosaic-watch/mosaic-watch/store"
)

// The daemon often runs as root over folders other people write to. Every access to a source
// therefore goes through its input folder (an os.Root: no path leads out of it, whatever links
// are planted along it), and what is found there must still be the file the job was made for:
// same size and mtime and, where the platform says, the same device and inode. Anything else
// is "source changed" and is never read, uploaded, moved or deleted.

// idMatch is how a file compares with the identity recorded when it was found.
type idMatch int

const (
	idUnknown   idMatch = iota // no identity on one side: size and mtime decide
	idSame                     // same device and inode
	idOther                    // same filesystem, another file: a different file has the name now
	idRemounted                // another device: the share was remounted; only the content can tell
)

const (
	msgGone    = "the source file disappeared before it was uploaded"
	msgChanged = "the source file changed; the new version is handled as a new job once it settles"
	msgSwapped = "the source changed: its path now leads to another file (renamed, replaced or linked away); it is left alone"
)

// sourceMatches checks a look at the source (Lstat or an open file's Stat) against the job.
func sourceMatches(j *store.Job, fi os.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return skip(msgSwapped)
	}
	if fi.Size() != j.Size || !fi.ModTime().Equal(j.ModTime) {
		return skip(msgChanged)
	}
	if matchIdentity(j.FileID, fi) == idOther {
		return skip(msgSwapped)
	}
	return nil
}

// statSource looks at the source through its input folder, without following a final link,
// and checks that it is still the file the job was made for.
func (p *Pipeline) statSource(f *Folder, j *store.Job) (os.FileInfo, error) {
	in, err := p.openPlace(f, "input folder", f.Input)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	fi, err := in.Lstat(filepath.FromSlash(j.RelPath))
	if err != nil {
		return nil, p.sourceError(f, j, err)
	}
	return fi, sourceMatches(j, fi)
}

// openSource opens the source for reading through its input folder and checks it like
// statSource, on the open file itself. The caller closes the file.
func (p *Pipeline) openSource(f *Folder, j *store.Job) (*os.File, os.FileInfo, error) {
	in, err := p.openPlace(f, "input folder", f.Input)
	if err != nil {
		return nil, nil, err
	}
	defer in.Close()
	rel := filepath.FromSlash(j.RelPath)
	lst, err := in.Lstat(rel)
	if err != nil {
		return nil, nil, p.sourceError(f, j, err)
	}
	if err := sourceMatches(j, lst); err != nil {
		return nil, nil, err
	}
	file, err := in.Open(rel)
	if err != nil {
		return nil, nil, p.sourceError(f, j, err)
	}
	fi, err := file.Stat()
	switch {
	case err != nil:
		err = transient("stat source", err)
	case !sameFile(lst, fi):
		err = skip(msgSwapped) // swapped between the look and the open
	default:
		err = sourceMatches(j, fi)
	}
	if err != nil {
		file.Close()
		return nil, nil, err
	}
	return file, fi, nil
}

// recheckSource verifies after a long read (hash, upload) that the open file did not change
// and that its path still names it.
func (p *Pipeline) recheckSource(f *Folder, j *store.Job, file *os.File) error {
	fi, err := file.Stat()
	if err != nil {
		return transient("stat source", err)
	}
	if err := sourceMatches(j, fi); err != nil {
		return err
	}
	now, err := p.statSource(f, j)
	if err != nil {
		return err
	}
	if !sameFile(now, fi) {
		return skip(msgSwapped)
	}
	return nil
}

// sourceError turns a failed look at the source into the job's outcome. A file that is gone
// while its share is away is waited for, never skipped: the share usually comes back.
func (p *Pipeline) sourceError(f *Folder, j *store.Job, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if werr := p.recheckPlace(f, "input folder", f.Input); werr != nil {
			return werr
		}
		if p.innerMountGone(f, j) {
			return deferUntil(p.now().Add(p.opts.Recheck), msgInnerMountGone)
		}
		return skip(msgGone)
	case leavesTheFolder(err):
		return skip(msgSwapped)
	case errors.Is(err, fs.ErrPermission):
		return attention("cannot read the source file: permission denied (check the daemon user's access)")
	}
	return transient("open source", err)
}

const msgInnerMountGone = "waiting for the source's folder: it was on a filesystem mounted inside the input folder, which is not mounted now"

// innerMountGone reports whether j's file lived on a filesystem mounted inside the input folder
// (a share per camera or per project) that is not mounted now: then the file is away with its
// share, not gone, and is waited for like a file of an unmounted input. The share may come back
// with a new device id, so any other filesystem on the way to the file counts as mounted. A
// device the input itself has been on (before a remount) is not another filesystem.
func (p *Pipeline) innerMountGone(f *Folder, j *store.Job) bool {
	dir := path.Dir(j.RelPath)
	if dir == "." {
		return false
	}
	pl := p.place(f.Input)
	in, err := pl.open("input folder")
	if err != nil {
		return false
	}
	defer in.Close()
	rootFi, err := in.Stat(".")
	if err != nil || matchIdentity(j.FileID, rootFi) != idRemounted || pl.onOwnDevice(j.FileID) {
		// It lived on the input's own filesystem (perhaps before a remount of the input), or
		// this platform cannot tell.
		return false
	}
	// The nearest folder on the way that still exists: an unmounted share leaves its mount
	// point behind, a bare empty folder of the input's own filesystem.
	for ; dir != "."; dir = path.Dir(dir) {
		fi, err := in.Lstat(filepath.FromSlash(dir))
		if err != nil {
			continue
		}
		if !fi.IsDir() || !sameDevice(fi, rootFi) {
			return false // a filesystem is mounted there: the file itself is gone
		}
		d, err := in.Open(filepath.FromSlash(dir))
		if err != nil {
			return false
		}
		defer d.Close()
		_, err = d.Readdirnames(1)
		return errors.Is(err, io.EOF)
	}
	return false
}

// recheckPlace returns a wait error when the place is degraded now, else nil.
func (p *Pipeline) recheckPlace(f *Folder, role, path string) error {
	r, err := p.place(path).open(role)
	if err != nil {
		var de *degradedError
		if errors.As(err, &de) {
			return p.placeError(f, role, path, err)
		}
		return nil
	}
	r.Close()
	return nil
}

// leavesTheFolder recognizes a path that no longer leads to a file inside its folder: a link
// out of it, a loop, or a component that is not a folder any more.
func leavesTheFolder(err error) bool {
	return errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENOTDIR) ||
		strings.Contains(err.Error(), "path escapes from parent") // os.Root's own error, not exported
}
