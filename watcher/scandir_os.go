//go:build !linux

package watcher

import (
	"io/fs"
	"os"
)

// scanDir is a folder opened for a scan (portable version: os.File).
type scanDir struct {
	f    *os.File
	path string
}

func openScanDir(path string) (*scanDir, error) {
	f, err := openRead(path)
	if err != nil {
		return nil, err
	}
	return &scanDir{f: f, path: path}, nil
}

func (d *scanDir) close() { d.f.Close() }

// entries calls fn for every entry. typ is 0 for a regular file, fs.ModeDir,
// or fs.ModeIrregular for anything else.
func (d *scanDir) entries(fn func(name []byte, typ fs.FileMode)) error {
	list, err := d.f.ReadDir(-1)
	if err != nil {
		return err // unreadable: skip the folder, as a failed listing always did
	}
	for _, e := range list {
		typ := e.Type()
		switch {
		case typ.IsRegular():
		case typ.IsDir():
			typ = fs.ModeDir
		default:
			typ = fs.ModeIrregular
		}
		fn([]byte(e.Name()), typ)
	}
	return nil
}

// stat lstats one entry of the folder.
func (d *scanDir) stat(name string) (entryInfo, error) {
	return statEntry(d.f, d.path, name)
}
