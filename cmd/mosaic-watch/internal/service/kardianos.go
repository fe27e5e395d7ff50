package service

// The only file that uses github.com/kardianos/service: swap it for thin per-OS code without
// touching the rest of the service command.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kardianos/service"
)

// Service manager platforms as the library names them.
const (
	Systemd = "linux-systemd"
	SysV    = "unix-systemv"
	Launchd = "darwin-launchd"
	Windows = "windows-service"
)

// State is what `service status` reports.
type State int

const (
	NotInstalled State = iota
	Running
	Stopped
	Failed
)

func (s State) String() string {
	return [...]string{"not installed", "running", "stopped", "failed"}[s]
}

// manager installs and controls one service definition.
type manager interface {
	Install() error
	Uninstall() error
	Start() error
	Stop() error
	Restart() error
	Status() (State, error)
}

// Platform names the service manager of this machine.
func Platform() string { return service.ChosenSystem().String() }

var ErrAlreadyInstalled = errors.New("already installed")

type kardianosManager struct{ s service.Service }

// idleProgram is the library's Interface for control commands, which never run the daemon.
type idleProgram struct{}

func (idleProgram) Start(service.Service) error { return nil }
func (idleProgram) Stop(service.Service) error  { return nil }

func newManager(spec Spec) (manager, error) {
	s, err := service.New(idleProgram{}, kardianosConfig(spec))
	if err != nil {
		return nil, fmt.Errorf("service manager: %w", err)
	}
	return kardianosManager{s}, nil
}

// kardianosConfig hands the library our own definitions; it only writes and registers them.
func kardianosConfig(spec Spec) *service.Config {
	c := &service.Config{
		Name:        spec.Name,
		DisplayName: spec.Name,
		Description: description,
		Executable:  spec.Executable,
		Arguments:   spec.Arguments(),
		EnvVars:     map[string]string{EnvName: spec.Name},
		Option: service.KeyValue{
			"UserService":   spec.User,
			"SystemdScript": systemdUnit(spec),
			"SysvScript":    sysvScript(spec),
			"LaunchdConfig": launchdPlist(spec),
			"KeepAlive":     true,
			"RunAtLoad":     true,
		},
	}
	if Platform() == Windows {
		w := windowsServiceConfig(spec)
		c.DisplayName, c.Description = w.DisplayName, w.Description
		c.Arguments, c.EnvVars = w.Arguments, w.Env
		c.Dependencies = w.Dependencies
		c.Option["StartType"] = w.StartType
		c.Option["DelayedAutoStart"] = w.DelayedAutoStart
		c.Option["OnFailure"] = w.OnFailure
		c.Option["OnFailureDelayDuration"] = w.OnFailureDelay.String()
		c.Option["OnFailureResetPeriod"] = w.ResetPeriod
	}
	return c
}

func (m kardianosManager) Install() error {
	err := m.s.Install()
	if err != nil && (strings.Contains(err.Error(), "already exists")) {
		return fmt.Errorf("%w (%v)", ErrAlreadyInstalled, err)
	}
	return err
}

func (m kardianosManager) Uninstall() error { return m.s.Uninstall() }
func (m kardianosManager) Start() error     { return m.s.Start() }
func (m kardianosManager) Stop() error      { return m.s.Stop() }
func (m kardianosManager) Restart() error   { return m.s.Restart() }

func (m kardianosManager) Status() (State, error) {
	st, err := m.s.Status()
	switch {
	case errors.Is(err, service.ErrNotInstalled):
		return NotInstalled, nil
	case err != nil && strings.Contains(err.Error(), "failed state"):
		return Failed, nil
	case err != nil:
		return NotInstalled, err
	case st == service.StatusRunning:
		return Running, nil
	}
	return Stopped, nil
}

// managedProgram is the daemon as the service manager drives it: start must return at once,
// stop must return within a bounded time.
type managedProgram struct {
	start func() error
	stop  func() error
}

func (p managedProgram) Start(service.Service) error { return p.start() }
func (p managedProgram) Stop(service.Service) error  { return p.stop() }

// runManaged hands the process to the service manager (the Windows SCM dispatcher) until it
// stops the service.
func runManaged(name string, p managedProgram) error {
	s, err := service.New(p, &service.Config{Name: name})
	if err != nil {
		return fmt.Errorf("service manager: %w", err)
	}
	return s.Run()
}
