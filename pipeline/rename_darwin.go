package pipeline

import (
	"errors"

	"golang.org/x/sys/unix"
)

func renameatNoReplace(ffd int, fromName string, tfd int, toName string) error {
	err := unix.RenameatxNp(ffd, fromName, tfd, toName, unix.RENAME_EXCL)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTSUP) {
		return errNoReplaceUnsupported
	}
	return err
}
