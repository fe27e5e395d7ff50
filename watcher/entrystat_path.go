//go:build !linux && !darwin

package watcher

import (
	"io/fs"
	"os"
	"path/filepath"
)

// statEntry lstats one entry of a folder by its path (Windows has the data in
// the listing already, but the file identity needs the path).
func statEntry(_ *os.File, dirAbs, name string) (entryInfo, error) {
	p := filepath.Join(dirAbs, name)
	fi, err := os.Lstat(p)
	if err != nil {
		return entryInfo{}, err
	}
	var typ fs.FileMode
	switch {
	case fi.Mode().IsRegular():
	case fi.IsDir():
		typ = fs.ModeDir
	default:
		typ = fs.ModeIrregular
	}
	return entryInfo{typ: typ, size: fi.Size(), mtime: fi.ModTime(), id: fileIdentity(p, fi)}, nil
}
