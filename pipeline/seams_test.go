package pipeline

import "os"

// SetRemoveTemp replaces how a published download's temporary name is removed, until restore is
// called. Set it before the pipeline starts and restore it after the pipeline stops.
func SetRemoveTemp(remove func(root *os.Root, name string) error) (restore func()) {
	old := removeTemp
	removeTemp = remove
	return func() { removeTemp = old }
}
