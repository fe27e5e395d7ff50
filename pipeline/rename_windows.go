package pipeline

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
)

// renameNoReplace renames fromName in folder from to toName in folder to without replacing a
// file at the target (MoveFileEx without MOVEFILE_REPLACE_EXISTING), failing with
// errCrossDevice across volumes. Windows has no directory handles to rename through, so the
// folders' paths are used; creating links needs privileges there, which limits swaps.
func renameNoReplace(from *os.Root, fromName string, to *os.Root, toName string) error {
	src, err := windows.UTF16PtrFromString(filepath.Join(from.Name(), fromName))
	if err != nil {
		return err
	}
	dst, err := windows.UTF16PtrFromString(filepath.Join(to.Name(), toName))
	if err != nil {
		return err
	}
	err = windows.MoveFileEx(src, dst, 0)
	switch {
	case errors.Is(err, windows.ERROR_NOT_SAME_DEVICE):
		return errCrossDevice
	case errors.Is(err, windows.ERROR_ALREADY_EXISTS), errors.Is(err, windows.ERROR_FILE_EXISTS):
		return &fs.PathError{Op: "rename", Path: toName, Err: fs.ErrExist}
	}
	return err
}
