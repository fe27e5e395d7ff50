//go:build !unix

package httpapi

import "errors"

// DiskFree is not measured on this system: health then never reports a full disk.
func DiskFree(string) (free, total uint64, err error) {
	return 0, 0, errors.New("disk space not measured on this system")
}
