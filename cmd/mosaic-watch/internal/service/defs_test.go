package service

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
)

// testConfig is a resolved configuration with two folders, one moving its sources away.
func testConfig(stateDir string) *config.Config {
	return &config.Config{
		File:            "/etc/mosaic-watch/config.yaml",
		StateDir:        stateDir,
		ShutdownTimeout: 10 * time.Second,
		Folders: []config.Folder{
			{Input: "/srv/video/in/captions", Output: "/srv/video/out/captions"},
			{Input: "/mnt/nas/in social", Output: "/mnt/nas/out%social",
				AfterSuccess: "move", AfterSuccessMoveTo: "/mnt/nas/done",
				AfterFailure: "move", AfterFailureMoveTo: "/mnt/nas/failed"},
		},
	}
}

var testFolders = []string{
	"/mnt/nas/done", "/mnt/nas/failed", "/mnt/nas/in social", "/mnt/nas/out%social",
	"/srv/video/in/captions", "/srv/video/out/captions", "/var/lib/mosaic-watch",
}

// unitFile is a parsed systemd unit: section -> key -> values in order.
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, text string) unitFile {
	t.Helper()
	u := unitFile{}
	section := ""
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("unit line %d is not key=value in a section: %q", n+1, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func (u unitFile) one(t *testing.T, section, key string) string {
	t.Helper()
	v := u[section][key]
	if len(v) != 1 {
		t.Fatalf("[%s] %s: want exactly one value, got %q", section, key, v)
	}
	return v[0]
}

// systemdWords splits a value the way systemd does for path lists and ExecStart: double quotes
// group, backslash escapes, %% is a literal %.
func systemdWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+1 >= len(s) || s[i+1] != '%' {
				t.Fatalf("unescaped %% specifier in %q", s)
			}
			cur.WriteByte('%')
			i++
			inWord = true
		case c == '\\' && quoted:
			i++
			cur.WriteByte(s[i])
		case c == '"':
			quoted = !quoted
			inWord = true
		case c == ' ' && !quoted:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

func TestSystemdSystemUnit(t *testing.T) {
	spec := NewSpec(testConfig("/var/lib/mosaic-watch"), "/usr/local/bin/mosaic-watch",
		"mosaic-watch", false, "/root")
	u := parseUnit(t, systemdUnit(spec))

	if got := systemdWords(t, u.one(t, "Unit", "RequiresMountsFor")); !slices.Equal(got, testFolders) {
		t.Errorf("RequiresMountsFor = %q, want every input, output, move_to folder and the state dir %q",
			got, testFolders)
	}
	if got := systemdWords(t, u.one(t, "Service", "ReadWritePaths")); !slices.Equal(got, testFolders) {
		t.Errorf("ReadWritePaths = %q, want %q", got, testFolders)
	}
	wantExec := []string{"/usr/local/bin/mosaic-watch", "run", "--config",
		"/etc/mosaic-watch/config.yaml"}
	if got := systemdWords(t, u.one(t, "Service", "ExecStart")); !slices.Equal(got, wantExec) {
		t.Errorf("ExecStart = %q, want %q", got, wantExec)
	}
	for _, kv := range [][3]string{
		{"Unit", "Wants", "network-online.target"},
		{"Unit", "After", "network-online.target remote-fs.target"},
		{"Unit", "StartLimitIntervalSec", "300"},
		{"Unit", "StartLimitBurst", "10"},
		{"Service", "Restart", "on-failure"},
		{"Service", "ExecReload", "/bin/kill -HUP $MAINPID"}, // systemctl reload = SIGHUP = reload
		{"Service", "RestartSec", "5"},
		{"Service", "TimeoutStopSec", "20"},
		{"Service", "Environment", "MOSAIC_WATCH_SERVICE=mosaic-watch"},
		{"Service", "StateDirectory", "mosaic-watch"},
		{"Service", "ProtectSystem", "strict"},
		{"Service", "ProtectHome", "read-only"},
		{"Service", "PrivateTmp", "yes"},
		{"Service", "NoNewPrivileges", "yes"},
		{"Install", "WantedBy", "multi-user.target"},
	} {
		if got := u.one(t, kv[0], kv[1]); got != kv[2] {
			t.Errorf("[%s] %s = %q, want %q", kv[0], kv[1], got, kv[2])
		}
	}
	if _, ok := u["Service"]["StartLimitBurst"]; ok {
		t.Error("StartLimitBurst belongs in [Unit]; in [Service] systemd ignores it")
	}
	if _, ok := u["Service"]["User"]; ok {
		t.Error("a system unit installed by the CLI runs as root: no User=")
	}
}

func TestSystemdUnitFollowsConfig(t *testing.T) {
	cfg := testConfig("/srv/state")
	cfg.ShutdownTimeout = 30 * time.Second
	cfg.Folders[0].Input = "/tmp/inbox" // a private /tmp would hide it
	spec := NewSpec(cfg, "/opt/mw/mosaic-watch", "mw-2", false, "/root")
	u := parseUnit(t, systemdUnit(spec))
	if got := u.one(t, "Service", "TimeoutStopSec"); got != "38" {
		t.Errorf("TimeoutStopSec = %s, want shutdown_timeout 30s + 8s margin = 38", got)
	}
	if _, ok := u["Service"]["StateDirectory"]; ok {
		t.Error("StateDirectory= set although state_dir is not /var/lib/<name>")
	}
	if _, ok := u["Service"]["PrivateTmp"]; ok {
		t.Error("PrivateTmp= set although a folder is in /tmp")
	}
	got := systemdWords(t, u.one(t, "Service", "ReadWritePaths"))
	if !slices.Contains(got, "/srv/state") || !slices.Contains(got, "/tmp/inbox") {
		t.Errorf("ReadWritePaths = %q, want the state dir and the input", got)
	}
	if got := u.one(t, "Service", "Environment"); got != "MOSAIC_WATCH_SERVICE=mw-2" {
		t.Errorf("Environment = %q", got)
	}
}

func TestSystemdUserUnit(t *testing.T) {
	spec := NewSpec(testConfig("/home/ed/.local/state/mosaic-watch"), "/home/ed/bin/mosaic-watch",
		"mosaic-watch", true, "/home/ed")
	text := systemdUnit(spec)
	u := parseUnit(t, text)
	if got := u.one(t, "Install", "WantedBy"); got != "default.target" {
		t.Errorf("WantedBy = %q, want default.target (multi-user.target never starts in a user manager)",
			got)
	}
	if strings.Contains(text, "multi-user.target") {
		t.Error("user unit mentions multi-user.target")
	}
	for _, k := range []string{"ProtectSystem", "StateDirectory", "User", "PrivateTmp"} {
		if _, ok := u["Service"][k]; ok {
			t.Errorf("user unit sets %s=, which a user manager cannot apply", k)
		}
	}
	if got := u.one(t, "Service", "EnvironmentFile"); got != "-%h/.config/mosaic-watch/environment" {
		t.Errorf("EnvironmentFile = %q", got)
	}
	if got := systemdWords(t, u.one(t, "Service", "ExecStart")); got[len(got)-2] != "--config" ||
		got[len(got)-1] != "/etc/mosaic-watch/config.yaml" {
		t.Errorf("ExecStart = %q, want --config with the absolute path", got)
	}
	if got := u.one(t, "Service", "Restart"); got != "on-failure" {
		t.Errorf("Restart = %q", got)
	}
	want := slices.Clone(testFolders)
	want[len(want)-1] = "/home/ed/.local/state/mosaic-watch"
	slices.Sort(want)
	if got := systemdWords(t, u.one(t, "Unit", "RequiresMountsFor")); !slices.Equal(got, want) {
		t.Errorf("RequiresMountsFor = %q, want %q", got, want)
	}
}

func TestSysvScript(t *testing.T) {
	cfg := testConfig("/var/lib/mw")
	cfg.File = "/etc/mosaic watch/it's.yaml"
	spec := NewSpec(cfg, "/usr/local/bin/mosaic-watch", "mw", false, "/root")
	text := sysvScript(spec)
	wantCmd := `'/usr/local/bin/mosaic-watch' 'run' '--config' '/etc/mosaic watch/it'\''s.yaml' ` +
		`</dev/null >>"$log_file" 2>&1 &`
	if !strings.Contains(text, wantCmd) {
		t.Errorf("start line with the quoted absolute config path missing; script:\n%s", text)
	}
	for _, want := range []string{"name='mw'", "log_file='/var/log/mw.log'",
		"MOSAIC_WATCH_SERVICE='mw'", "[ $i -lt 100 ]", "# Provides:          mw",
		`kill -HUP "$(cat "$pid_file")"`} {
		if !strings.Contains(text, want) {
			t.Errorf("script lacks %q", want)
		}
	}
	if sh, err := exec.LookPath("sh"); err == nil {
		cmd := exec.Command(sh, "-n")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sh -n: %v\n%s", err, out)
		}
	}
}

// plistValue decodes the plist value starting at start: string, integer, true/false, array, dict.
func plistValue(d *xml.Decoder, start xml.StartElement) (any, error) {
	switch start.Name.Local {
	case "string", "integer", "key":
		var s string
		err := d.DecodeElement(&s, &start)
		return s, err
	case "true", "false":
		return start.Name.Local == "true", d.Skip()
	case "array", "dict":
		var list []any
		dict := map[string]any{}
		key := ""
		for {
			tok, err := d.Token()
			if err != nil {
				return nil, err
			}
			switch tok := tok.(type) {
			case xml.EndElement:
				if start.Name.Local == "array" {
					return list, nil
				}
				return dict, nil
			case xml.StartElement:
				v, err := plistValue(d, tok)
				if err != nil {
					return nil, err
				}
				switch {
				case start.Name.Local == "array":
					list = append(list, v)
				case tok.Name.Local == "key":
					key = v.(string)
				default:
					if _, dup := dict[key]; dup || key == "" {
						return nil, fmt.Errorf("dict value without a new key (%q)", key)
					}
					dict[key] = v
					key = ""
				}
			}
		}
	}
	return nil, fmt.Errorf("unexpected plist element <%s>", start.Name.Local)
}

// parsePlist parses a property list whose top-level value is a dict.
func parsePlist(t *testing.T, text string) map[string]any {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(text))
	d.Strict = true
	for {
		tok, err := d.Token()
		if err == io.EOF {
			t.Fatal("no <plist> element")
		}
		if err != nil {
			t.Fatalf("plist is not XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "plist" {
			for {
				tok, err := d.Token()
				if err != nil {
					t.Fatalf("plist: %v", err)
				}
				if se, ok := tok.(xml.StartElement); ok {
					v, err := plistValue(d, se)
					if err != nil {
						t.Fatalf("plist: %v", err)
					}
					m, ok := v.(map[string]any)
					if !ok {
						t.Fatalf("plist top level is %T, want dict", v)
					}
					return m
				}
			}
		}
	}
}

func TestLaunchdPlist(t *testing.T) {
	cfg := testConfig("/Library/Application Support/mosaic-watch")
	cfg.File = "/Users/ed/Mosaic & Co/<config>.yaml"
	cfg.ShutdownTimeout = 15 * time.Second
	for _, user := range []bool{false, true} {
		spec := NewSpec(cfg, "/usr/local/bin/mosaic-watch", "mosaic-watch", user, "/Users/ed")
		p := parsePlist(t, launchdPlist(spec))
		wantArgs := []any{"/usr/local/bin/mosaic-watch", "run", "--config",
			"/Users/ed/Mosaic & Co/<config>.yaml"}
		if got, _ := p["ProgramArguments"].([]any); !slices.Equal(got, wantArgs) {
			t.Errorf("ProgramArguments = %q, want %q", got, wantArgs)
		}
		log := "/var/log/mosaic-watch.log"
		if user {
			log = "/Users/ed/Library/Logs/mosaic-watch.log"
		}
		for k, want := range map[string]any{
			"Label": "mosaic-watch", "RunAtLoad": true, "StandardOutPath": log, "StandardErrorPath": log,
			"ExitTimeOut": "23", "WorkingDirectory": "/",
		} {
			if p[k] != want {
				t.Errorf("user=%t: %s = %#v, want %#v", user, k, p[k], want)
			}
		}
		keep, _ := p["KeepAlive"].(map[string]any)
		if keep["SuccessfulExit"] != false {
			t.Errorf("KeepAlive = %#v, want restart unless the exit was clean", p["KeepAlive"])
		}
		env, _ := p["EnvironmentVariables"].(map[string]any)
		if env[EnvName] != "mosaic-watch" {
			t.Errorf("EnvironmentVariables = %#v", env)
		}
	}
}

func TestStaticPackagingFiles(t *testing.T) {
	unit, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "packaging", "systemd",
		"mosaic-watch.service"))
	if err != nil {
		t.Fatal(err)
	}
	u := parseUnit(t, string(unit))
	wantExec := []string{"/usr/bin/mosaic-watch", "run", "--config", "/etc/mosaic-watch/config.yaml"}
	if got := systemdWords(t, u.one(t, "Service", "ExecStart")); !slices.Equal(got, wantExec) {
		t.Errorf("packaged ExecStart = %q, want %q", got, wantExec)
	}
	for _, kv := range [][3]string{
		{"Service", "User", "mosaic-watch"},
		{"Service", "StateDirectory", "mosaic-watch"},
		{"Service", "Restart", "on-failure"},
		{"Service", "TimeoutStopSec", "20"},
		{"Install", "WantedBy", "multi-user.target"},
	} {
		if got := u.one(t, kv[0], kv[1]); got != kv[2] {
			t.Errorf("packaged [%s] %s = %q, want %q", kv[0], kv[1], got, kv[2])
		}
	}
	if !strings.Contains(string(unit), "systemctl edit mosaic-watch") ||
		!strings.Contains(string(unit), "RequiresMountsFor=") {
		t.Error("packaged unit lacks the drop-in hint for RequiresMountsFor")
	}

	plist, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "packaging", "launchd",
		"mosaic-watch.plist"))
	if err != nil {
		t.Fatal(err)
	}
	p := parsePlist(t, string(plist))
	if args, _ := p["ProgramArguments"].([]any); len(args) != 4 || args[1] != "run" ||
		!strings.HasPrefix(args[3].(string), "/") {
		t.Errorf("packaged plist ProgramArguments = %q", args)
	}
	if p["Label"] != "mosaic-watch" || p["RunAtLoad"] != true || p["StandardErrorPath"] == nil ||
		p["KeepAlive"] == nil {
		t.Errorf("packaged plist lacks Label/RunAtLoad/KeepAlive/StandardErrorPath: %#v", p)
	}
}

func TestWindowsServiceConfig(t *testing.T) {
	cfg := testConfig(`C:\ProgramData\mosaic-watch`)
	cfg.File = `C:\ProgramData\mosaic-watch\config.yaml`
	cfg.Folders = []config.Folder{{Input: `D:\video\in`, Output: `D:\video\out`}}
	w := windowsServiceConfig(NewSpec(cfg, `C:\Program Files\mosaic-watch\mosaic-watch.exe`,
		"mosaic-watch", false, ""))
	want := []string{"run", "--config", `C:\ProgramData\mosaic-watch\config.yaml`}
	if !slices.Equal(w.Arguments, want) {
		t.Errorf("Arguments = %q, want %q", w.Arguments, want)
	}
	if w.StartType != "automatic" || !w.DelayedAutoStart || w.OnFailure != "restart" ||
		w.OnFailureDelay != 5*time.Second {
		t.Errorf("start/recovery = %+v", w)
	}
	if w.Env[EnvName] != "mosaic-watch" || w.DisplayName != "Mosaic Watch" {
		t.Errorf("env/display name = %+v", w)
	}
	if slices.Contains(w.Dependencies, "LanmanWorkstation") {
		t.Error("depends on the SMB client without a UNC folder")
	}

	cfg.Folders[0].Input = `\\nas\video\in`
	w = windowsServiceConfig(NewSpec(cfg, `C:\mw.exe`, "mw-2", false, ""))
	if !slices.Contains(w.Dependencies, "LanmanWorkstation") {
		t.Errorf("UNC folder: Dependencies = %q, want LanmanWorkstation (the SMB client)", w.Dependencies)
	}
	if w.DisplayName != "Mosaic Watch (mw-2)" {
		t.Errorf("DisplayName = %q", w.DisplayName)
	}
}

// The dry run shows the service's arguments as a Windows user types them (and as the Service
// Control Manager stores them): one backslash per backslash, quotes only around a space.
func TestWindowsDefinitionShowsArgumentsAsTyped(t *testing.T) {
	cfg := testConfig(`C:\ProgramData\mosaic-watch`)
	cfg.File = `C:\Users\Ed Lee\mosaic watch\config.yaml`
	tgt := &Target{Platform: Windows,
		Spec: NewSpec(cfg, `C:\Program Files\mosaic-watch\mosaic-watch.exe`, DefaultName, false, "")}
	def := tgt.Definition()
	want := `Arguments: run --config "C:\Users\Ed Lee\mosaic watch\config.yaml"` + "\n"
	if !strings.Contains(def, want) || strings.Contains(def, `\\`) {
		t.Errorf("definition:\n%s\nwant the line %q and no doubled backslash", def, want)
	}
}

func TestWindowsCommandLineQuoting(t *testing.T) {
	for _, tc := range []struct{ arg, want string }{
		{`run`, `run`},
		{`C:\ProgramData\mosaic-watch\config.yaml`, `C:\ProgramData\mosaic-watch\config.yaml`},
		{`\\nas\video\config.yaml`, `\\nas\video\config.yaml`},
		{`D:\My Videos\config.yaml`, `"D:\My Videos\config.yaml"`},
		{`D:\My Videos\`, `"D:\My Videos\\"`}, // else the last backslash escapes the closing quote
		{"tab\there", "\"tab\there\""},
		{`say "hi"`, `"say \"hi\""`},
		{`a\"b`, `a\\\"b`},
		{``, `""`},
	} {
		if got := windowsArg(tc.arg); got != tc.want {
			t.Errorf("windowsArg(%q) = %s, want %s", tc.arg, got, tc.want)
		}
	}
	got := windowsCommandLine([]string{"run", "--config", `C:\a b\c.yaml`})
	if want := `run --config "C:\a b\c.yaml"`; got != want {
		t.Errorf("windowsCommandLine = %s, want %s", got, want)
	}
}

func TestKardianosGetsOurDefinitions(t *testing.T) {
	spec := NewSpec(testConfig("/var/lib/mosaic-watch"), "/usr/bin/mosaic-watch", "mosaic-watch",
		false, "/root")
	c := kardianosConfig(spec)
	if c.Option["SystemdScript"] != systemdUnit(spec) || c.Option["SysvScript"] != sysvScript(spec) ||
		c.Option["LaunchdConfig"] != launchdPlist(spec) {
		t.Error("the library does not get our definitions")
	}
	if !slices.Equal(c.Arguments, []string{"run", "--config", "/etc/mosaic-watch/config.yaml"}) ||
		c.Executable != "/usr/bin/mosaic-watch" {
		t.Errorf("arguments/executable = %q %q", c.Arguments, c.Executable)
	}
	// The library runs our text through its template engine: without directives it is written
	// as is.
	for _, def := range []string{systemdUnit(spec), sysvScript(spec), launchdPlist(spec)} {
		if strings.Contains(def, "{{") {
			t.Errorf("definition contains a template directive:\n%s", def)
		}
	}
}

func TestMacProtectedFolders(t *testing.T) {
	got := macProtectedFolders([]string{"/Users/ed/Desktop/in", "/Users/ed/Movies/in",
		"/Volumes/Media/out", "/Users/ed/Downloads", "/srv/x", "/Users/ed/DesktopX"})
	want := []string{"/Users/ed/Desktop/in", "/Volumes/Media/out", "/Users/ed/Downloads"}
	if !slices.Equal(got, want) {
		t.Errorf("protected = %q, want %q", got, want)
	}
}

// TestSystemdAnalyzeVerify checks the generated system and user units and the packaged unit with
// systemd's own parser. CI sets MOSAIC_WATCH_REQUIRE_SYSTEMD_ANALYZE=1 so it cannot skip there.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("MOSAIC_WATCH_REQUIRE_SYSTEMD_ANALYZE") != "" {
			t.Fatal("systemd-analyze not found")
		}
		t.Skip("systemd-analyze not installed")
	}
	exe, err := os.Executable() // verify wants ExecStart to be an existing executable
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	runtimeDir := filepath.Join(dir, "runtime") // the user manager needs XDG_RUNTIME_DIR
	if err := os.Mkdir(runtimeDir, 0o700); err != nil {
		t.Fatal(err)
	}
	static, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "packaging", "systemd",
		"mosaic-watch.service"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("/var/lib/mosaic-watch")
	units := []struct {
		name, text string
		user       bool
	}{
		{"mosaic-watch.service", systemdUnit(NewSpec(cfg, exe, "mosaic-watch", false, "/root")), false},
		{"mw-user.service", systemdUnit(NewSpec(cfg, exe, "mw-user", true, "/home/ed")), true},
		{"mw-packaged.service", strings.ReplaceAll(string(static), "/usr/bin/mosaic-watch", exe), false},
	}
	for _, u := range units {
		p := filepath.Join(dir, u.name)
		if err := os.WriteFile(p, []byte(u.text), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"verify", p}
		if u.user {
			args = []string{"--user", "verify", p}
		}
		cmd := exec.Command(analyze, args...)
		cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+runtimeDir, "SYSTEMD_LOG_LEVEL=notice")
		out, err := cmd.CombinedOutput()
		// verify exits 0 on many problems it only warns about ("ignoring"), so any output fails.
		if out = bytes.TrimSpace(out); err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze %s: %v\n%s\n--- unit:\n%s", strings.Join(args, " "), err, out, u.text)
		}
	}
}
