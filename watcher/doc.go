// Package watcher decides when a video file dropped into a watched folder is
// completely written and ready to upload.
//
// Events from fsnotify are only hints ("look at this path again"); a full scan
// of every root at start, on a jittered interval, and after any event overflow
// or watcher error is the truth. A file is Ready once its size, mtime and
// identity (dev:inode) stayed the same for the whole settle window across at
// least two observations, it opens for reading, and (for MP4/MOV/M4V) its
// top-level boxes tile the file and include a moov box.
//
// Symlinks: the watcher never follows symbolic links, neither to directories
// nor to files (even a link to a file inside the root is skipped). This keeps
// scans inside the root and makes symlink loops harmless. Move or copy the
// real file into the folder instead.
//
// Names are reported exactly as the operating system returns them (no Unicode
// normalisation), so NFC and NFD spellings of the same name are different
// files, as they are on Linux.
//
// Goroutines: one event loop owns all settle state and does no I/O; one
// reader per fsnotify watcher turns kernel events into hints; a small pool of
// check workers does stat/open/read and watch additions; when a scan is due,
// one goroutine per root starts it and four walkers share the tree (listing
// folders, lstat'ing candidates relative to the folder's descriptor, sending
// batches of observations). Settle deadlines live in a single min-heap driven
// by one timer, so 100k settling files cost no goroutines; a tracked file
// costs about 128 bytes plus its name.
package watcher
