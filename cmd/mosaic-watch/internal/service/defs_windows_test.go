package service

import (
	"syscall"
	"testing"
)

// On Windows the printed arguments must be exactly what the service is installed with:
// golang.org/x/sys/windows/svc/mgr quotes each one with syscall.EscapeArg.
func TestWindowsArgMatchesEscapeArg(t *testing.T) {
	for _, a := range []string{"run", "--config", `C:\ProgramData\mosaic-watch\config.yaml`,
		`\\nas\video\in`, `D:\My Videos\config.yaml`, `D:\My Videos\`, "tab\there", `say "hi"`,
		`a\"b`, `a\\" b`, `\`, ``, `日本語 フォルダ\config.yaml`} {
		if got, want := windowsArg(a), syscall.EscapeArg(a); got != want {
			t.Errorf("windowsArg(%q) = %s; syscall.EscapeArg gives %s", a, got, want)
		}
	}
}
