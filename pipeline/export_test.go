package pipeline

import "os"

// FileIdentity is the identity the watcher reports for the file at path (File.FileID), or ""
// when it cannot be read.
func FileIdentity(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	return fileIdentity(f)
}
