package pipeline

// FileIdentity is the identity the watcher reports for a file (File.FileID).
var FileIdentity = fileIdentity
