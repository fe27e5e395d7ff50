//go:build windows

package watcher

import (
	"fmt"
	"io/fs"

	"golang.org/x/sys/windows"
)

// fileIdentity returns "volume:index" for path. Windows does not put the file
// index into the stat data, so the file is opened for attributes only, with
// full sharing so that a writer is never disturbed.
func fileIdentity(path string, _ fs.FileInfo) fileID {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return fileID{}
	}
	h, err := windows.CreateFile(p, windows.FILE_READ_ATTRIBUTES,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil,
		windows.OPEN_EXISTING, windows.FILE_FLAG_BACKUP_SEMANTICS|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return fileID{}
	}
	defer windows.CloseHandle(h)
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		return fileID{}
	}
	return fileID{hi: uint64(info.VolumeSerialNumber), lo: uint64(info.FileIndexHigh)<<32 | uint64(info.FileIndexLow)}
}

// String is "volume:index" in hex, "" when the identity could not be read.
func (id fileID) String() string {
	if id == (fileID{}) {
		return ""
	}
	return fmt.Sprintf("%08x:%08x%08x", uint32(id.hi), uint32(id.lo>>32), uint32(id.lo))
}
