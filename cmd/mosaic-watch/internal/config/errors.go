package config

import (
	"errors"
	"io/fs"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a configuration file.
type Error struct {
	File string // the configuration file
	Line int    // 1-based; 0 when the problem has no place in the file (e.g. a missing section)
	Path string // key path like "folders[1].agent_id"; "" for the file as a whole
	Msg  string
	Err  error // the cause when the file could not be read (errors.Is(err, fs.ErrNotExist))
}

// Error formats the problem as FILE:LINE: key.path: message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorList is every problem found in a configuration file; Load returns it as its error.
// Like go/scanner.ErrorList, except that Error prints every problem, one per line.
type ErrorList []*Error

// Add appends a problem.
func (l *ErrorList) Add(file string, line int, path, msg string) {
	*l = append(*l, &Error{File: file, Line: line, Path: path, Msg: msg})
}

// Sort orders the problems by line, keeping the order of problems on the same line.
func (l ErrorList) Sort() {
	slices.SortStableFunc(l, func(a, b *Error) int { return a.Line - b.Line })
}

func (l ErrorList) Error() string {
	if len(l) == 0 {
		return "no configuration problems"
	}
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// Err returns the list as an error, or nil when it is empty.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// errText drops the path from *fs.PathError (the caller names the file already).
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
