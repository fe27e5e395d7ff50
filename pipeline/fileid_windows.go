package pipeline

import (
	"fmt"
	"os"
	"syscall"
)

// fileIdentity names the file behind f (volume serial number and file index, the same for
// every hard link to it), or "" when unknown.
func fileIdentity(f *os.File) string {
	var d syscall.ByHandleFileInformation
	if err := syscall.GetFileInformationByHandle(syscall.Handle(f.Fd()), &d); err != nil {
		return ""
	}
	return fmt.Sprintf("%d:%d", d.VolumeSerialNumber, uint64(d.FileIndexHigh)<<32|uint64(d.FileIndexLow))
}

// matchIdentity cannot compare a source with its recorded identity here yet (that needs an open
// handle): size and mtime decide, and every access goes through the configured folder (an
// os.Root), so a link cannot lead outside it.
func matchIdentity(string, os.FileInfo) idMatch { return idUnknown }
