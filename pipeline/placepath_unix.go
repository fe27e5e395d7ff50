//go:build unix

package pipeline

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// statNoLinks stats the folder at real (an absolute path without links) opening it one
// component at a time, never following a link: a component that has become a link fails.
func statNoLinks(real string) (os.FileInfo, error) {
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: "/", Err: err}
	}
	for _, name := range strings.Split(strings.TrimPrefix(filepath.Clean(real), "/"), "/") {
		if name == "" {
			continue
		}
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: real, Err: err}
		}
		fd = next
	}
	f := os.NewFile(uintptr(fd), real)
	defer f.Close()
	return f.Stat()
}
