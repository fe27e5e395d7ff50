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
var DefaultExclude = func() []string {
	var all []string
	for _, r := range builtinExcludes {
		all = append(all, r.patterns...)
	}
	return all
}()

// Reasons a path is or is not picked up, as Match reports them.
const (
	ReasonIncluded        = "included"
	ReasonExcluded        = "excluded"         // a pattern of Root.Exclude
	ReasonHidden          = "hidden"           // built-in
	ReasonPartialDownload = "partial download" // built-in
	ReasonTemporary       = "temporary file"   // built-in
	ReasonNASClutter      = "NAS clutter"      // built-in
	ReasonSyncTool        = "sync-tool file"   // built-in
	ReasonNotVideo        = "not a video type" // no DefaultInclude pattern matches
	ReasonNotIncluded     = "not included"     // no pattern of Root.Include matches
	ReasonNotRecursive    = "in a sub-folder"  // Root.Recursive is false
	ReasonSymlink         = "symbolic link"    // never followed
	ReasonNotRegular      = "not a regular file"
)

// builtinExcludes are DefaultExclude by the reason Match gives. The specific reasons come
// before "hidden", so ".DS_Store" is NAS clutter and ".x.mp4.part" a partial download.
var builtinExcludes = []struct {
	reason   string
	patterns []string
}{
	{ReasonPartialDownload, []string{"*.part", "*.partial", "*.filepart", "*.crdownload", "*.download"}},
	{ReasonTemporary, []string{"~$*", ".~lock.*", "*.tmp", "*.mosaic-partial", ".mosaic-watch.lock"}},
	{ReasonNASClutter, []string{".DS_Store", "._*", "Thumbs.db", "desktop.ini", "@eaDir", "#recycle"}},
	{ReasonSyncTool, []string{".syncthing.*", "~syncthing~*", ".stfolder", ".nfs*", ".fuse_hidden*"}},
	{ReasonHidden, []string{".*"}},
}

// rule is where a filter pattern came from, for Match.
type rule struct {
	pattern string
	reason  string
	builtin bool
}

// filter decides which relative paths of a root are candidates. Default
// patterns fold case; caller patterns match as written.
type filter struct {
	include     []glob
	includeSrc  []string // the pattern of each include glob
	exclude     []glob
	excludeRule []rule // where each exclude glob came from
	recursive   bool
	defaultInc  bool // include is DefaultInclude
}

func newFilter(r Root) *filter {
	f := &filter{recursive: r.Recursive, defaultInc: r.Include == nil}
	include, fold := r.Include, false
	if f.defaultInc {
		include, fold = DefaultInclude, true
	}
	for _, p := range include {
		f.include = append(f.include, newGlob(p, fold))
		f.includeSrc = append(f.includeSrc, p)
	}
	for _, b := range builtinExcludes {
		for _, p := range b.patterns {
			f.exclude = append(f.exclude, newGlob(p, true))
			f.excludeRule = append(f.excludeRule, rule{pattern: p, reason: b.reason, builtin: true})
		}
	}
	for _, p := range r.Exclude {
		f.exclude = append(f.exclude, newGlob(p, false))
		f.excludeRule = append(f.excludeRule, rule{pattern: p, reason: ReasonExcluded})
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
	return f.excludedBy(rel, lower, from) >= 0
}

// excludedBy returns the index of the first exclude pattern that matches rel or one of its
// folders from byte offset from on, or -1.
func (f *filter) excludedBy(rel, lower string, from int) int {
	for i, g := range f.exclude {
		if !g.base {
			if g.matchPathPre(rel, lower) {
				return i
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
				return i
			}
			start = end + 1
		}
	}
	return -1
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
