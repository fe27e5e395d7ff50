package main

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
	platformSystemd = "linux-systemd"
	platformSysV    = "unix-systemv"
	platformLaunchd = "darwin-launchd"
	platformWindows = "windows-service"
)

// serviceState is what `service status` reports.
type serviceState int

const (
	stateNotInstalled serviceState = iota
	stateRunning
	stateStopped
	stateFailed
)

func (s serviceState) String() string {
	return [...]string{"not installed", "running", "stopped", "failed"}[s]
}

// serviceManager installs and controls one service definition.
type serviceManager interface {
	Install() error
	Uninstall() error
	Start() error
	Stop() error
	Restart() error
	Status() (serviceState, error)
}

// servicePlatform names the service manager of this machine.
func servicePlatform() string { return service.ChosenSystem().String() }

var errAlreadyInstalled = errors.New("already installed")

type kardianosManager struct{ s service.Service }

// idleProgram is the library's Interface for control commands, which never run the daemon.
type idleProgram struct{}

func (idleProgram) Start(service.Service) error { return nil }
func (idleProgram) Stop(service.Service) error  { return nil }

func newServiceManager(spec serviceSpec) (serviceManager, error) {
	s, err := service.New(idleProgram{}, kardianosConfig(spec))
	if err != nil {
		return nil, fmt.Errorf("service manager: %w", err)
	}
	return kardianosManager{s}, nil
}

// kardianosConfig hands the library our own definitions; it only writes and registers them.
func kardianosConfig(spec serviceSpec) *service.Config {
	c := &service.Config{
		Name:        spec.Name,
		DisplayName: spec.Name,
		Description: serviceDescription,
		Executable:  spec.Executable,
		Arguments:   spec.arguments(),
		EnvVars:     map[string]string{serviceEnvName: spec.Name},
		Option: service.KeyValue{
			"UserService":   spec.User,
			"SystemdScript": systemdUnit(spec),
			"SysvScript":    sysvScript(spec),
			"LaunchdConfig": launchdPlist(spec),
			"KeepAlive":     true,
			"RunAtLoad":     true,
		},
	}
	if servicePlatform() == platformWindows {
		w := windowsServiceConfig(spec)
		c.DisplayName, c.Description, c.Arguments, c.EnvVars = w.DisplayName, w.Description, w.Arguments, w.Env
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
		return fmt.Errorf("%w (%v)", errAlreadyInstalled, err)
	}
	return err
}

func (m kardianosManager) Uninstall() error { return m.s.Uninstall() }
func (m kardianosManager) Start() error     { return m.s.Start() }
func (m kardianosManager) Stop() error      { return m.s.Stop() }
func (m kardianosManager) Restart() error   { return m.s.Restart() }

func (m kardianosManager) Status() (serviceState, error) {
	st, err := m.s.Status()
	switch {
	case errors.Is(err, service.ErrNotInstalled):
		return stateNotInstalled, nil
	case err != nil && strings.Contains(err.Error(), "failed state"):
		return stateFailed, nil
	case err != nil:
		return stateNotInstalled, err
	case st == service.StatusRunning:
		return stateRunning, nil
	}
	return stateStopped, nil
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
