package service

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// ErrReloadUnsupported: the service manager cannot ask a running service to reload.
var ErrReloadUnsupported = errors.New("Windows services cannot be signalled to reload: the " +
	"daemon reloads its configuration by itself about a second after the file is saved (it " +
	"watches the file); to apply keys that need a restart, run 'mosaic-watch service restart'")

// Reload asks the running service to reload its configuration: SIGHUP, the way each manager
// delivers it (systemd's ExecReload=, launchctl kill, the SysV pid file). It returns once the
// signal is sent; the daemon logs the result.
func (t *Target) Reload() error {
	s := t.Spec
	switch t.Platform {
	case Systemd:
		args := []string{"reload", s.Name}
		if s.User {
			args = append([]string{"--user"}, args...)
		}
		return run("systemctl", args...)
	case Launchd:
		domain := "system"
		if s.User {
			domain = "gui/" + strconv.Itoa(os.Getuid())
		}
		return run("launchctl", "kill", "SIGHUP", domain+"/"+s.Name)
	case SysV:
		raw, err := os.ReadFile("/var/run/" + s.Name + ".pid")
		if err != nil {
			return fmt.Errorf("find the running service: %w", err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil {
			return fmt.Errorf("find the running service: bad pid file: %w", err)
		}
		p, err := os.FindProcess(pid)
		if err == nil {
			err = p.Signal(syscall.SIGHUP)
		}
		return err
	case Windows:
		return ErrReloadUnsupported
	}
	return fmt.Errorf("reload is not supported by the %s service manager; send SIGHUP to the "+
		"daemon, or restart it", t.Platform)
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err,
			strings.TrimSpace(string(out)))
	}
	return nil
}
