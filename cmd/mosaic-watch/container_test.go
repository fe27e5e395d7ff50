package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/config"
)

// The container files are checked here without a container engine: compose.yaml against the
// part of the Compose specification it uses (an unknown or misspelt key fails, as `docker
// compose config` would), and against the Containerfile and the example configuration it runs.

var containerDir = filepath.Join("..", "..", "packaging", "container")

// composeFile is the subset of the Compose specification compose.yaml may use.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image           string            `yaml:"image"`
	ContainerName   string            `yaml:"container_name"`
	User            string            `yaml:"user"`
	Command         []string          `yaml:"command"`
	Restart         string            `yaml:"restart"`
	EnvFile         []string          `yaml:"env_file"`
	Environment     map[string]string `yaml:"environment"`
	Volumes         []string          `yaml:"volumes"`
	Ports           []string          `yaml:"ports"`
	Healthcheck     composeHealth     `yaml:"healthcheck"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
	ReadOnly        bool              `yaml:"read_only"`
	Tmpfs           []string          `yaml:"tmpfs"`
	SecurityOpt     []string          `yaml:"security_opt"`
	CapDrop         []string          `yaml:"cap_drop"`
	Logging         struct {
		Driver  string            `yaml:"driver"`
		Options map[string]string `yaml:"options"`
	} `yaml:"logging"`
}

type composeHealth struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	Retries     int      `yaml:"retries"`
	StartPeriod string   `yaml:"start_period"`
}

func readCompose(t *testing.T) composeService {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(containerDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f composeFile
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	if len(f.Services) != 1 {
		t.Fatalf("compose.yaml has %d services, want 1", len(f.Services))
	}
	svc, ok := f.Services["mosaic-watch"]
	if !ok {
		t.Fatalf("compose.yaml has no service mosaic-watch: %v", f.Services)
	}
	return svc
}

// containerfile is what the tests read from the Containerfile: each instruction's arguments,
// continuation lines joined.
func containerfile(t *testing.T) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(containerDir, "Containerfile"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	var line strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if line.Len() == 0 && (text == "" || strings.HasPrefix(text, "#")) {
			continue
		}
		if cont, ok := strings.CutSuffix(text, "\\"); ok {
			line.WriteString(cont + " ")
			continue
		}
		line.WriteString(text)
		instr, args, _ := strings.Cut(line.String(), " ")
		out[strings.ToUpper(instr)] = append(out[strings.ToUpper(instr)], strings.TrimSpace(args))
		line.Reset()
	}
	return out
}

// jsonArgs decodes an exec-form instruction argument (["a", "b"]).
func jsonArgs(t *testing.T, s string) []string {
	t.Helper()
	var args []string
	if err := json.Unmarshal([]byte(s), &args); err != nil {
		t.Fatalf("not an exec-form list: %s: %v", s, err)
	}
	return args
}

func mustDuration(t *testing.T, key, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Errorf("%s: %q is not a duration", key, s)
	}
	return d
}

// loadContainerConfig loads packaging/container/config.yaml as the image would: /media is a
// temporary folder holding the configured inputs, and MOSAIC_WATCH_STATE_DIR is /state. The
// image runs Linux: where "/state" is not an absolute path (Windows) the test is skipped.
func loadContainerConfig(t *testing.T) *config.Config {
	t.Helper()
	if !filepath.IsAbs("/state") {
		t.Skip("the image's paths are Linux paths; its configuration is checked on Linux")
	}
	data, err := os.ReadFile(filepath.Join(containerDir, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	media := t.TempDir()
	text := strings.ReplaceAll(string(data), "/media/", media+"/")
	for _, m := range regexp.MustCompile(`(?m)^\s+input: (\S+)$`).FindAllStringSubmatch(text, -1) {
		if err := os.MkdirAll(m[1], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MOSAIC_API_KEY": "mk_test_0123456789abcdef",
		"MOSAIC_WATCH_HTTP_TOKEN": "test-token", config.EnvStateDir: "/state"}
	cfg, err := config.Load(file, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("packaging/container/config.yaml does not load in the image's setting: %v", err)
	}
	return cfg
}

func TestComposeFile(t *testing.T) {
	svc := readCompose(t)
	cf := containerfile(t)
	cfg := loadContainerConfig(t)

	if svc.Image == "" || svc.ContainerName == "" {
		t.Errorf("image %q, container_name %q: both are needed", svc.Image, svc.ContainerName)
	}
	if !slices.Contains([]string{"always", "unless-stopped", "on-failure"}, svc.Restart) {
		t.Errorf("restart: %q, want a policy that restarts the daemon", svc.Restart)
	}
	if !regexp.MustCompile(`^[0-9]+:[0-9]+$`).MatchString(svc.User) || svc.User == "0:0" {
		t.Errorf("user: %q, want numeric non-root UID:GID", svc.User)
	}
	if want := jsonArgs(t, cf["CMD"][0]); !slices.Equal(svc.Command, want) {
		t.Errorf("command: %q, want the image's %q", svc.Command, want)
	}

	// The secrets come from the env file, whose example defines every variable config.yaml uses.
	if !slices.Equal(svc.EnvFile, []string{"./mosaic-watch.env"}) {
		t.Errorf("env_file: %q, want ./mosaic-watch.env", svc.EnvFile)
	}
	example, err := os.ReadFile(filepath.Join(containerDir, "mosaic-watch.env.example"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"MOSAIC_API_KEY", "MOSAIC_WATCH_HTTP_TOKEN"} {
		if !regexp.MustCompile(`(?m)^` + v + `=\S`).Match(example) {
			t.Errorf("mosaic-watch.env.example does not set %s", v)
		}
		if _, ok := svc.Environment[v]; ok {
			t.Errorf("environment: sets the secret %s in compose.yaml; it belongs in the env file", v)
		}
	}

	// Volumes: the config read-only, the state and the media read-write.
	mounts := map[string]string{} // target -> mode
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || !strings.HasPrefix(parts[1], "/") {
			t.Errorf("volume %q is not HOST:/TARGET[:MODE]", v)
			continue
		}
		mode := "rw"
		if len(parts) == 3 {
			mode = parts[2]
		}
		mounts[parts[1]] = mode
	}
	for target, mode := range map[string]string{"/config": "ro", "/state": "rw", "/media": "rw"} {
		if mounts[target] != mode {
			t.Errorf("volumes: %s mounted %q, want %s (%q)", target, mounts[target], mode, svc.Volumes)
		}
	}
	for _, want := range []string{`"/config"`, `"/state"`} {
		if !strings.Contains(strings.Join(cf["VOLUME"], " "), want) {
			t.Errorf("Containerfile VOLUME lacks %s", want)
		}
	}
	for _, f := range cfg.Folders {
		if !strings.HasPrefix(f.Input, os.TempDir()) { // /media was rewritten to a temp folder
			t.Errorf("config.yaml folder %s is not under /media, the mounted share", f.Name)
		}
	}
	if cfg.StateDir != "/state" {
		t.Errorf("config.yaml: state_dir %q in the image, want /state (the volume)", cfg.StateDir)
	}

	// The dashboard: published on the host's loopback only, on the port the daemon listens on.
	_, listenPort, err := net.SplitHostPort(cfg.HTTPListen)
	if err != nil {
		t.Fatalf("config.yaml http.listen %q: %v", cfg.HTTPListen, err)
	}
	if len(svc.Ports) != 1 {
		t.Fatalf("ports: %q, want the dashboard's only", svc.Ports)
	}
	p := strings.Split(svc.Ports[0], ":")
	if len(p) != 3 || p[0] != "127.0.0.1" || p[2] != listenPort {
		t.Errorf("ports: %q, want 127.0.0.1:HOSTPORT:%s (loopback only)", svc.Ports[0], listenPort)
	}
	if !slices.Contains(cf["EXPOSE"], listenPort) {
		t.Errorf("Containerfile EXPOSE %q lacks %s", cf["EXPOSE"], listenPort)
	}

	// The health check: the image's own command, with sane timings.
	hc := svc.Healthcheck
	wantTest := []string{"CMD", "/usr/local/bin/mosaic-watch", "health", "--config",
		"/config/config.yaml"}
	if !slices.Equal(hc.Test, wantTest) {
		t.Errorf("healthcheck.test: %q, want %q", hc.Test, wantTest)
	}
	hcLine := cf["HEALTHCHECK"]
	if len(hcLine) != 1 {
		t.Fatalf("Containerfile HEALTHCHECK: %q", hcLine)
	}
	_, cmd, _ := strings.Cut(hcLine[0], "CMD ")
	if got := append([]string{"CMD"}, jsonArgs(t, cmd)...); !slices.Equal(got, wantTest) {
		t.Errorf("Containerfile HEALTHCHECK runs %q, compose %q", got, wantTest)
	}
	interval := mustDuration(t, "healthcheck.interval", hc.Interval)
	timeout := mustDuration(t, "healthcheck.timeout", hc.Timeout)
	mustDuration(t, "healthcheck.start_period", hc.StartPeriod)
	if hc.Retries < 1 || timeout >= interval {
		t.Errorf("healthcheck: retries %d, timeout %s, interval %s", hc.Retries, timeout, interval)
	}
	if entry := jsonArgs(t, cf["ENTRYPOINT"][0]); !slices.Equal(entry, wantTest[1:2]) {
		t.Errorf("Containerfile ENTRYPOINT %q, want %q", entry, wantTest[1:2])
	}

	// A stop waits for in-flight steps: the grace period must exceed shutdown_timeout.
	grace := mustDuration(t, "stop_grace_period", svc.StopGracePeriod)
	if grace <= cfg.ShutdownTimeout {
		t.Errorf("stop_grace_period %s is not longer than shutdown_timeout %s", grace,
			cfg.ShutdownTimeout)
	}
	if svc.ReadOnly && !slices.Contains(svc.Tmpfs, "/tmp") {
		t.Error("read_only without a tmpfs /tmp")
	}
}

// TestContainerfileUserAndEnvironment: the image runs as a non-root user and keeps its state on
// the /state volume.
func TestContainerfileUserAndEnvironment(t *testing.T) {
	cf := containerfile(t)
	if len(cf["FROM"]) != 1 || cf["FROM"][0] != "scratch" {
		t.Errorf("FROM %q, want scratch", cf["FROM"])
	}
	nonRoot := regexp.MustCompile(`^[1-9][0-9]*:[1-9][0-9]*$`)
	if u := cf["USER"]; len(u) != 1 || !nonRoot.MatchString(u[0]) {
		t.Errorf("USER %q, want a numeric non-root UID:GID", u)
	}
	env := strings.Join(cf["ENV"], " ")
	if !strings.Contains(env, config.EnvStateDir+"=/state") {
		t.Errorf("ENV %q does not set %s=/state", env, config.EnvStateDir)
	}
	labels := strings.Join(cf["LABEL"], " ")
	for _, l := range []string{"org.opencontainers.image.version=", "org.opencontainers.image.source=",
		"org.opencontainers.image.licenses="} {
		if !strings.Contains(labels, l) {
			t.Errorf("LABEL lacks %s", l)
		}
	}
}
