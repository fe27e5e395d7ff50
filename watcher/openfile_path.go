//go:build !linux && !darwin

package watcher

import "os"

func openRead(path string) (*os.File, error) { return os.Open(path) }
