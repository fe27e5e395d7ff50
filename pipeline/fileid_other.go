//go:build !unix && !windows

package pipeline

import "os"

// fileIdentity is unknown here: an output put in place but not recorded (a crash, a temporary
// name that could not be removed) then waits for a person instead of being recognised.
func fileIdentity(*os.File) string { return "" }

// matchIdentity cannot compare identities here: size and mtime decide, and every access goes
// through the configured folder, so a link cannot lead outside it.
func matchIdentity(string, os.FileInfo) idMatch { return idUnknown }
