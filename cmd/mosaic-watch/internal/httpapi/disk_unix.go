//go:build unix

package httpapi

import "golang.org/x/sys/unix"

// DiskFree reports the bytes available to this user and the size of the file system at path.
func DiskFree(path string) (free, total uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), uint64(st.Blocks) * uint64(st.Bsize), nil
}
