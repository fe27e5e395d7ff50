package pipeline

import (
	"errors"

	"golang.org/x/sys/unix"
)

func renameatNoReplace(ffd int, fromName string, tfd int, toName string) error {
	err := unix.Renameat2(ffd, fromName, tfd, toName, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.ENOTSUP) {
		return errNoReplaceUnsupported // e.g. some network filesystems
	}
	return err
}
