package main

// `mosaic-watch service ...`: install the daemon as a system (or per-user) service and control
// it. The definitions and the service manager live in package service; this file parses the
// command line and prints.

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/service"
)

const serviceAbout = `
Install mosaic-watch as a service that starts at boot and runs 'mosaic-watch run --config FILE'
(the absolute path of FILE is stored in the service, so it never depends on the directory you
run this from), and control it:

  install    write and enable the service definition (systemd unit, launchd plist, Windows
             service, or SysV init script); refuses a configuration that does not validate
  uninstall  stop the service and remove its definition (configuration, state and logs stay)
  start, stop, restart
  reload     make the running service re-read its configuration now (SIGHUP: systemctl reload,
             launchctl kill SIGHUP, the SysV pid file); it also reloads by itself about a
             second after the file is saved. Windows has no reload signal: saving is enough
  status     print running, stopped or not installed

System services need root (sudo) or Administrator. --user installs a per-user service instead
(systemd user unit, macOS LaunchAgent). Configuration edits apply while the service runs; the
few keys that need a restart (state_dir, http.listen, ...) are named in the log, and then
'service restart' applies them. After adding folders outside the installed ones run 'service
uninstall' and 'service install' again (the unit's mount dependencies and write permissions
come from the folders).`

var serviceNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

type serviceOpts struct {
	action string
	config string
	user   bool
	name   string
	dryRun bool
}

func cmdService(ctx context.Context, env *cliEnv, args []string) error {
	const usage = "install|uninstall|start|stop|restart|reload|status [--config FILE] [--user] " +
		"[--name NAME]"
	fs := newFlags(env, "service", usage, serviceAbout)
	var o serviceOpts
	fs.StringVar(&o.config, "config", "",
		"path of the YAML configuration `file` (required for install)")
	fs.BoolVar(&o.user, "user", false,
		"a per-user service (systemd user unit, macOS LaunchAgent) instead of a system service")
	fs.StringVar(&o.name, "name", service.DefaultName,
		"service `name`, to run several instances with different configurations")
	fs.BoolVar(&o.dryRun, "dry-run", false,
		"install: print the service definition instead of installing it")
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		o.action, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if o.action == "" && fs.NArg() > 0 { // flags first: service --user install --config FILE
		o.action = fs.Arg(0)
		if err := parseFlags(fs, fs.Args()[1:]); err != nil {
			return err
		}
	}
	if fs.NArg() > 0 {
		return usagef("service: unexpected argument %q", fs.Arg(0))
	}
	if !serviceNameRE.MatchString(o.name) {
		return usagef("service: --name %q: use letters, digits, '.', '_' and '-' only", o.name)
	}
	if o.user && runtime.GOOS == "windows" {
		return usagef("service: --user is not supported on Windows: install a system service and set " +
			"its account in the Services app (Log On tab)")
	}
	switch o.action {
	case "install":
		return serviceInstall(env, o)
	case "uninstall":
		return serviceUninstall(env, o)
	case "start", "restart":
		return serviceStart(env, o)
	case "stop":
		return serviceStop(env, o)
	case "reload":
		return serviceReload(env, o)
	case "status":
		return serviceStatus(env, o)
	case "":
		return usagef("service: name an action: install, uninstall, start, stop, restart, reload or " +
			"status")
	}
	return usagef("service: unknown action %q (install, uninstall, start, stop, restart, reload or "+
		"status)", o.action)
}

// newTarget reaches the service the flags name; cfg is the configuration to install (nil for
// the other actions).
func newTarget(o serviceOpts, cfg *config.Config) (*service.Target, error) {
	if service.Platform() == service.SysV && o.user {
		return nil, usagef("service: --user needs systemd or launchd; " +
			"this machine uses System V init scripts")
	}
	return service.NewTarget(o.name, o.user, cfg)
}

func serviceInstall(env *cliEnv, o serviceOpts) error {
	cfg, err := loadConfigFlag(env, "service install", o.config)
	if err != nil {
		return err // a *ConfigError exits 2 and lists every problem
	}
	t, err := newTarget(o, cfg)
	if err != nil {
		return err
	}
	if o.dryRun {
		fmt.Fprint(env.stdout, t.Definition())
		return nil
	}
	if err := t.CheckInstall(env.stderr); err != nil {
		return err
	}
	if err := t.PrepareFolders(); err != nil {
		return err
	}
	if err := t.Install(); err != nil {
		if errors.Is(err, service.ErrAlreadyInstalled) {
			return fmt.Errorf("service %q is already installed (%s): run 'mosaic-watch service "+
				"restart%s' to pick up configuration changes, or 'service uninstall%s' first to reinstall",
				o.name, t.DefinitionPath(), t.FlagsHint(), t.FlagsHint())
		}
		return fmt.Errorf("install the service: %w", err)
	}
	printInstalled(env, t, cfg)
	return nil
}

func printInstalled(env *cliEnv, t *service.Target, cfg *config.Config) {
	w := env.stdout
	fmt.Fprintf(w, "Installed %s %q: %s\n", t.Kind(), t.Spec.Name, t.DefinitionPath())
	fmt.Fprintf(w, "  runs     %s %s\n", t.Spec.Executable, strings.Join(t.Spec.Arguments(), " "))
	fmt.Fprintf(w, "  account  %s\n", t.Account())
	fmt.Fprintf(w, "  starts   %s\n", t.StartsWhen())
	fmt.Fprintf(w, "  logs     %s\n", t.LogsHint())
	fmt.Fprintf(w, "\nStart it now:  mosaic-watch service start%s\n", t.FlagsHint())
	for _, h := range t.Hints(cfg) {
		fmt.Fprintf(w, "\n%s\n", h)
	}
}

func serviceUninstall(env *cliEnv, o serviceOpts) error {
	t, err := newTarget(o, nil)
	if err != nil {
		return err
	}
	if st, err := t.Status(); err == nil && st == service.NotInstalled {
		fmt.Fprintf(env.stdout, "Service %q is not installed.\n", o.name)
		return nil
	} else if err == nil && st == service.Running {
		if err := t.Stop(); err != nil {
			fmt.Fprintf(env.stderr, "warning: stop the service: %v\n", err)
		}
	}
	if err := t.Uninstall(); err != nil {
		return fmt.Errorf("uninstall the service: %w", err)
	}
	fmt.Fprintf(env.stdout, "Removed %s %q (%s).\n", t.Kind(), o.name, t.DefinitionPath())
	fmt.Fprintln(env.stdout, "The configuration, the state database and the logs are kept.")
	return nil
}

func serviceStart(env *cliEnv, o serviceOpts) error {
	if o.config != "" { // catch a broken configuration before the service fails on it
		if _, err := loadConfigFlag(env, "service "+o.action, o.config); err != nil {
			return err
		}
	}
	t, err := newTarget(o, nil)
	if err != nil {
		return err
	}
	if st, err := t.Status(); err == nil && st == service.NotInstalled {
		return fmt.Errorf("service %q is not installed: "+
			"run 'mosaic-watch service install --config FILE%s' first", o.name, t.FlagsHint())
	}
	act, verb := t.Start, "start"
	if o.action == "restart" {
		act, verb = t.Restart, "restart"
	}
	if err := act(); err != nil {
		return fmt.Errorf("%s the service: %w (logs: %s)", verb, err, t.LogsHint())
	}
	// The manager's start returns at once; a daemon that fails on its configuration or folders
	// exits within moments, so check that it is still up.
	st := service.Stopped
	deadline := time.Now().Add(3 * time.Second)
	for ; time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if st, _ = t.Status(); st == service.Running {
			break
		}
	}
	if st != service.Running {
		return fmt.Errorf("service %q did not stay running (%s); see the logs: %s", o.name, st,
			t.LogsHint())
	}
	fmt.Fprintf(env.stdout, "Service %q is running.\nLogs: %s\n", o.name, t.LogsHint())
	return nil
}

func serviceStop(env *cliEnv, o serviceOpts) error {
	t, err := newTarget(o, nil)
	if err != nil {
		return err
	}
	st, err := t.Status()
	if err == nil && st == service.NotInstalled {
		return fmt.Errorf("service %q is not installed", o.name)
	}
	if err == nil && st != service.Running {
		fmt.Fprintf(env.stdout, "Service %q is not running.\n", o.name)
		return nil
	}
	if err := t.Stop(); err != nil {
		return fmt.Errorf("stop the service: %w", err)
	}
	fmt.Fprintf(env.stdout, "Service %q stopped.\n", o.name)
	return nil
}

func serviceReload(env *cliEnv, o serviceOpts) error {
	if o.config != "" { // say what is wrong here rather than only in the service's log
		if _, err := loadConfigFlag(env, "service reload", o.config); err != nil {
			return err
		}
	}
	t, err := newTarget(o, nil)
	if err != nil {
		return err
	}
	st, err := t.Status()
	if err == nil && st == service.NotInstalled {
		return fmt.Errorf("service %q is not installed", o.name)
	}
	if err == nil && st != service.Running {
		return fmt.Errorf("service %q is not running (%s): 'mosaic-watch service start%s' reads "+
			"the configuration as it starts", o.name, st, t.FlagsHint())
	}
	if err := t.Reload(); err != nil {
		return fmt.Errorf("reload the service: %w", err)
	}
	fmt.Fprintf(env.stdout, "Asked service %q to reload its configuration. The log says what "+
		"changed, or why the file was refused: %s\n", o.name, t.LogsHint())
	return nil
}

func serviceStatus(env *cliEnv, o serviceOpts) error {
	t, err := newTarget(o, nil)
	if err != nil {
		return err
	}
	st, err := t.Status()
	if err != nil {
		return fmt.Errorf("query the service: %w", err)
	}
	if st == service.NotInstalled {
		fmt.Fprintf(env.stdout, "%s: not installed\n", o.name)
		return nil
	}
	fmt.Fprintf(env.stdout, "%s: %s (%s %s)\n", o.name, st, t.Kind(), t.DefinitionPath())
	if st != service.Running {
		fmt.Fprintf(env.stdout, "Logs: %s\n", t.LogsHint())
	}
	return nil
}
