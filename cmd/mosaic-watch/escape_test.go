package main

import "testing"

func TestShownEscapesWhatWouldDriveATerminal(t *testing.T) {
	cases := map[string]string{
		"plain/clip.mov":              "plain/clip.mov",
		"日本語 clip é.mov":              "日本語 clip é.mov",
		"evil\x1b[2Jclip.mov":         `evil\x1b[2Jclip.mov`,
		"two\nlines.mov":              `two\nlines.mov`,
		"tab\there.mov":               `tab\there.mov`,
		"gpj.\u202emov":               `gpj.\u202emov`,
		"bad\xffbyte.mov":             `bad\xffbyte.mov`,
		"back\\slash\x07.mov":         `back\\slash\a.mov`,
		"plain\\ without controls":    "plain\\ without controls",
		"c1 \u0085 control\u009b.mov": `c1 \u0085 control\u009b.mov`,
	}
	for in, want := range cases {
		if got := shown(in); got != want {
			t.Errorf("shown(%q) = %q, want %q", in, got, want)
		}
	}
}
