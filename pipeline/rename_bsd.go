//go:build unix && !linux && !darwin

package pipeline

func renameatNoReplace(int, string, int, string) error { return errNoReplaceUnsupported }
