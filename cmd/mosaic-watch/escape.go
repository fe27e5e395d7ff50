package main

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// shown makes a file name, or a message that may contain one, safe to print on a terminal:
// control characters (escape sequences that would drive the terminal, newlines that would break
// a table) and bidirectional overrides (which make a name read as another) are written as Go
// escapes, invalid UTF-8 as \xNN. Everything else, accents and CJK included, stays as it is.
func shown(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case unsafeRune(r):
			q := strings.Trim(fmt.Sprintf("%+q", r), "'") // \n, \x1b, \u202e
			b.WriteString(q)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	return strings.ContainsFunc(s, unsafeRune)
}

// unsafeRune reports control characters and the bidirectional formatting characters.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) ||
		r == 0x200e || r == 0x200f || r == 0x061c
}
