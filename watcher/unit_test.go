package watcher

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

func TestFilter(t *testing.T) {
	f := newFilter(Root{Recursive: true, Exclude: []string{"drafts/**", "*.bak.mp4"}})
	cases := map[string]bool{
		"a.mp4": true, "A.MP4": true, "x/y/z.MoV": true, "clip.webm": true, "c.avi": true, "c.m4v": true, "c.mkv": true,
		"notes.txt": false, "a.mp4.part": false, ".hidden.mp4": false, "dir/.hidden/a.mp4": false,
		"@eaDir/a.mp4": false, "#recycle/a.mp4": false, "~$a.mp4": false, ".~lock.a.mp4#": false,
		"a.tmp": false, "a.crdownload": false, "a.filepart": false, "a.download": false, "a.partial": false,
		"._a.mp4": false, "Thumbs.db": false, "desktop.ini": false, ".syncthing.a.mp4.tmp": false,
		"~syncthing~a.mp4.tmp": false, ".stfolder/a.mp4": false, ".nfs0001.mp4": false, ".fuse_hidden01.mp4": false,
		"a.mp4.mosaic-partial": false, "drafts/a/b.mp4": false, "x.bak.mp4": false, "THUMBS.DB": false,
	}
	for rel, want := range cases {
		if got := f.fileAllowed(rel); got != want {
			t.Errorf("fileAllowed(%q) = %v, want %v", rel, got, want)
		}
	}
	if f.dirAllowed("@eaDir") || f.dirAllowed("a/.git") || !f.dirAllowed("a/b") {
		t.Error("dirAllowed wrong")
	}
	nr := newFilter(Root{Recursive: false})
	if nr.fileAllowed("a/b.mp4") || !nr.fileAllowed("b.mp4") || nr.dirAllowed("a") {
		t.Error("non-recursive filter wrong")
	}
	// The daemon's lock file in each input folder is never a candidate, whatever the includes.
	all := newFilter(Root{Recursive: true, Include: []string{"**"}})
	if all.fileAllowed(".mosaic-watch.lock") || !all.fileAllowed("notes.txt") {
		t.Error("the input lock file must be excluded")
	}
	custom := newFilter(Root{Recursive: true, Include: []string{"in/**/*.mp4"}})
	if !custom.fileAllowed("in/x/y.mp4") || !custom.fileAllowed("in/y.mp4") || custom.fileAllowed("out/y.mp4") {
		t.Error("custom include wrong")
	}
}

func TestGlobDoubleStar(t *testing.T) {
	for _, c := range []struct {
		pat, rel string
		want     bool
	}{
		{"**/*.mp4", "a.mp4", true}, {"**/*.mp4", "a/b/c.mp4", true}, {"a/**", "a/b/c", true},
		{"a/**/c", "a/c", true}, {"a/**/c", "a/x/y/c", true}, {"a/*/c", "a/x/y/c", false}, {"*.mp4", "a/b.mp4", false},
	} {
		if got := newGlob(c.pat, false).matchPath(c.rel); got != c.want {
			t.Errorf("%q ~ %q = %v, want %v", c.pat, c.rel, got, c.want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	abs := t.TempDir()
	bad := []Options{
		{},
		{Roots: []Root{{Path: "relative/dir"}}},
		{Roots: []Root{{Path: abs, Include: []string{"[unclosed"}}}},
		{Roots: []Root{{Path: abs, Exclude: []string{"a/[x"}}}},
		{Roots: []Root{{Path: abs, Settle: -time.Second}}},
		{Roots: []Root{{Path: abs, Mode: "inotify"}}},
		{Roots: []Root{{Path: abs}, {Path: abs + "/"}}},
		{Roots: []Root{{Path: abs}}, ScanInterval: -1},
	}
	for i, o := range bad {
		if _, err := New(o); err == nil {
			t.Errorf("case %d: New accepted %+v", i, o)
		}
	}
	w, err := New(Options{Roots: []Root{{Path: abs}}})
	if err != nil {
		t.Fatal(err)
	}
	r := w.opts.Roots[0]
	if r.Settle != 10*time.Second || r.Mode != ModeAuto || r.PollInterval != 10*time.Second ||
		r.IncompleteAfter != 30*time.Minute || w.opts.ScanInterval != time.Hour || w.opts.DegradedRecheck != 5*time.Second {
		t.Fatalf("defaults not applied: %+v %+v", r, w.opts)
	}
}

func TestCheckBoxes(t *testing.T) {
	large := func(typ string, payload int) []byte { // 64-bit largesize box
		b := make([]byte, 16+payload)
		binary.BigEndian.PutUint32(b, 1)
		copy(b[4:], typ)
		binary.BigEndian.PutUint64(b[8:], uint64(16+payload))
		return b
	}
	toEnd := func(typ string, payload int) []byte { // size 0: to end of file
		b := make([]byte, 8+payload)
		copy(b[4:], typ)
		return b
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for name, c := range map[string]struct {
		data []byte
		want string // substring; "" = ready
	}{
		"valid":         {validMP4(10), ""},
		"moov last":     {cat(ftyp, box("mdat", make([]byte, 50)), box("moov", nil)), ""},
		"largesize":     {cat(ftyp, box("moov", nil), large("mdat", 100)), ""},
		"size zero":     {cat(ftyp, box("moov", nil), toEnd("mdat", 100)), ""},
		"no moov":       {noMoovMP4(10), "no moov"},
		"past eof":      {cat(ftyp, box("moov", nil), box("mdat", make([]byte, 20))[:20]), "past end of file"},
		"large past":    {cat(ftyp, box("moov", nil), large("mdat", 100)[:60]), "past end of file"},
		"trailing junk": {cat(validMP4(1), []byte{1, 2, 3}), "trailing"},
		"bad size":      {cat(ftyp, []byte{0, 0, 0, 4, 'm', 'o', 'o', 'v'}), "invalid size"},
	} {
		got := checkBoxes(bytes.NewReader(c.data), int64(len(c.data)))
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: got %q, want %q", name, got, c.want)
		}
	}
}
