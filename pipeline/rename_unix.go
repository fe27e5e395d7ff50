//go:build unix

package pipeline

import (
	"errors"
	"io/fs"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames fromName in folder from to toName in folder to, both already
// pinned open, failing with fs.ErrExist rather than replacing a file at the target, and with
// errCrossDevice across filesystems.
func renameNoReplace(from *os.Root, fromName string, to *os.Root, toName string) error {
	fd, err := from.Open(".")
	if err != nil {
		return err
	}
	defer fd.Close()
	td, err := to.Open(".")
	if err != nil {
		return err
	}
	defer td.Close()
	ffd, tfd := int(fd.Fd()), int(td.Fd())
	err = renameatNoReplace(ffd, fromName, tfd, toName)
	if errors.Is(err, errNoReplaceUnsupported) {
		err = linkThenUnlink(ffd, fromName, tfd, toName)
	}
	runtime.KeepAlive(fd)
	runtime.KeepAlive(td)
	switch {
	case errors.Is(err, unix.EXDEV):
		return errCrossDevice
	case errors.Is(err, unix.EEXIST):
		return &fs.PathError{Op: "rename", Path: toName, Err: fs.ErrExist}
	}
	return err
}

// errNoReplaceUnsupported: the system or filesystem has no atomic "rename unless it exists".
var errNoReplaceUnsupported = errors.New("no-replace rename unsupported")

// linkThenUnlink is the portable no-replace rename: a hard link fails if the target exists.
// Filesystems without hard links get a rename after one more look (a tiny window remains).
func linkThenUnlink(ffd int, fromName string, tfd int, toName string) error {
	err := unix.Linkat(ffd, fromName, tfd, toName, 0)
	if err == nil {
		return unix.Unlinkat(ffd, fromName, 0)
	}
	if !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EMLINK) {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(tfd, toName, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		return unix.EEXIST
	}
	return unix.Renameat(ffd, fromName, tfd, toName)
}
