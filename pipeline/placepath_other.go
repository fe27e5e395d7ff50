//go:build !unix

package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
)

// statNoLinks stats the folder at real (a path without links), failing when a link now lies
// on it. Without openat here the look and the use are not atomic; it narrows the window.
func statNoLinks(real string) (os.FileInfo, error) {
	now, err := filepath.EvalSymlinks(real)
	if err != nil {
		return nil, err
	}
	if now != real {
		return nil, fmt.Errorf("%s now leads to %s", real, now)
	}
	return os.Stat(real)
}
