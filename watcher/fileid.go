package watcher

// fileID identifies a file on its volume: (device, inode) on unix, (volume
// serial, file index) on Windows. It is kept as two numbers, not a string:
// a scan compares 100k of them and tracked files keep one each. String gives
// the Event.FileID form.
type fileID struct{ hi, lo uint64 }
