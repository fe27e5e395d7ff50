//go:build !unix

package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
)

// statNoLinks stats the folder at real (a path without links), failing when a link now lies
// on it. Without openat here the look and the use are not atomic; it narrows the window. A
// path the platform cannot resolve (some mapped network drives) is only required to exist.
func statNoLinks(real string) (os.FileInfo, error) {
	if now, err := filepath.EvalSymlinks(real); err == nil && now != real {
		return nil, fmt.Errorf("%s now leads to %s", real, now)
	}
	return os.Stat(real)
}
