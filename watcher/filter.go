package watcher

import (
	"path"
	"strings"
)

// DefaultInclude lists the video extensions watched when Root.Include is nil.
// They match case-insensitively.
var DefaultInclude = []string{"**/*.mp4", "**/*.mov", "**/*.m4v", "**/*.mkv", "**/*.webm", "**/*.avi"}

// DefaultExclude lists names that are never reported: hidden files and folders,
// partial/temp names of browsers, editors and transfer tools, OS and NAS
// clutter, sync-tool internals and our own temp and lock names. Patterns without a "/"
// match any path component, so excluded folders are not descended into. They
// match case-insensitively.
var DefaultExclude = []string{
	".*", "~$*", ".~lock.*",
	"*.part", "*.partial", "*.filepart", "*.crdownload", "*.download", "*.tmp",
	".DS_Store", "._*", "Thumbs.db", "desktop.ini", "@eaDir", "#recycle",
	".syncthing.*", "~syncthing~*", ".stfolder", ".nfs*", ".fuse_hidden*",
	"*.mosaic-partial", ".mosaic-watch.lock",
}

// filter decides which relative paths of a root are candidates. Default
// patterns fold case; caller patterns match as written.
type filter struct {
	include   []glob
	exclude   []glob
	recursive bool
}

func newFilter(r Root) *filter {
	f := &filter{recursive: r.Recursive}
	if r.Include == nil {
		for _, p := range DefaultInclude {
			f.include = append(f.include, newGlob(p, true))
		}
	} else {
		for _, p := range r.Include {
			f.include = append(f.include, newGlob(p, false))
		}
	}
	for _, p := range DefaultExclude {
		f.exclude = append(f.exclude, newGlob(p, true))
	}
	for _, p := range r.Exclude {
		f.exclude = append(f.exclude, newGlob(p, false))
	}
	return f
}

// excluded reports whether rel (slash-separated, non-empty) or any of its
// parent folders is excluded.
func (f *filter) excluded(rel string) bool { return f.excludedFrom(rel, 0) }

// excludedFrom is excluded for a path whose parent folder rel[:from] already
// passed dirAllowed (a walk checks folders on the way down): base-name
// patterns only need the components from byte offset from on.
func (f *filter) excludedFrom(rel string, from int) bool {
	return f.excludedLower(rel, strings.ToLower(rel), from)
}

func (f *filter) excludedLower(rel, lower string, from int) bool {
	for _, g := range f.exclude {
		if !g.base {
			if g.matchPathPre(rel, lower) {
				return true
			}
			continue
		}
		for start := from; start < len(rel); {
			end := strings.IndexByte(rel[start:], '/')
			if end < 0 {
				end = len(rel)
			} else {
				end += start
			}
			name, lowerName := rel[start:end], ""
			if g.fold {
				if len(lower) == len(rel) {
					lowerName = lower[start:end]
				} else { // case mapping changed byte lengths: lower this component alone
					lowerName = strings.ToLower(name)
				}
			}
			if g.matchName(name, lowerName) {
				return true
			}
			start = end + 1
		}
	}
	return false
}

// dirAllowed reports whether a folder at rel should be descended into.
func (f *filter) dirAllowed(rel string) bool { return f.dirAllowedIn(rel, 0) }

// dirAllowedIn is dirAllowed for a folder whose parent rel[:from] was allowed.
func (f *filter) dirAllowedIn(rel string, from int) bool {
	if !f.recursive {
		return false
	}
	return !f.excludedFrom(rel, from)
}

// fileAllowed reports whether a regular file at rel is a candidate.
func (f *filter) fileAllowed(rel string) bool { return f.fileAllowedIn(rel, 0) }

// fileAllowedIn is fileAllowed for a file whose folder rel[:from] was allowed.
func (f *filter) fileAllowedIn(rel string, from int) bool {
	if !f.recursive && strings.Contains(rel, "/") {
		return false
	}
	lower := strings.ToLower(rel)
	if f.excludedLower(rel, lower, from) {
		return false
	}
	for _, g := range f.include {
		if g.matchPathPre(rel, lower) {
			return true
		}
	}
	return false
}

// hintAllowed is the cheap pre-check for an event path whose type is not yet
// known (file or folder): only excludes and recursion apply.
func (f *filter) hintAllowed(rel string) bool {
	if !f.recursive && strings.Contains(rel, "/") {
		return false
	}
	return !f.excluded(rel)
}

// needsBoxCheck reports whether the file is an ISO-BMFF container whose top-level
// boxes must tile the file and contain moov.
func needsBoxCheck(rel string) bool {
	switch strings.ToLower(path.Ext(rel)) {
	case ".mp4", ".mov", ".m4v":
		return true
	}
	return false
}
