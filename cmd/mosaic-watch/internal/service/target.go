package service

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
)

// Target is one service on this machine: how it is defined and how to reach it.
type Target struct {
	Platform string // the service manager, as Platform names it
	Spec     Spec
	mgr      manager
}

// NewTarget reaches the service name (a per-user one with user) on this machine's service
// manager. cfg is the configuration to install; nil for the other actions, which only need the
// name.
func NewTarget(name string, user bool, cfg *config.Config) (*Target, error) {
	home, _ := os.UserHomeDir()
	t := &Target{Platform: Platform()}
	if cfg != nil {
		exe, err := executable()
		if err != nil {
			return nil, err
		}
		t.Spec = NewSpec(cfg, exe, name, user, home)
	} else {
		t.Spec = Spec{Name: name, User: user, Home: home}
	}
	mgr, err := newManager(t.Spec)
	if err != nil {
		return nil, err
	}
	t.mgr = mgr
	return t, nil
}

func executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this program's path: %w", err)
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	return filepath.Abs(exe)
}

// Install writes and registers the definition; ErrAlreadyInstalled if it exists.
func (t *Target) Install() error { return t.mgr.Install() }

// Uninstall removes the definition and what the service manager leaves behind.
func (t *Target) Uninstall() error {
	if err := t.mgr.Uninstall(); err != nil {
		return err
	}
	t.cleanupAfterUninstall()
	return nil
}

// Start, Stop and Restart ask the service manager; they return before the daemon is up or down.
func (t *Target) Start() error   { return t.mgr.Start() }
func (t *Target) Stop() error    { return t.mgr.Stop() }
func (t *Target) Restart() error { return t.mgr.Restart() }

// CheckInstall refuses installs that cannot work and explains how to fix them; warnings go to
// warn.
func (t *Target) CheckInstall(warn io.Writer) error {
	if runtime.GOOS != "windows" && !t.Spec.User && os.Geteuid() != 0 {
		return errors.New("installing a system service needs root: run it with sudo, " +
			"or pass --user for a per-user service")
	}
	for _, p := range append(t.Spec.Folders(), t.Spec.Executable, t.Spec.ConfigFile) {
		if strings.Contains(p, "{{") {
			return fmt.Errorf("path %q contains '{{', which the service installer cannot write", p)
		}
	}
	if t.Platform == Systemd && !t.Spec.User && t.Spec.Name == DefaultName {
		for _, p := range []string{"/usr/lib/systemd/system/mosaic-watch.service",
			"/lib/systemd/system/mosaic-watch.service"} {
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("the mosaic-watch package already provides the service (%s): "+
					"edit /etc/mosaic-watch/config.yaml and run 'systemctl enable --now mosaic-watch', "+
					"or pass --name to install another instance", p)
			}
		}
	}
	dir := filepath.Dir(t.Spec.Executable)
	if strings.Contains(dir, "go-build") ||
		pathWithin(filepath.ToSlash(dir), filepath.ToSlash(os.TempDir())) {
		fmt.Fprintf(warn, "warning: %s is in a temporary directory; the service needs it to stay "+
			"there (install the binary first, e.g. to /usr/local/bin)\n", t.Spec.Executable)
	}
	return nil
}

// PrepareFolders creates the state directory and, for the sandboxed systemd unit, the output
// folders: its ReadWritePaths= must exist, and the daemon cannot create them under
// ProtectSystem=strict.
func (t *Target) PrepareFolders() error {
	if !t.Spec.managedStateDir() {
		if err := os.MkdirAll(t.Spec.StateDir, 0o700); err != nil {
			return fmt.Errorf("create state_dir: %w", err)
		}
	}
	if t.Platform != Systemd || t.Spec.User {
		return nil
	}
	for _, p := range t.Spec.Outputs {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("create output folder: %w", err)
		}
	}
	return nil
}

// Hints are the service traps users hit (FIELD-NOTES b 11-13) that apply to this install.
func (t *Target) Hints(cfg *config.Config) []string {
	var hints []string
	if t.Platform == Systemd && t.Spec.User {
		hints = append(hints, "A user service starts when you log in. To start it at boot "+
			"without logging in, run:\n  loginctl enable-linger "+CurrentUserName())
	}
	if raw, err := os.ReadFile(cfg.File); err == nil && strings.Contains(string(raw), "${") {
		const unseen = "The configuration uses ${...} variables, and the service does not see " +
			"your shell's environment:\n"
		switch t.Platform {
		case Systemd, SysV:
			where := "/etc/mosaic-watch/environment"
			if t.Spec.User {
				where = "~/.config/mosaic-watch/environment"
			}
			hints = append(hints, unseen+"put them as KEY=value lines in "+where+
				" (chmod 600), or use mosaic.api_key_file.")
		default:
			hints = append(hints, unseen+"use mosaic.api_key_file for the API key instead.")
		}
	}
	if t.Platform == Launchd {
		if p := macProtectedFolders(t.Spec.Folders()); len(p) > 0 {
			hints = append(hints, "macOS privacy protection (TCC) silently blocks services from "+
				strings.Join(p, ", ")+".\nGive "+t.Spec.Executable+" Full Disk Access: System "+
				"Settings > Privacy & Security > Full Disk Access, click +, press Cmd-Shift-G and "+
				"enter its path. Then restart the service.")
		}
	}
	if t.Platform == Windows {
		for _, p := range t.Spec.Folders() {
			if isMappedDrive(p) {
				hints = append(hints, fmt.Sprintf("warning: %s is on a mapped network drive. "+
					"Services cannot see drive letters mapped in your session:\nuse its UNC path "+
					"(\\\\server\\share\\...) in the configuration, and run the service as an "+
					"account that can read the share\n(LocalSystem has no network credentials): "+
					"Services app > Mosaic Watch > Log On.", p))
			}
		}
		if cfg.ShutdownTimeout > WindowsStopCap {
			hints = append(hints, fmt.Sprintf("note: shutdown_timeout %s is capped at %s under "+
				"the Windows service manager.", cfg.ShutdownTimeout, WindowsStopCap))
		}
	}
	return hints
}

// macProtectedFolders lists the folders macOS privacy protection guards (Desktop, Documents,
// Downloads, external volumes).
func macProtectedFolders(paths []string) []string {
	var out []string
	protected := regexp.MustCompile(
		`^/Users/[^/]+/(Desktop|Documents|Downloads|Library/Mobile Documents)(/|$)|^/Volumes/`)
	for _, p := range paths {
		if protected.MatchString(filepath.ToSlash(p)) {
			out = append(out, p)
		}
	}
	return out
}

// cleanupAfterUninstall removes what the library leaves behind: the SysV runlevel links and
// pid file.
func (t *Target) cleanupAfterUninstall() {
	if t.Platform != SysV {
		return
	}
	links, _ := filepath.Glob("/etc/rc[0-6S].d/[SK][0-9][0-9]" + t.Spec.Name)
	for _, l := range links {
		if dest, err := os.Readlink(l); err == nil && filepath.Base(dest) == t.Spec.Name {
			os.Remove(l)
		}
	}
	os.Remove("/var/run/" + t.Spec.Name + ".pid")
}

// Status asks the manager, after checking for the definition file where there is one (the SysV
// status command cannot tell "not installed" apart from an error).
func (t *Target) Status() (State, error) {
	if p := t.DefinitionPath(); filepath.IsAbs(p) {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			return NotInstalled, nil
		}
	}
	return t.mgr.Status()
}

// Definition is what Install writes on this platform (for --dry-run).
func (t *Target) Definition() string {
	s := t.Spec
	switch t.Platform {
	case Systemd:
		return systemdUnit(s)
	case SysV:
		return sysvScript(s)
	case Launchd:
		return launchdPlist(s)
	case Windows:
		w := windowsServiceConfig(s)
		return fmt.Sprintf("Name: %s\nDisplayName: %s\nExecutable: %s\nArguments: %s\n"+
			"StartType: %s (delayed: %t)\nOnFailure: %s after %s\nDependencies: %s\nEnvironment: %s=%s\n",
			s.Name, w.DisplayName, s.Executable, windowsCommandLine(w.Arguments), w.StartType,
			w.DelayedAutoStart, w.OnFailure, w.OnFailureDelay, strings.Join(w.Dependencies, ", "),
			EnvName, s.Name)
	}
	return fmt.Sprintf("%s: the library's default definition, running %s %s\n", t.Platform,
		s.Executable, strings.Join(s.Arguments(), " "))
}

// DefinitionPath is where the definition lives (a registry key on Windows).
func (t *Target) DefinitionPath() string {
	s := t.Spec
	switch t.Platform {
	case Systemd:
		if s.User {
			return path.Join(s.Home, ".config", "systemd", "user", s.Name+".service")
		}
		return "/etc/systemd/system/" + s.Name + ".service"
	case SysV:
		return "/etc/init.d/" + s.Name
	case Launchd:
		if s.User {
			return path.Join(s.Home, "Library", "LaunchAgents", s.Name+".plist")
		}
		return "/Library/LaunchDaemons/" + s.Name + ".plist"
	case Windows:
		return `HKLM\SYSTEM\CurrentControlSet\Services\` + s.Name
	}
	return t.Platform
}

// Kind names the kind of service, e.g. "systemd user service".
func (t *Target) Kind() string {
	switch {
	case t.Platform == Systemd && t.Spec.User:
		return "systemd user service"
	case t.Platform == Systemd:
		return "systemd service"
	case t.Platform == SysV:
		return "SysV init service"
	case t.Platform == Launchd && t.Spec.User:
		return "launchd agent"
	case t.Platform == Launchd:
		return "launchd daemon"
	case t.Platform == Windows:
		return "Windows service"
	}
	return "service"
}

// Account is the account the service runs as.
func (t *Target) Account() string {
	switch {
	case t.Spec.User:
		return CurrentUserName()
	case t.Platform == Windows:
		return "LocalSystem (change it in the Services app, Log On tab, to reach network shares)"
	}
	return "root"
}

// StartsWhen says when the service starts.
func (t *Target) StartsWhen() string {
	switch {
	case t.Platform == Systemd && t.Spec.User:
		return "when you log in (at boot with lingering enabled, see below)"
	case t.Platform == Systemd:
		return "at boot, once the network is online and the folders' file systems are mounted"
	case t.Platform == Launchd && t.Spec.User:
		return "when you log in"
	case t.Platform == Windows:
		return "at boot (automatic, delayed start)"
	}
	return "at boot"
}

// LogsHint says how to follow the service's log.
func (t *Target) LogsHint() string {
	switch t.Platform {
	case Systemd:
		if t.Spec.User {
			return "journalctl --user-unit " + t.Spec.Name + " -f"
		}
		return "journalctl -u " + t.Spec.Name + " -f"
	case SysV, Launchd:
		return "tail -f " + t.Spec.LogFile()
	case Windows:
		return "Event Viewer > Windows Logs > Application, source " + t.Spec.Name
	}
	return "the service manager's log"
}

// FlagsHint repeats the flags that select this service, for the commands we suggest.
func (t *Target) FlagsHint() string {
	var s string
	if t.Spec.User {
		s += " --user"
	}
	if t.Spec.Name != DefaultName {
		s += " --name " + t.Spec.Name
	}
	return s
}

// CurrentUserName names the user running this program.
func CurrentUserName() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}
