package main

// `mosaic-watch service ...`: install the daemon as a system (or per-user) service and control
// it. The definitions come from service_defs.go; the service manager is reached through
// service_kardianos.go only.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"
)

const serviceAbout = `
Install mosaic-watch as a service that starts at boot and runs 'mosaic-watch run --config FILE'
(the absolute path of FILE is stored in the service, so it never depends on the directory you
run this from), and control it:

  install    write and enable the service definition (systemd unit, launchd plist, Windows
             service, or SysV init script); refuses a configuration that does not validate
  uninstall  stop the service and remove its definition (configuration, state and logs stay)
  start, stop, restart
  status     print running, stopped or not installed

System services need root (sudo) or Administrator. --user installs a per-user service instead
(systemd user unit, macOS LaunchAgent). After editing the configuration run 'service restart';
after changing its folders run 'service uninstall' and 'service install' again (the unit's mount
dependencies and write permissions come from the folders).`

var serviceNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

type serviceOpts struct {
	action string
	config string
	user   bool
	name   string
	dryRun bool
}

func cmdService(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "service", "install|uninstall|start|stop|restart|status [--config FILE] [--user] [--name NAME]", serviceAbout)
	var o serviceOpts
	fs.StringVar(&o.config, "config", "", "path of the YAML configuration `file` (required for install)")
	fs.BoolVar(&o.user, "user", false, "a per-user service (systemd user unit, macOS LaunchAgent) instead of a system service")
	fs.StringVar(&o.name, "name", defaultServiceName, "service `name`, to run several instances with different configurations")
	fs.BoolVar(&o.dryRun, "dry-run", false, "install: print the service definition instead of installing it")
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
		return usagef("service: --user is not supported on Windows: install a system service and set its account in the Services app (Log On tab)")
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
	case "status":
		return serviceStatus(env, o)
	case "":
		return usagef("service: name an action: install, uninstall, start, stop, restart or status")
	}
	return usagef("service: unknown action %q (install, uninstall, start, stop, restart or status)", o.action)
}

// serviceTarget is one service on this machine: how it is defined and how to reach it.
type serviceTarget struct {
	platform string
	spec     serviceSpec
	mgr      serviceManager
}

func newServiceTarget(o serviceOpts, cfg *Config) (*serviceTarget, error) {
	home, _ := os.UserHomeDir()
	t := &serviceTarget{platform: servicePlatform()}
	if t.platform == platformSysV && o.user {
		return nil, usagef("service: --user needs systemd or launchd; this machine uses System V init scripts")
	}
	if cfg != nil {
		exe, err := serviceExecutable()
		if err != nil {
			return nil, err
		}
		t.spec = newServiceSpec(cfg, exe, o.name, o.user, home)
	} else {
		t.spec = serviceSpec{Name: o.name, User: o.user, Home: home}
	}
	mgr, err := newServiceManager(t.spec)
	if err != nil {
		return nil, err
	}
	t.mgr = mgr
	return t, nil
}

func serviceExecutable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this program's path: %w", err)
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	return filepath.Abs(exe)
}

func serviceInstall(env *cliEnv, o serviceOpts) error {
	cfg, err := loadConfigFlag(env, "service install", o.config)
	if err != nil {
		return err // a *ConfigError exits 2 and lists every problem
	}
	t, err := newServiceTarget(o, cfg)
	if err != nil {
		return err
	}
	if o.dryRun {
		fmt.Fprint(env.stdout, serviceDefinition(t.platform, t.spec))
		return nil
	}
	if err := t.checkInstall(env); err != nil {
		return err
	}
	if err := t.prepareFolders(); err != nil {
		return err
	}
	if err := t.mgr.Install(); err != nil {
		if errors.Is(err, errAlreadyInstalled) {
			return fmt.Errorf("service %q is already installed (%s): run 'mosaic-watch service restart%s' to pick up configuration changes, or 'service uninstall%s' first to reinstall", o.name, t.definitionPath(), t.flagsHint(), t.flagsHint())
		}
		return fmt.Errorf("install the service: %w", err)
	}
	t.printInstalled(env, cfg)
	return nil
}

// checkInstall refuses installs that cannot work and explains how to fix them.
func (t *serviceTarget) checkInstall(env *cliEnv) error {
	if runtime.GOOS != "windows" && !t.spec.User && os.Geteuid() != 0 {
		return errors.New("installing a system service needs root: run it with sudo, or pass --user for a per-user service")
	}
	for _, p := range append(t.spec.folders(), t.spec.Executable, t.spec.ConfigFile) {
		if strings.Contains(p, "{{") {
			return fmt.Errorf("path %q contains '{{', which the service installer cannot write", p)
		}
	}
	if t.platform == platformSystemd && !t.spec.User && t.spec.Name == defaultServiceName {
		for _, p := range []string{"/usr/lib/systemd/system/mosaic-watch.service", "/lib/systemd/system/mosaic-watch.service"} {
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("the mosaic-watch package already provides the service (%s): edit /etc/mosaic-watch/config.yaml and run 'systemctl enable --now mosaic-watch', or pass --name to install another instance", p)
			}
		}
	}
	if dir := filepath.Dir(t.spec.Executable); strings.Contains(dir, "go-build") || pathWithin(filepath.ToSlash(dir), filepath.ToSlash(os.TempDir())) {
		fmt.Fprintf(env.stderr, "warning: %s is in a temporary directory; the service needs it to stay there (install the binary first, e.g. to /usr/local/bin)\n", t.spec.Executable)
	}
	return nil
}

// prepareFolders creates the state directory and, for the sandboxed systemd unit, the output
// folders: its ReadWritePaths= must exist, and the daemon cannot create them under
// ProtectSystem=strict.
func (t *serviceTarget) prepareFolders() error {
	if !t.spec.managedStateDir() {
		if err := os.MkdirAll(t.spec.StateDir, 0o700); err != nil {
			return fmt.Errorf("create state_dir: %w", err)
		}
	}
	if t.platform != platformSystemd || t.spec.User {
		return nil
	}
	for _, p := range t.spec.Outputs {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("create output folder: %w", err)
		}
	}
	return nil
}

func (t *serviceTarget) printInstalled(env *cliEnv, cfg *Config) {
	w := env.stdout
	fmt.Fprintf(w, "Installed %s %q: %s\n", t.kind(), t.spec.Name, t.definitionPath())
	fmt.Fprintf(w, "  runs     %s %s\n", t.spec.Executable, strings.Join(t.spec.arguments(), " "))
	fmt.Fprintf(w, "  account  %s\n", t.account())
	fmt.Fprintf(w, "  starts   %s\n", t.startsWhen())
	fmt.Fprintf(w, "  logs     %s\n", t.logsHint())
	fmt.Fprintf(w, "\nStart it now:  mosaic-watch service start%s\n", t.flagsHint())
	for _, h := range t.installHints(cfg) {
		fmt.Fprintf(w, "\n%s\n", h)
	}
}

// installHints are the service traps users hit (FIELD-NOTES b 11-13) that apply to this install.
func (t *serviceTarget) installHints(cfg *Config) []string {
	var hints []string
	if t.platform == platformSystemd && t.spec.User {
		hints = append(hints, "A user service starts when you log in. To start it at boot without logging in, run:\n  loginctl enable-linger "+currentUserName())
	}
	if raw, err := os.ReadFile(cfg.File); err == nil && strings.Contains(string(raw), "${") {
		switch t.platform {
		case platformSystemd, platformSysV:
			where := "/etc/mosaic-watch/environment"
			if t.spec.User {
				where = "~/.config/mosaic-watch/environment"
			}
			hints = append(hints, "The configuration uses ${...} variables, and the service does not see your shell's environment:\nput them as KEY=value lines in "+where+" (chmod 600), or use mosaic.api_key_file.")
		default:
			hints = append(hints, "The configuration uses ${...} variables, and the service does not see your shell's environment:\nuse mosaic.api_key_file for the API key instead.")
		}
	}
	if t.platform == platformLaunchd {
		if p := macProtectedFolders(t.spec.folders()); len(p) > 0 {
			hints = append(hints, "macOS privacy protection (TCC) silently blocks services from "+strings.Join(p, ", ")+".\nGive "+t.spec.Executable+" Full Disk Access: System Settings > Privacy & Security > Full Disk Access, click +, press Cmd-Shift-G and enter its path. Then restart the service.")
		}
	}
	if t.platform == platformWindows {
		for _, p := range t.spec.folders() {
			if isMappedDrive(p) {
				hints = append(hints, fmt.Sprintf("warning: %s is on a mapped network drive. Services cannot see drive letters mapped in your session:\nuse its UNC path (\\\\server\\share\\...) in the configuration, and run the service as an account that can read the share\n(LocalSystem has no network credentials): Services app > Mosaic Watch > Log On.", p))
			}
		}
		if cfg.ShutdownTimeout > windowsStopCap {
			hints = append(hints, fmt.Sprintf("note: shutdown_timeout %s is capped at %s under the Windows service manager.", cfg.ShutdownTimeout, windowsStopCap))
		}
	}
	return hints
}

// macProtectedFolders lists the folders macOS privacy protection guards (Desktop, Documents,
// Downloads, external volumes).
func macProtectedFolders(paths []string) []string {
	var out []string
	protected := regexp.MustCompile(`^/Users/[^/]+/(Desktop|Documents|Downloads|Library/Mobile Documents)(/|$)|^/Volumes/`)
	for _, p := range paths {
		if protected.MatchString(filepath.ToSlash(p)) {
			out = append(out, p)
		}
	}
	return out
}

func serviceUninstall(env *cliEnv, o serviceOpts) error {
	t, err := newServiceTarget(o, nil)
	if err != nil {
		return err
	}
	if st, err := t.status(); err == nil && st == stateNotInstalled {
		fmt.Fprintf(env.stdout, "Service %q is not installed.\n", o.name)
		return nil
	} else if err == nil && st == stateRunning {
		if err := t.mgr.Stop(); err != nil {
			fmt.Fprintf(env.stderr, "warning: stop the service: %v\n", err)
		}
	}
	if err := t.mgr.Uninstall(); err != nil {
		return fmt.Errorf("uninstall the service: %w", err)
	}
	t.cleanupAfterUninstall()
	fmt.Fprintf(env.stdout, "Removed %s %q (%s).\n", t.kind(), o.name, t.definitionPath())
	fmt.Fprintln(env.stdout, "The configuration, the state database and the logs are kept.")
	return nil
}

// cleanupAfterUninstall removes what the library leaves behind: the SysV runlevel links and
// pid file.
func (t *serviceTarget) cleanupAfterUninstall() {
	if t.platform != platformSysV {
		return
	}
	links, _ := filepath.Glob("/etc/rc[0-6S].d/[SK][0-9][0-9]" + t.spec.Name)
	for _, l := range links {
		if dest, err := os.Readlink(l); err == nil && filepath.Base(dest) == t.spec.Name {
			os.Remove(l)
		}
	}
	os.Remove("/var/run/" + t.spec.Name + ".pid")
}

func serviceStart(env *cliEnv, o serviceOpts) error {
	if o.config != "" { // catch a broken configuration before the service fails on it
		if _, err := loadConfigFlag(env, "service "+o.action, o.config); err != nil {
			return err
		}
	}
	t, err := newServiceTarget(o, nil)
	if err != nil {
		return err
	}
	if st, err := t.status(); err == nil && st == stateNotInstalled {
		return fmt.Errorf("service %q is not installed: run 'mosaic-watch service install --config FILE%s' first", o.name, t.flagsHint())
	}
	act, verb := t.mgr.Start, "start"
	if o.action == "restart" {
		act, verb = t.mgr.Restart, "restart"
	}
	if err := act(); err != nil {
		return fmt.Errorf("%s the service: %w (logs: %s)", verb, err, t.logsHint())
	}
	// The manager's start returns at once; a daemon that fails on its configuration or folders
	// exits within moments, so check that it is still up.
	st := stateStopped
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if st, _ = t.status(); st == stateRunning {
			break
		}
	}
	if st != stateRunning {
		return fmt.Errorf("service %q did not stay running (%s); see the logs: %s", o.name, st, t.logsHint())
	}
	fmt.Fprintf(env.stdout, "Service %q is running.\nLogs: %s\n", o.name, t.logsHint())
	return nil
}

func serviceStop(env *cliEnv, o serviceOpts) error {
	t, err := newServiceTarget(o, nil)
	if err != nil {
		return err
	}
	st, err := t.status()
	if err == nil && st == stateNotInstalled {
		return fmt.Errorf("service %q is not installed", o.name)
	}
	if err == nil && st != stateRunning {
		fmt.Fprintf(env.stdout, "Service %q is not running.\n", o.name)
		return nil
	}
	if err := t.mgr.Stop(); err != nil {
		return fmt.Errorf("stop the service: %w", err)
	}
	fmt.Fprintf(env.stdout, "Service %q stopped.\n", o.name)
	return nil
}

func serviceStatus(env *cliEnv, o serviceOpts) error {
	t, err := newServiceTarget(o, nil)
	if err != nil {
		return err
	}
	st, err := t.status()
	if err != nil {
		return fmt.Errorf("query the service: %w", err)
	}
	if st == stateNotInstalled {
		fmt.Fprintf(env.stdout, "%s: not installed\n", o.name)
		return nil
	}
	fmt.Fprintf(env.stdout, "%s: %s (%s %s)\n", o.name, st, t.kind(), t.definitionPath())
	if st != stateRunning {
		fmt.Fprintf(env.stdout, "Logs: %s\n", t.logsHint())
	}
	return nil
}

// status asks the manager, after checking for the definition file where there is one (the SysV
// status command cannot tell "not installed" apart from an error).
func (t *serviceTarget) status() (serviceState, error) {
	if p := t.definitionPath(); filepath.IsAbs(p) {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			return stateNotInstalled, nil
		}
	}
	return t.mgr.Status()
}

// serviceDefinition is what install writes on this platform (for --dry-run).
func serviceDefinition(platform string, s serviceSpec) string {
	switch platform {
	case platformSystemd:
		return systemdUnit(s)
	case platformSysV:
		return sysvScript(s)
	case platformLaunchd:
		return launchdPlist(s)
	case platformWindows:
		w := windowsServiceConfig(s)
		return fmt.Sprintf("Name: %s\nDisplayName: %s\nExecutable: %s\nArguments: %q\nStartType: %s (delayed: %t)\nOnFailure: %s after %s\nDependencies: %s\nEnvironment: %s=%s\n",
			s.Name, w.DisplayName, s.Executable, w.Arguments, w.StartType, w.DelayedAutoStart, w.OnFailure, w.OnFailureDelay, strings.Join(w.Dependencies, ", "), serviceEnvName, s.Name)
	}
	return fmt.Sprintf("%s: the library's default definition, running %s %s\n", platform, s.Executable, strings.Join(s.arguments(), " "))
}

func (t *serviceTarget) definitionPath() string {
	s := t.spec
	switch t.platform {
	case platformSystemd:
		if s.User {
			return filepath.Join(s.Home, ".config", "systemd", "user", s.Name+".service")
		}
		return "/etc/systemd/system/" + s.Name + ".service"
	case platformSysV:
		return "/etc/init.d/" + s.Name
	case platformLaunchd:
		if s.User {
			return filepath.Join(s.Home, "Library", "LaunchAgents", s.Name+".plist")
		}
		return "/Library/LaunchDaemons/" + s.Name + ".plist"
	case platformWindows:
		return `HKLM\SYSTEM\CurrentControlSet\Services\` + s.Name
	}
	return t.platform
}

func (t *serviceTarget) kind() string {
	switch {
	case t.platform == platformSystemd && t.spec.User:
		return "systemd user service"
	case t.platform == platformSystemd:
		return "systemd service"
	case t.platform == platformSysV:
		return "SysV init service"
	case t.platform == platformLaunchd && t.spec.User:
		return "launchd agent"
	case t.platform == platformLaunchd:
		return "launchd daemon"
	case t.platform == platformWindows:
		return "Windows service"
	}
	return "service"
}

func (t *serviceTarget) account() string {
	switch {
	case t.spec.User:
		return currentUserName()
	case t.platform == platformWindows:
		return "LocalSystem (change it in the Services app, Log On tab, to reach network shares)"
	}
	return "root"
}

func (t *serviceTarget) startsWhen() string {
	switch {
	case t.platform == platformSystemd && t.spec.User:
		return "when you log in (at boot with lingering enabled, see below)"
	case t.platform == platformSystemd:
		return "at boot, once the network is online and the folders' file systems are mounted"
	case t.platform == platformLaunchd && t.spec.User:
		return "when you log in"
	case t.platform == platformWindows:
		return "at boot (automatic, delayed start)"
	}
	return "at boot"
}

func (t *serviceTarget) logsHint() string {
	switch t.platform {
	case platformSystemd:
		if t.spec.User {
			return "journalctl --user-unit " + t.spec.Name + " -f"
		}
		return "journalctl -u " + t.spec.Name + " -f"
	case platformSysV, platformLaunchd:
		return "tail -f " + t.spec.logFile()
	case platformWindows:
		return "Event Viewer > Windows Logs > Application, source " + t.spec.Name
	}
	return "the service manager's log"
}

// flagsHint repeats the flags that select this service, for the commands we suggest.
func (t *serviceTarget) flagsHint() string {
	var s string
	if t.spec.User {
		s += " --user"
	}
	if t.spec.Name != defaultServiceName {
		s += " --name " + t.spec.Name
	}
	return s
}

func currentUserName() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}
