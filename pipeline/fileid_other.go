//go:build !unix

package pipeline

import "os"

// fileIdentity is unknown here: a renamed output is then downloaded again after a crash,
// which is safe, only slower.
func fileIdentity(os.FileInfo) string { return "" }

// matchIdentity cannot compare identities here: size and mtime decide, and every access goes
// through the configured folder, so a link cannot lead outside it.
func matchIdentity(string, os.FileInfo) idMatch { return idUnknown }
