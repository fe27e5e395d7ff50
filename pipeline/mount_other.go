//go:build !unix

package pipeline

import "os"

// sameDevice cannot tell mount points apart here (drive letters and UNC paths are not mounted
// into a parent folder): every place counts as an ordinary folder, which must still exist.
func sameDevice(a, b os.FileInfo) bool { return true }

// sameFile has no portable identity to compare here; existence is checked by the caller.
func sameFile(a, b os.FileInfo) bool { return true }
