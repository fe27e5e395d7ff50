package pipeline

import "errors"

// errCrossDevice is returned by renameNoReplace when source and target are on different
// filesystems: the caller copies instead.
var errCrossDevice = errors.New("source and target are on different filesystems")
