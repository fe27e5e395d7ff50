package watcher

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestMatchNamesTheDecidingRule(t *testing.T) {
	m := NewMatcher(Root{Recursive: true, Exclude: []string{"**/proxies/**", "*_draft.*"}})
	cases := []struct {
		rel, reason, rule, on string
		candidate             bool
	}{
		{"a/clip.MP4", ReasonIncluded, `include "**/*.mp4"`, "", true},
		{".hidden.mp4", ReasonHidden, `built-in ".*"`, "", false},
		{"a/.cache/clip.mp4", ReasonHidden, `built-in ".*"`, "a/.cache", false},
		{"movie.mp4.part", ReasonPartialDownload, `built-in "*.part"`, "", false},
		{".copy-movie.mp4.part", ReasonPartialDownload, `built-in "*.part"`, "", false},
		{"x.crdownload", ReasonPartialDownload, `built-in "*.crdownload"`, "", false},
		{"clip.tmp", ReasonTemporary, `built-in "*.tmp"`, "", false},
		{".DS_Store", ReasonNASClutter, `built-in ".DS_Store"`, "", false},
		{"@eaDir/thumb.mp4", ReasonNASClutter, `built-in "@eaDir"`, "@eaDir", false},
		{".syncthing.a.mp4.tmp", ReasonTemporary, `built-in "*.tmp"`, "", false},
		{"~syncthing~a.mp4", ReasonSyncTool, `built-in "~syncthing~*"`, "", false},
		{"day1/proxies/clip.mp4", ReasonExcluded, `exclude "**/proxies/**"`, "", false},
		{"day1/cut_draft.mp4", ReasonExcluded, `exclude "*_draft.*"`, "", false},
		{"notes.txt", ReasonNotVideo, "", "", false},
	}
	for _, c := range cases {
		got := m.File(c.rel)
		if got.Candidate != c.candidate || got.Reason != c.reason || got.On != c.on ||
			(c.rule != "" && got.Rule != c.rule) {
			t.Errorf("File(%q) = %+v, want %s by %s on %q", c.rel, got, c.reason, c.rule, c.on)
		}
		// The decision is the watcher's own.
		if allowed := m.f.fileAllowed(c.rel); allowed != got.Candidate {
			t.Errorf("File(%q).Candidate = %v but the watcher's filter says %v", c.rel, got.Candidate, allowed)
		}
	}
	if got := m.File("notes.txt"); !strings.Contains(got.Rule, `"**/*.mp4"`) {
		t.Errorf("not a video: rule %q should list the video patterns", got.Rule)
	}
	custom := NewMatcher(Root{Recursive: false, Include: []string{"*.mov"}})
	if got := custom.File("a.mp4"); got.Reason != ReasonNotIncluded || !strings.Contains(got.Rule, `"*.mov"`) {
		t.Errorf("custom include: %+v", got)
	}
	if got := custom.File("sub/a.mov"); got.Reason != ReasonNotRecursive {
		t.Errorf("non-recursive: %+v", got)
	}
	if got := m.Dir("x/proxies"); got.Candidate || got.Reason != ReasonExcluded {
		t.Errorf("Dir(proxies) = %+v", got)
	}
}

func TestSurveyListsCandidatesAndIgnored(t *testing.T) {
	root := t.TempDir()
	files := map[string][]byte{
		"a.mp4": validMP4(10), "sub/b.mov": validMP4(20), "c.mp4.part": validMP4(5), ".h.mp4": nil,
		"notes.txt": []byte("x"), "proxies/p.mp4": validMP4(1), "@eaDir/t.mp4": nil,
	}
	for rel, data := range files {
		writeFile(t, filepath.Join(root, filepath.FromSlash(rel)), data)
	}
	var got []string
	err := Survey(context.Background(), Root{Path: root, Recursive: true, Exclude: []string{"proxies"}},
		func(e Entry) error {
			s := e.Rel + "=" + e.Match.Reason
			if e.Match.Candidate {
				s += "/" + string(rune('0'+e.Size/10))
			}
			if e.Dir {
				s += "/dir"
			}
			got = append(got, s)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	mp4Size := func(n int) string { return string(rune('0' + int64(len(validMP4(n)))/10)) }
	want := []string{".h.mp4=hidden", "@eaDir=NAS clutter/dir", "a.mp4=included/" + mp4Size(10),
		"c.mp4.part=partial download", "notes.txt=not a video type",
		"proxies=excluded/dir", "sub/b.mov=included/" + mp4Size(20)}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Survey:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := Survey(context.Background(), Root{Path: filepath.Join(root, "missing")},
		func(Entry) error { return nil }); err == nil {
		t.Fatal("Survey of a missing root should fail")
	}
}

func TestInspectChecksLikeTheWatcher(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct {
		data []byte
		want string
	}{
		"ok.mp4":     {validMP4(100), ""},
		"nomoov.mp4": {noMoovMP4(100), "moov"},
		"empty.mp4":  {nil, "empty"},
		"any.mkv":    {[]byte("not checked beyond opening"), ""},
	}
	for name, c := range cases {
		p := filepath.Join(dir, name)
		writeFile(t, p, c.data)
		r, err := Inspect(p, name)
		if err != nil {
			t.Fatal(err)
		}
		if r.Size != int64(len(c.data)) || r.FileID == "" || r.ModTime.IsZero() {
			t.Errorf("%s: %+v", name, r)
		}
		if (c.want == "") != (r.Verdict == "") || !strings.Contains(r.Verdict, c.want) {
			t.Errorf("%s: verdict %q, want %q", name, r.Verdict, c.want)
		}
	}
	if _, err := Inspect(filepath.Join(dir, "gone.mp4"), "gone.mp4"); !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
}

// A symbolic link is listed as ignored, with the reason, and never followed.
func TestSurveyNamesSymbolicLinks(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a.mp4"), validMP4(10))
	if err := os.Symlink(filepath.Join(root, "a.mp4"), filepath.Join(root, "link.mp4")); err != nil {
		t.Skipf("cannot create a symbolic link here: %v", err)
	}
	got := map[string]string{}
	err := Survey(context.Background(), Root{Path: root}, func(e Entry) error {
		got[e.Rel] = e.Match.Reason
		if e.Rel == "link.mp4" && e.Match.Candidate {
			t.Errorf("a symbolic link is a candidate: %+v", e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got["link.mp4"] != "symbolic link" || got["a.mp4"] != "included" {
		t.Fatalf("Survey = %v, want link.mp4 ignored as a symbolic link and a.mp4 included", got)
	}
}
