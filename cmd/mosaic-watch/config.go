package main

// Configuration loading: the YAML file is parsed into a yaml.Node tree and walked against the
// schema by hand, so that every problem (unknown key, wrong type, duplicate key, bad value) is
// reported with its key path and line, all at once. Defaults are applied first, then the file,
// then the resolved configuration is validated as a whole (paths, nesting, required keys).

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// Config is the resolved, validated configuration: every default applied, every path absolute
// and cleaned.
type Config struct {
	File            string        // absolute path of the config file
	BaseURL         string        // mosaic.base_url, default https://api.mosaic.so
	APIKey          string        // mosaic.api_key (after ${VAR} expansion) or contents of mosaic.api_key_file (trimmed)
	PollInterval    time.Duration // mosaic.poll_interval, default 10s
	ReconcileAfter  time.Duration // mosaic.reconcile_after: trust "no run listed" after a lost start only this long after it, default 2m
	UploadAPI       string        // mosaic.upload_api: "uploads" (default, newest) | "videos" (older endpoints)
	StateDir        string        // state_dir, default DefaultStateDir(); created by the daemon, not by LoadConfig
	LogLevel        string        // log.level: debug|info|warn|error (default info)
	LogFormat       string        // log.format: text|json (default text)
	Limits          Limits
	ShutdownTimeout time.Duration // shutdown_timeout, default 10s, max 60s
	ScanInterval    time.Duration // scan_interval: full rescan of every input folder, default 1h
	Retry           cfgRetry      // retry: backoff for transient errors of a job
	Folders         []Folder
	Warnings        []string // non-fatal problems, formatted like errors ("FILE:LINE: key.path: message")

	// Reserved for the status API and webhooks: accepted and validated, may be ignored for now.
	HTTPListen       string // http.listen, host:port
	HTTPToken        string // http.token (secret)
	WebhookSecret    string // webhook.secret (secret)
	WebhookPublicURL string // webhook.public_url, http(s) URL
}

// Limits is the top-level `limits:` section.
type Limits struct {
	Uploads    int // concurrent uploads, default 2
	ActiveRuns int // runs in flight on Mosaic at once, default 8
	Downloads  int // concurrent downloads, default 2
}

// cfgRetry is the `retry:` section (pipeline.Retry).
type cfgRetry struct {
	Base     time.Duration // retry.base: first delay, default 30s
	Max      time.Duration // retry.max: delay cap, default 1h
	Attempts int           // retry.attempts: then the job fails, default 8
}

// Folder is one entry of `folders:`, with `defaults:` and the built-in defaults merged in.
type Folder struct {
	Index              int
	Name               string // folders[i].name, default: base name of input
	Input, Output      string
	AgentID            string
	UpdateParams       map[string]map[string]any // folders[i].update_params (node id -> params)
	IgnoreNodes        []string
	Recursive          bool          // default true
	Include, Exclude   []string      // globs on the relative path; include nil => watcher defaults; exclude adds to defaults
	Settle             time.Duration // default 10s
	IncompleteAfter    time.Duration // incomplete_after: report a file that never completes, default 30m
	Mode               string        // auto|events|poll (default auto)
	PollInterval       time.Duration // default 10s (used by poll mode)
	AfterSuccess       string        // keep|move|delete (default keep)
	AfterSuccessMoveTo string        // set iff AfterSuccess == move
	AfterFailure       string        // keep|move (default keep)
	AfterFailureMoveTo string        // set iff AfterFailure == move
	MaxFileSize        int64         // limits.max_file_size, e.g. "5GiB"; default 5 GiB
}

// ConfigError lists every problem found in a configuration file.
type ConfigError struct {
	File     string
	Problems []Problem
	Err      error // underlying cause when the file could not be read at all (errors.Is(err, fs.ErrNotExist))
}

// Problem is one configuration problem. Path is a key path like "folders[1].agent_id"; Line is
// 1-based, 0 when the problem has no place in the file (e.g. a missing section).
type Problem struct {
	Path string
	Line int
	Msg  string
}

func (e *ConfigError) Error() string {
	lines := make([]string, 0, len(e.Problems))
	for _, p := range e.Problems {
		lines = append(lines, cfgFormat(e.File, p))
	}
	if len(lines) == 0 {
		return e.File + ": invalid configuration"
	}
	return strings.Join(lines, "\n")
}

func (e *ConfigError) Unwrap() error { return e.Err }

func cfgFormat(file string, p Problem) string {
	var b strings.Builder
	b.WriteString(file)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Built-in defaults.
const (
	cfgDefaultBaseURL         = "https://api.mosaic.so"
	cfgDefaultPollInterval    = 10 * time.Second
	cfgDefaultShutdownTimeout = 10 * time.Second
	cfgMaxShutdownTimeout     = 60 * time.Second
	cfgDefaultScanInterval    = time.Hour
	cfgDefaultSettle          = 10 * time.Second
	cfgDefaultIncompleteAfter = 30 * time.Minute
	cfgMinInterval            = 100 * time.Millisecond // lowest settle/poll interval (tests use sub-second values)
	cfgDefaultMaxFileSize     = 5 << 30
)

// Schema: the keys each section accepts. config_test.go checks config.example.yaml against these.
var (
	cfgTopKeys           = []string{"mosaic", "state_dir", "log", "limits", "shutdown_timeout", "scan_interval", "retry", "defaults", "folders", "http", "webhook"}
	cfgMosaicKeys        = []string{"base_url", "api_key", "api_key_file", "poll_interval", "reconcile_after", "upload_api"}
	cfgLogKeys           = []string{"level", "format"}
	cfgLimitsKeys        = []string{"uploads", "active_runs", "downloads"}
	cfgRetryKeys         = []string{"base", "max", "attempts"}
	cfgHTTPKeys          = []string{"listen", "token"}
	cfgWebhookKeys       = []string{"secret", "public_url"}
	cfgFolderSettingKeys = []string{"recursive", "include", "exclude", "settle", "incomplete_after", "mode", "poll_interval",
		"after_success", "after_success_move_to", "after_failure", "after_failure_move_to", "limits"}
	cfgFolderLimitsKeys = []string{"max_file_size"}
	cfgFolderOnlyKeys   = []string{"name", "input", "output", "agent_id", "update_params", "ignore_nodes"}
	cfgFolderKeys       = append(append([]string{}, cfgFolderOnlyKeys...), cfgFolderSettingKeys...)

	cfgModes          = []string{"auto", "events", "poll"}
	cfgSuccessActions = []string{"keep", "move", "delete"}
	cfgFailureActions = []string{"keep", "move"}
	cfgUploadAPIs     = []string{"uploads", "videos"}
	cfgLogLevels      = []string{"debug", "info", "warn", "error"}
	cfgLogFormats     = []string{"text", "json"}
)

// cfgKeyHome says where a key belongs, to answer "unknown key" with "it goes under X".
var cfgKeyHome = func() map[string]string {
	home := map[string]string{}
	add := func(section string, keys []string) {
		for _, k := range keys {
			if _, ok := home[k]; !ok {
				home[k] = section
			}
		}
	}
	add("the top level", cfgTopKeys)
	add("mosaic:", cfgMosaicKeys)
	add("log:", cfgLogKeys)
	add("the top-level limits:", cfgLimitsKeys)
	add("retry:", cfgRetryKeys)
	add("http:", cfgHTTPKeys)
	add("webhook:", cfgWebhookKeys)
	add("defaults: or a folder entry", cfgFolderSettingKeys)
	add("a folder's limits: (or defaults.limits:)", cfgFolderLimitsKeys)
	add("a folder entry (folders: - ...)", cfgFolderOnlyKeys)
	return home
}()

// cfgDefaultConfig returns the built-in defaults (no folders, no API key).
func cfgDefaultConfig() *Config {
	return &Config{
		BaseURL:         cfgDefaultBaseURL,
		PollInterval:    cfgDefaultPollInterval,
		ReconcileAfter:  2 * time.Minute,
		UploadAPI:       "uploads",
		StateDir:        DefaultStateDir(),
		LogLevel:        "info",
		LogFormat:       "text",
		Limits:          Limits{Uploads: 2, ActiveRuns: 8, Downloads: 2},
		ShutdownTimeout: cfgDefaultShutdownTimeout,
		ScanInterval:    cfgDefaultScanInterval,
		Retry:           cfgRetry{Base: 30 * time.Second, Max: time.Hour, Attempts: 8},
	}
}

// cfgDefaultFolder returns the built-in per-folder defaults.
func cfgDefaultFolder() Folder {
	return Folder{
		Recursive:       true,
		Settle:          cfgDefaultSettle,
		IncompleteAfter: cfgDefaultIncompleteAfter,
		Mode:            "auto",
		PollInterval:    cfgDefaultPollInterval,
		AfterSuccess:    "keep",
		AfterFailure:    "keep",
		MaxFileSize:     cfgDefaultMaxFileSize,
	}
}

// DefaultStateDir is where the SQLite database and staging live when state_dir is not set.
func DefaultStateDir() string {
	home, _ := os.UserHomeDir()
	return cfgStateDirFor(runtime.GOOS, os.Geteuid() == 0, os.Getenv, home)
}

func cfgStateDirFor(goos string, root bool, getenv func(string) string, home string) string {
	const name = "mosaic-watch"
	switch goos {
	case "windows":
		if pd := getenv("ProgramData"); pd != "" {
			return filepath.Join(pd, name)
		}
		return `C:\ProgramData\` + name
	case "darwin":
		if root || home == "" {
			return "/Library/Application Support/" + name
		}
		return filepath.Join(home, "Library", "Application Support", name)
	default:
		if root {
			return "/var/lib/" + name
		}
		if xdg := getenv("XDG_STATE_HOME"); filepath.IsAbs(xdg) {
			return filepath.Join(xdg, name)
		}
		if home == "" {
			return "/var/lib/" + name
		}
		return filepath.Join(home, ".local", "state", name)
	}
}

// LoadConfig reads, expands ${VAR} (lookupEnv; nil means os.LookupEnv), decodes strictly,
// applies defaults and validates. Errors are *ConfigError listing every problem.
func LoadConfig(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &ConfigError{File: path, Problems: []Problem{{Msg: fmt.Sprintf("cannot resolve config path: %v", err)}}, Err: err}
	}
	abs = filepath.Clean(abs)
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, &ConfigError{File: abs, Problems: []Problem{{Msg: "cannot read config file: " + cfgErrText(err)}}, Err: err}
	}
	l := &cfgLoader{file: abs, dir: filepath.Dir(abs), lookupEnv: lookupEnv, cfg: cfgDefaultConfig()}
	l.cfg.File = abs
	l.home, l.homeErr = os.UserHomeDir()
	if fi, err := os.Stat(abs); err == nil {
		l.fileMode = fi.Mode().Perm()
	}

	root, ok := l.parse(data)
	if ok {
		l.walkTop(root)
		l.validate()
	}
	if len(l.problems) > 0 {
		sort.SliceStable(l.problems, func(i, j int) bool { return l.problems[i].Line < l.problems[j].Line })
		return nil, &ConfigError{File: abs, Problems: l.problems}
	}
	l.cfg.Warnings = l.warnings
	return l.cfg, nil
}

// cfgErrText drops the path from *fs.PathError (the caller names the file already).
func cfgErrText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

type cfgLoc struct {
	path string
	line int
}

// cfgFolderSrc is a folder being assembled, with where each setting came from.
type cfgFolderSrc struct {
	f    Folder
	line int               // line of the folder's "- " item (0 for the defaults template)
	path string            // "folders[i]"
	set  map[string]cfgLoc // key -> where it was set (folder or defaults)
	own  map[string]bool   // keys set by the folder entry itself
}

func (s cfgFolderSrc) clone() cfgFolderSrc {
	c := s
	c.set = make(map[string]cfgLoc, len(s.set))
	for k, v := range s.set {
		c.set[k] = v
	}
	c.own = map[string]bool{}
	return c
}

// where returns the location of key for a problem: where it was set, else the folder item.
func (s *cfgFolderSrc) where(key string) cfgLoc {
	if loc, ok := s.set[key]; ok {
		return loc
	}
	return cfgLoc{path: s.path + "." + key, line: s.line}
}

type cfgLoader struct {
	file, dir string
	fileMode  fs.FileMode
	lookupEnv func(string) (string, bool)
	home      string
	homeErr   error
	cfg       *Config
	problems  []Problem
	warnings  []string

	folders       []cfgFolderSrc
	foldersLine   int
	stateDirLine  int
	mosaicLine    int
	apiKey        *cfgLoc // where api_key was set
	apiKeyFile    *cfgLoc
	apiKeyFromEnv bool
	apiKeyFileAt  string
}

func (l *cfgLoader) problem(path string, line int, format string, args ...any) {
	l.problems = append(l.problems, Problem{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (l *cfgLoader) warn(path string, line int, format string, args ...any) {
	l.warnings = append(l.warnings, cfgFormat(l.file, Problem{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)}))
}

var cfgLineRe = regexp.MustCompile(`line (\d+):\s*`)

// parse turns the file into the root mapping node; an empty file yields nil (all defaults).
func (l *cfgLoader) parse(data []byte) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true
		}
		l.syntaxProblem(data, err)
		return nil, false
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		l.problem("", extra.Line, "a second YAML document (after ---) is not supported; put all settings in one document")
	case !errors.Is(err, io.EOF):
		l.syntaxProblem(data, err)
	}
	if len(doc.Content) == 0 {
		return nil, true
	}
	return doc.Content[0], true
}

func (l *cfgLoader) syntaxProblem(data []byte, err error) {
	msg, line := cfgSplitYAMLError(err)
	if cfgParserErrors[msg] {
		line = cfgParserErrorLine(data, msg, line)
	}
	if strings.Contains(msg, "found character that cannot start any token") || strings.Contains(msg, "found a tab") {
		msg += " (YAML indentation must use spaces, not tabs)"
	}
	l.problem("", line, "YAML syntax error: %s", msg)
}

// cfgSplitYAMLError splits "yaml: line 3: message" into the message and the line (0 if none).
func cfgSplitYAMLError(err error) (string, int) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := cfgLineRe.FindStringSubmatchIndex(msg); m != nil {
		line, _ = strconv.Atoi(msg[m[2]:m[3]])
		msg = msg[:m[0]] + msg[m[1]:]
	}
	return msg, line
}

// cfgParserErrors are the yaml parser's (not scanner's) messages. For those, yaml v3 reports the
// 0-based line of the enclosing block's start, which can be far above the mistake.
var cfgParserErrors = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found undefined tag handle":             true,
}

// cfgParserErrorLine finds the first line at which a prefix of the file fails with the same
// message: that is where the mistake is. Falls back to the (corrected) reported line.
func cfgParserErrorLine(data []byte, msg string, reported int) int {
	start := reported + 1
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > 5000 {
		return start
	}
	for k := start; k <= len(lines); k++ {
		var n yaml.Node
		err := yaml.Unmarshal(bytes.Join(lines[:k], nil), &n)
		if err == nil {
			continue
		}
		if m, _ := cfgSplitYAMLError(err); m == msg {
			return k
		}
	}
	return start
}

// ---------------------------------------------------------------------------------------------
// Node walking helpers.

func cfgJoin(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func cfgDeref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func cfgIsNull(n *yaml.Node) bool {
	n = cfgDeref(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

func cfgKindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping (key: value lines)"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	}
	return "something else"
}

// mapping walks a mapping node: reports wrong type, duplicate keys, merge keys and unknown keys
// (with a suggestion), and calls each for every known key whose value is not null. known == nil
// accepts any key.
func (l *cfgLoader) mapping(n *yaml.Node, p string, known []string, each func(key string, k, v *yaml.Node, kp string)) {
	n = cfgDeref(n)
	if cfgIsNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		l.problem(p, n.Line, "expected a mapping (key: value lines), got %s", cfgKindName(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := cfgDeref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			l.problem(p, k.Line, "keys must be plain names, got %s", cfgKindName(k))
			continue
		}
		key := k.Value
		kp := cfgJoin(p, key)
		if key == "<<" {
			l.problem(kp, k.Line, "YAML merge keys (<<) are not supported; use defaults: for shared folder settings")
			continue
		}
		if first, dup := seen[key]; dup {
			l.problem(kp, k.Line, "duplicate key (first set on line %d)", first)
			continue
		}
		seen[key] = k.Line
		if known != nil && !cfgContains(known, key) {
			l.problem(kp, k.Line, "%s", cfgUnknownKeyMsg(key, known))
			continue
		}
		if cfgIsNull(v) {
			continue
		}
		each(key, k, cfgDeref(v), kp)
	}
}

func cfgContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func cfgUnknownKeyMsg(key string, known []string) string {
	msg := "unknown key"
	if home, ok := cfgKeyHome[key]; ok { // a valid key in the wrong place beats a look-alike
		return msg + fmt.Sprintf(" here; %s belongs under %s", key, home)
	}
	if s := cfgSuggest(key, known); s != "" {
		return msg + fmt.Sprintf("; did you mean %q?", s)
	}
	return msg + "; allowed keys: " + strings.Join(known, ", ")
}

// cfgSuggest returns the known key closest to key, or "" if none is close.
func cfgSuggest(key string, known []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.ToLower(s))
	}
	best, bestD := "", 1<<30
	for _, k := range known {
		if norm(k) == norm(key) {
			return k
		}
		d := cfgEditDistance(strings.ToLower(key), k)
		if d < bestD {
			best, bestD = k, d
		}
	}
	limit := 2
	if len(key) >= 9 {
		limit = 3
	}
	if bestD <= limit {
		return best
	}
	for _, k := range known { // "agent" -> "agent_id", "after_success_move" -> "after_success_move_to"
		if len(key) >= 4 && (strings.HasPrefix(k, key) || strings.HasPrefix(key, k)) {
			return k
		}
	}
	return ""
}

func cfgEditDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// scalar returns the value of a scalar node with ${VAR} expanded; fromEnv reports whether any
// variable was substituted.
func (l *cfgLoader) scalar(n *yaml.Node, p string) (s string, fromEnv bool, ok bool) {
	n = cfgDeref(n)
	if n.Kind != yaml.ScalarNode {
		l.problem(p, n.Line, "expected a single value, got %s", cfgKindName(n))
		return "", false, false
	}
	s, fromEnv, errs := cfgExpand(n.Value, l.lookupEnv)
	for _, e := range errs {
		l.problem(p, n.Line, "%s", e)
	}
	return s, fromEnv, len(errs) == 0
}

var cfgVarNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// cfgExpand replaces ${NAME} with the variable's value; "$${" yields a literal "${"; a lone "$" is
// literal. Errors name the variable, never a value.
func cfgExpand(s string, lookup func(string) (string, bool)) (out string, used bool, errs []string) {
	if !strings.Contains(s, "${") {
		return s, false, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				errs = append(errs, "unterminated ${ (write $${ for a literal ${)")
				return s, used, errs
			}
			name := s[i+2 : i+2+end]
			i += 3 + end
			if !cfgVarNameRe.MatchString(name) {
				errs = append(errs, "invalid variable reference: use ${NAME} with letters, digits and _ (write $${ for a literal ${)")
				continue
			}
			v, ok := lookup(name)
			if !ok {
				errs = append(errs, fmt.Sprintf("environment variable %s is not set", name))
				continue
			}
			b.WriteString(v)
			used = true
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), used, errs
}

func (l *cfgLoader) str(n *yaml.Node, p string) (string, bool) {
	s, _, ok := l.scalar(n, p)
	return s, ok
}

func (l *cfgLoader) boolean(n *yaml.Node, p string) (bool, bool) {
	s, _, ok := l.scalar(n, p)
	if !ok {
		return false, false
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on":
		return true, true
	case "false", "no", "off":
		return false, true
	}
	l.problem(p, n.Line, "expected true or false, got %q", s)
	return false, false
}

func (l *cfgLoader) integer(n *yaml.Node, p string, minimum int) (int, bool) {
	s, _, ok := l.scalar(n, p)
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		l.problem(p, n.Line, "expected a whole number, got %q", s)
		return 0, false
	}
	if v < minimum {
		l.problem(p, n.Line, "must be at least %d, got %d", minimum, v)
		return 0, false
	}
	return v, true
}

func (l *cfgLoader) duration(n *yaml.Node, p string, minimum, maximum time.Duration) (time.Duration, bool) {
	s, _, ok := l.scalar(n, p)
	if !ok {
		return 0, false
	}
	s = strings.TrimSpace(s)
	d, err := time.ParseDuration(s)
	if err != nil {
		if _, numErr := strconv.ParseFloat(s, 64); numErr == nil {
			l.problem(p, n.Line, "duration %q has no unit; write e.g. %ss (units: ms, s, m, h)", s, s)
		} else {
			l.problem(p, n.Line, "expected a duration like 30s, 2m or 1h30m, got %q", s)
		}
		return 0, false
	}
	if d <= 0 {
		l.problem(p, n.Line, "must be a positive duration, got %s", s)
		return 0, false
	}
	if d < minimum {
		l.problem(p, n.Line, "must be at least %s, got %s", minimum, s)
		return 0, false
	}
	if maximum > 0 && d > maximum {
		l.problem(p, n.Line, "must be at most %s, got %s", maximum, s)
		return 0, false
	}
	return d, true
}

func (l *cfgLoader) enum(n *yaml.Node, p string, allowed []string) (string, bool) {
	s, _, ok := l.scalar(n, p)
	if !ok {
		return "", false
	}
	v := strings.ToLower(strings.TrimSpace(s))
	if cfgContains(allowed, v) {
		return v, true
	}
	msg := fmt.Sprintf("unknown value %q; allowed: %s", s, strings.Join(allowed, ", "))
	if sug := cfgSuggest(v, allowed); sug != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", sug)
	}
	l.problem(p, n.Line, "%s", msg)
	return "", false
}

func (l *cfgLoader) strList(n *yaml.Node, p string) ([]string, bool) {
	n = cfgDeref(n)
	if n.Kind != yaml.SequenceNode {
		l.problem(p, n.Line, "expected a list (one \"- item\" per line, or [a, b]), got %s", cfgKindName(n))
		return nil, false
	}
	out := make([]string, 0, len(n.Content))
	ok := true
	for i, item := range n.Content {
		ip := fmt.Sprintf("%s[%d]", p, i)
		s, good := l.str(item, ip)
		if good && strings.TrimSpace(s) == "" {
			l.problem(ip, cfgDeref(item).Line, "must not be empty")
			good = false
		}
		if !good {
			ok = false
			continue
		}
		out = append(out, s)
	}
	return out, ok
}

func (l *cfgLoader) globs(n *yaml.Node, p string) ([]string, bool) {
	list, ok := l.strList(n, p)
	if !ok {
		return nil, false
	}
	for i, g := range list {
		if _, err := path.Match(strings.ReplaceAll(g, "**", "*"), "x"); err != nil {
			l.problem(fmt.Sprintf("%s[%d]", p, i), cfgDeref(n).Content[i].Line, "invalid glob pattern %q: %v", g, err)
			ok = false
		}
	}
	return list, ok
}

// pathValue reads a path: ${VAR} expanded, "~/" expanded, relative to the config file's directory.
func (l *cfgLoader) pathValue(n *yaml.Node, p string) (string, bool) {
	s, ok := l.str(n, p)
	if !ok {
		return "", false
	}
	if strings.TrimSpace(s) == "" {
		l.problem(p, n.Line, "must not be empty")
		return "", false
	}
	if s == "~" || strings.HasPrefix(s, "~/") || (runtime.GOOS == "windows" && strings.HasPrefix(s, `~\`)) {
		if l.homeErr != nil || l.home == "" {
			l.problem(p, n.Line, "cannot expand ~: home directory unknown (%v); use an absolute path", l.homeErr)
			return "", false
		}
		s = filepath.Join(l.home, s[1:])
	} else if strings.HasPrefix(s, "~") {
		l.problem(p, n.Line, "~user paths are not supported; use an absolute path")
		return "", false
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(l.dir, s)
	}
	return filepath.Clean(s), true
}

var cfgSizeRe = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$`)

var cfgSizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// cfgParseSize parses "5GiB", "500MB", "1.5 GB" or plain bytes.
func cfgParseSize(s string) (int64, error) {
	m := cfgSizeRe.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, errors.New("expected a size like 5GiB, 500MB or a number of bytes")
	}
	unit, ok := cfgSizeUnits[strings.ToLower(m[2])]
	if !ok {
		return 0, fmt.Errorf("unknown size unit %q; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB", m[2])
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, errors.New("expected a size like 5GiB, 500MB or a number of bytes")
	}
	v := f * unit
	if v > 1<<62 {
		return 0, errors.New("size is too large")
	}
	return int64(v), nil
}

func (l *cfgLoader) size(n *yaml.Node, p string) (int64, bool) {
	s, _, ok := l.scalar(n, p)
	if !ok {
		return 0, false
	}
	v, err := cfgParseSize(s)
	if err != nil {
		l.problem(p, n.Line, "%v, got %q", err, s)
		return 0, false
	}
	if v < 1 {
		l.problem(p, n.Line, "must be at least 1 byte, got %q", s)
		return 0, false
	}
	return v, true
}

func (l *cfgLoader) httpURL(n *yaml.Node, p string) (string, bool) {
	s, ok := l.str(n, p)
	if !ok {
		return "", false
	}
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		l.problem(p, n.Line, "expected an http:// or https:// URL, got %q", s)
		return "", false
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		l.problem(p, n.Line, "URL must not contain credentials, a query or a fragment")
		return "", false
	}
	return strings.TrimRight(s, "/"), true
}

// ---------------------------------------------------------------------------------------------
// The schema walk.

func (l *cfgLoader) walkTop(root *yaml.Node) {
	c := l.cfg
	var defaults, folders *yaml.Node
	l.mapping(root, "", cfgTopKeys, func(key string, k, v *yaml.Node, p string) {
		switch key {
		case "mosaic":
			l.mosaicLine = k.Line
			l.walkMosaic(v, p)
		case "state_dir":
			if s, ok := l.pathValue(v, p); ok {
				c.StateDir, l.stateDirLine = s, v.Line
			}
		case "log":
			l.mapping(v, p, cfgLogKeys, func(key string, _, v *yaml.Node, p string) {
				if key == "level" {
					if s, ok := l.enum(v, p, cfgLogLevels); ok {
						c.LogLevel = s
					}
				} else if s, ok := l.enum(v, p, cfgLogFormats); ok {
					c.LogFormat = s
				}
			})
		case "limits":
			l.mapping(v, p, cfgLimitsKeys, func(key string, _, v *yaml.Node, p string) {
				n, ok := l.integer(v, p, 1)
				if !ok {
					return
				}
				switch key {
				case "uploads":
					c.Limits.Uploads = n
				case "active_runs":
					c.Limits.ActiveRuns = n
				case "downloads":
					c.Limits.Downloads = n
				}
			})
		case "shutdown_timeout":
			if d, ok := l.duration(v, p, cfgMinInterval, cfgMaxShutdownTimeout); ok {
				c.ShutdownTimeout = d
			}
		case "scan_interval":
			if d, ok := l.duration(v, p, cfgMinInterval, 0); ok {
				c.ScanInterval = d
			}
		case "retry":
			l.walkRetry(v, p)
		case "defaults":
			defaults = v
		case "folders":
			folders, l.foldersLine = v, k.Line
		case "http":
			l.walkHTTP(v, p)
		case "webhook":
			l.mapping(v, p, cfgWebhookKeys, func(key string, _, v *yaml.Node, p string) {
				if key == "secret" {
					c.WebhookSecret, _ = l.str(v, p)
				} else if s, ok := l.httpURL(v, p); ok {
					c.WebhookPublicURL = s
				}
			})
		}
	})

	tmpl := cfgFolderSrc{f: cfgDefaultFolder(), set: map[string]cfgLoc{}}
	l.mapping(defaults, "defaults", cfgFolderSettingKeys, func(key string, _, v *yaml.Node, p string) {
		l.folderSetting(key, v, p, &tmpl)
	})
	l.walkFolders(folders, tmpl)
}

func (l *cfgLoader) walkMosaic(n *yaml.Node, p string) {
	c := l.cfg
	l.mapping(n, p, cfgMosaicKeys, func(key string, _, v *yaml.Node, p string) {
		switch key {
		case "base_url":
			if s, ok := l.httpURL(v, p); ok {
				c.BaseURL = s
			}
		case "api_key":
			l.apiKey = &cfgLoc{p, v.Line}
			if s, fromEnv, ok := l.scalar(v, p); ok {
				c.APIKey, l.apiKeyFromEnv = strings.TrimSpace(s), fromEnv
				if c.APIKey == "" {
					l.problem(p, v.Line, "is empty")
				}
			}
		case "api_key_file":
			l.apiKeyFile = &cfgLoc{p, v.Line}
			if s, ok := l.pathValue(v, p); ok {
				l.apiKeyFileAt = s
			}
		case "poll_interval":
			if d, ok := l.duration(v, p, cfgMinInterval, 0); ok {
				c.PollInterval = d
			}
		case "reconcile_after":
			if d, ok := l.duration(v, p, cfgMinInterval, 0); ok {
				c.ReconcileAfter = d
			}
		case "upload_api":
			if s, ok := l.enum(v, p, cfgUploadAPIs); ok {
				c.UploadAPI = s
			}
		}
	})
}

func (l *cfgLoader) walkRetry(n *yaml.Node, p string) {
	r := &l.cfg.Retry
	var maxLine int
	l.mapping(n, p, cfgRetryKeys, func(key string, _, v *yaml.Node, p string) {
		switch key {
		case "base": // no floor: tests retry within milliseconds
			if d, ok := l.duration(v, p, 0, 0); ok {
				r.Base = d
			}
		case "max":
			if d, ok := l.duration(v, p, 0, 0); ok {
				r.Max, maxLine = d, v.Line
			}
		case "attempts":
			if n, ok := l.integer(v, p, 1); ok {
				r.Attempts = n
			}
		}
	})
	if r.Max < r.Base {
		l.problem(p+".max", maxLine, "must not be shorter than retry.base (%s)", r.Base)
	}
}

func (l *cfgLoader) walkHTTP(n *yaml.Node, p string) {
	c := l.cfg
	openPath, openLine := "", 0 // a non-loopback listen address, checked once the token is known
	defer func() {
		if openPath != "" && c.HTTPToken == "" {
			l.problem(openPath, openLine, "listening on a non-loopback address exposes the status API to the network: set http.token, or listen on 127.0.0.1")
		}
	}()
	l.mapping(n, p, cfgHTTPKeys, func(key string, _, v *yaml.Node, p string) {
		s, ok := l.str(v, p)
		if !ok {
			return
		}
		if key == "token" {
			c.HTTPToken = s
			return
		}
		host, port, err := net.SplitHostPort(strings.TrimSpace(s))
		if err != nil || port == "" {
			l.problem(p, v.Line, "expected host:port like 127.0.0.1:8787, got %q", s)
			return
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			l.problem(p, v.Line, "invalid port %q", port)
			return
		}
		c.HTTPListen = strings.TrimSpace(s)
		if !loopbackHost(host) {
			openPath, openLine = p, v.Line
		}
	})
}

// loopbackHost reports whether a listen host only accepts connections from this machine
// ("" and unspecified addresses listen on every interface).
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// folderSetting applies one key that both defaults: and a folder entry accept.
func (l *cfgLoader) folderSetting(key string, v *yaml.Node, p string, src *cfgFolderSrc) {
	f := &src.f
	src.set[key] = cfgLoc{p, v.Line}
	if src.own != nil {
		src.own[key] = true
	}
	switch key {
	case "recursive":
		if b, ok := l.boolean(v, p); ok {
			f.Recursive = b
		}
	case "include":
		if list, ok := l.globs(v, p); ok {
			if len(list) == 0 {
				l.problem(p, v.Line, "an empty include list matches no file; remove the key to use the default video patterns")
				return
			}
			f.Include = list
		}
	case "exclude":
		if list, ok := l.globs(v, p); ok {
			f.Exclude = list
		}
	case "settle":
		if d, ok := l.duration(v, p, cfgMinInterval, 0); ok {
			f.Settle = d
		}
	case "incomplete_after":
		if d, ok := l.duration(v, p, cfgMinInterval, 0); ok {
			f.IncompleteAfter = d
		}
	case "mode":
		if s, ok := l.enum(v, p, cfgModes); ok {
			f.Mode = s
		}
	case "poll_interval":
		if d, ok := l.duration(v, p, cfgMinInterval, 0); ok {
			f.PollInterval = d
		}
	case "after_success":
		if s, ok := l.enum(v, p, cfgSuccessActions); ok {
			f.AfterSuccess = s
		}
	case "after_success_move_to":
		if s, ok := l.pathValue(v, p); ok {
			f.AfterSuccessMoveTo = s
		}
	case "after_failure":
		if s, ok := l.enum(v, p, cfgFailureActions); ok {
			f.AfterFailure = s
		}
	case "after_failure_move_to":
		if s, ok := l.pathValue(v, p); ok {
			f.AfterFailureMoveTo = s
		}
	case "limits":
		l.mapping(v, p, cfgFolderLimitsKeys, func(_ string, _, v *yaml.Node, p string) {
			src.set["limits.max_file_size"] = cfgLoc{p, v.Line}
			if n, ok := l.size(v, p); ok {
				f.MaxFileSize = n
			}
		})
	}
}

func (l *cfgLoader) walkFolders(n *yaml.Node, tmpl cfgFolderSrc) {
	n = cfgDeref(n)
	if cfgIsNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		l.problem("folders", n.Line, "expected a list of folders (each entry starts with \"- input: ...\"), got %s", cfgKindName(n))
		return
	}
	for i, item := range n.Content {
		p := fmt.Sprintf("folders[%d]", i)
		item = cfgDeref(item)
		src := tmpl.clone()
		src.f.Index, src.line, src.path = i, item.Line, p
		if item.Kind != yaml.MappingNode {
			l.problem(p, item.Line, "expected a folder entry (input:, output:, agent_id: ...), got %s", cfgKindName(item))
			continue
		}
		l.mapping(item, p, cfgFolderKeys, func(key string, _, v *yaml.Node, kp string) {
			f := &src.f
			switch key {
			case "name":
				if s, ok := l.str(v, kp); ok {
					src.set[key], f.Name = cfgLoc{kp, v.Line}, strings.TrimSpace(s)
				}
			case "input":
				src.set[key] = cfgLoc{kp, v.Line}
				f.Input, _ = l.pathValue(v, kp)
			case "output":
				src.set[key] = cfgLoc{kp, v.Line}
				f.Output, _ = l.pathValue(v, kp)
			case "agent_id":
				src.set[key] = cfgLoc{kp, v.Line}
				if s, ok := l.str(v, kp); ok {
					f.AgentID = strings.TrimSpace(s)
					if f.AgentID == "" {
						l.problem(kp, v.Line, "must not be empty")
					}
				}
			case "update_params":
				f.UpdateParams = l.updateParams(v, kp)
			case "ignore_nodes":
				f.IgnoreNodes, _ = l.strList(v, kp)
			default:
				l.folderSetting(key, v, kp, &src)
			}
		})
		l.folders = append(l.folders, src)
	}
}

// updateParams reads node-id -> {param: value}. Values keep their YAML types (string, number,
// bool, list, mapping) so they can be sent as JSON.
func (l *cfgLoader) updateParams(n *yaml.Node, p string) map[string]map[string]any {
	out := map[string]map[string]any{}
	l.mapping(n, p, nil, func(node string, _, v *yaml.Node, np string) {
		if v.Kind != yaml.MappingNode {
			l.problem(np, v.Line, "expected a mapping of parameter names to values for agent node %q, got %s", node, cfgKindName(v))
			return
		}
		params := map[string]any{}
		l.mapping(v, np, nil, func(name string, _, pv *yaml.Node, pp string) {
			params[name] = l.anyValue(pv, pp)
		})
		out[node] = params
	})
	return out
}

func (l *cfgLoader) anyValue(n *yaml.Node, p string) any {
	n = cfgDeref(n)
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		l.mapping(n, p, nil, func(key string, _, v *yaml.Node, kp string) { m[key] = l.anyValue(v, kp) })
		for i := 0; i+1 < len(n.Content); i += 2 { // explicit nulls are kept as JSON null
			if k := n.Content[i]; k.Kind == yaml.ScalarNode && cfgIsNull(n.Content[i+1]) {
				m[k.Value] = nil
			}
		}
		return m
	case yaml.SequenceNode:
		list := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			list = append(list, l.anyValue(item, fmt.Sprintf("%s[%d]", p, i)))
		}
		return list
	}
	if cfgIsNull(n) {
		return nil
	}
	s, _, ok := l.scalar(n, p)
	if !ok {
		return nil
	}
	if s != n.Value { // expanded: a plain scalar gets its type from the substituted text
		if n.Style == 0 {
			return cfgPlainValue(s)
		}
		return s
	}
	switch n.ShortTag() {
	case "!!bool", "!!int", "!!float":
		var v any
		if err := n.Decode(&v); err == nil {
			return v
		}
	}
	return s
}

// cfgPlainValue types a substituted plain value like YAML would: bool, int, float, else string.
func cfgPlainValue(s string) any {
	switch s {
	case "true":
		return true
	case "false":
		return false
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "xXnN") {
		return f
	}
	return s
}

// ---------------------------------------------------------------------------------------------
// Validation of the assembled configuration.

var cfgUUIDRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (l *cfgLoader) validate() {
	l.validateAPIKey()
	if len(l.folders) == 0 && !l.hasProblemAt("folders") {
		l.problem("folders", l.foldersLine, "at least one folder is required")
	}
	for i := range l.folders {
		l.validateFolder(&l.folders[i])
	}
	l.validateOverlaps()
	for _, src := range l.folders {
		l.cfg.Folders = append(l.cfg.Folders, src.f)
	}
}

func (l *cfgLoader) hasProblemAt(path string) bool {
	for _, p := range l.problems {
		if p.Path == path {
			return true
		}
	}
	return false
}

func (l *cfgLoader) validateAPIKey() {
	c := l.cfg
	switch {
	case l.apiKey != nil && l.apiKeyFile != nil:
		l.problem(l.apiKeyFile.path, l.apiKeyFile.line, "set either mosaic.api_key or mosaic.api_key_file, not both")
		return
	case l.apiKey == nil && l.apiKeyFile == nil:
		l.problem("mosaic.api_key", l.mosaicLine, "missing; set api_key: ${MOSAIC_API_KEY} or api_key_file")
		return
	case l.apiKeyFile != nil:
		if l.apiKeyFileAt == "" {
			return // already reported
		}
		at := *l.apiKeyFile
		fi, err := os.Stat(l.apiKeyFileAt)
		if err == nil && !fi.Mode().IsRegular() {
			l.problem(at.path, at.line, "%s is not a regular file", l.apiKeyFileAt)
			return
		}
		data, err := os.ReadFile(l.apiKeyFileAt)
		if err != nil {
			l.problem(at.path, at.line, "cannot read %s: %s", l.apiKeyFileAt, cfgErrText(err))
			return
		}
		c.APIKey = strings.TrimSpace(string(data))
		if c.APIKey == "" {
			l.problem(at.path, at.line, "%s is empty", l.apiKeyFileAt)
			return
		}
		if fi != nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
			l.warn(at.path, at.line, "key file %s can be read by other users (mode %#o); run: chmod 600 %s",
				l.apiKeyFileAt, fi.Mode().Perm(), l.apiKeyFileAt)
		}
	default:
		if c.APIKey == "" {
			return // already reported
		}
		at := *l.apiKey
		if !l.apiKeyFromEnv && runtime.GOOS != "windows" && l.fileMode&0o077 != 0 {
			l.warn(at.path, at.line, "the API key is written in this file, which other users can read (mode %#o); run: chmod 600 %s, or use api_key: ${MOSAIC_API_KEY} or api_key_file",
				l.fileMode, l.file)
		}
	}
	if !strings.HasPrefix(c.APIKey, "mk_") {
		at := l.apiKey
		if at == nil {
			at = l.apiKeyFile
		}
		l.warn(at.path, at.line, "the API key does not start with mk_; is it a Mosaic API key?")
	}
}

func (l *cfgLoader) validateFolder(src *cfgFolderSrc) {
	f := &src.f
	p := src.path
	if _, ok := src.set["input"]; !ok {
		l.problem(p+".input", src.line, "missing; set the folder to watch")
	} else if f.Input != "" {
		at := src.where("input")
		fi, err := os.Stat(f.Input)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			l.problem(at.path, at.line, "input folder %s does not exist; create it or fix the path", f.Input)
		case err != nil:
			l.problem(at.path, at.line, "cannot access input folder %s: %s", f.Input, cfgErrText(err))
		case !fi.IsDir():
			l.problem(at.path, at.line, "%s is not a folder", f.Input)
		}
		if f.Name == "" {
			f.Name = filepath.Base(f.Input)
		}
	}
	if _, ok := src.set["output"]; !ok {
		l.problem(p+".output", src.line, "missing; set the folder where the agent's outputs are written")
	} else if f.Output != "" {
		if fi, err := os.Stat(f.Output); err == nil && !fi.IsDir() {
			at := src.where("output")
			l.problem(at.path, at.line, "%s exists and is not a folder", f.Output)
		}
	}
	if _, ok := src.set["agent_id"]; !ok {
		l.problem(p+".agent_id", src.line, "missing; set the Mosaic agent ID (from the agent's page or `mosaic-watch agents`)")
	} else if f.AgentID != "" {
		at := src.where("agent_id")
		if strings.ContainsFunc(f.AgentID, unicode.IsSpace) || strings.Contains(f.AgentID, "/") {
			l.problem(at.path, at.line, "agent ID %q must not contain spaces or '/'", f.AgentID)
		} else if !cfgUUIDRe.MatchString(f.AgentID) {
			l.warn(at.path, at.line, "agent ID %q does not look like a UUID (123e4567-e89b-12d3-a456-789012345678)", f.AgentID)
		}
	}
	l.validateDisposition(src, "after_success", f.AfterSuccess, &f.AfterSuccessMoveTo)
	l.validateDisposition(src, "after_failure", f.AfterFailure, &f.AfterFailureMoveTo)
}

func (l *cfgLoader) validateDisposition(src *cfgFolderSrc, key, action string, moveTo *string) {
	mk := key + "_move_to"
	_, moveSet := src.set[mk]
	if action != "move" {
		if *moveTo != "" && src.own[mk] {
			at := src.where(mk)
			l.warn(at.path, at.line, "ignored because %s is %s (not move)", key, action)
		}
		*moveTo = ""
		return
	}
	if !moveSet {
		at := src.where(key)
		l.problem(src.path+"."+mk, at.line, "required when %s is move (set the folder to move the source videos to)", key)
		return
	}
	if *moveTo == "" {
		return // already reported
	}
	if fi, err := os.Stat(*moveTo); err == nil && !fi.IsDir() {
		at := src.where(mk)
		l.problem(at.path, at.line, "%s exists and is not a folder", *moveTo)
	}
}

// validateOverlaps refuses layouts where the daemon would pick up its own files: outputs, move
// targets or the state directory inside an input, and the same input watched twice.
func (l *cfgLoader) validateOverlaps() {
	for i := range l.folders {
		a := &l.folders[i]
		fa := a.f
		if fa.Input == "" {
			continue
		}
		if fa.Output != "" {
			at := a.where("output")
			switch {
			case cfgSamePath(fa.Output, fa.Input):
				l.problem(at.path, at.line, "output folder is the same as the input folder %s; outputs would be picked up again as new videos", fa.Input)
			case cfgInside(fa.Output, fa.Input):
				l.problem(at.path, at.line, "output folder %s is inside the input folder %s; outputs would be picked up again as new videos, use a folder outside the input", fa.Output, fa.Input)
			case cfgInside(fa.Input, fa.Output):
				l.problem(at.path, at.line, "input folder %s is inside the output folder %s; use separate folders", fa.Input, fa.Output)
			}
		}
		for j := range l.folders {
			fb := l.folders[j].f
			if fb.Input == "" {
				continue
			}
			for _, mk := range []string{"after_success_move_to", "after_failure_move_to"} {
				dir := fa.AfterSuccessMoveTo
				if mk == "after_failure_move_to" {
					dir = fa.AfterFailureMoveTo
				}
				if dir == "" || !cfgInside(dir, fb.Input) {
					continue
				}
				at := a.where(mk)
				who := "its own input folder"
				if j != i {
					who = fmt.Sprintf("the input folder of %s", l.folders[j].path)
				}
				l.problem(at.path, at.line, "move target %s is inside %s %s; moved videos would be picked up again, use a folder outside every input (for %s)", dir, who, fb.Input, a.path)
			}
			if j <= i {
				continue
			}
			b := &l.folders[j]
			at := b.where("input")
			switch {
			case cfgSamePath(fb.Input, fa.Input):
				l.problem(at.path, at.line, "same input folder as %s (line %d); each folder can be watched by one entry only", a.path, a.where("input").line)
			case cfgInside(fb.Input, fa.Input):
				l.problem(at.path, at.line, "input folder %s is inside %s.input %s; videos there would be processed twice", fb.Input, a.path, fa.Input)
			case cfgInside(fa.Input, fb.Input):
				l.problem(at.path, at.line, "input folder %s contains %s.input %s; videos there would be processed twice", fb.Input, a.path, fa.Input)
			}
		}
		if cfgInside(l.cfg.StateDir, fa.Input) {
			l.problem("state_dir", l.stateDirLine, "state directory %s is inside the input folder of %s (%s); choose a folder outside every input", l.cfg.StateDir, a.path, fa.Input)
		}
		if fa.Name != "" && a.own["name"] {
			for j := i + 1; j < len(l.folders); j++ {
				if b := l.folders[j]; b.own["name"] && b.f.Name == fa.Name {
					at := b.where("name")
					l.problem(at.path, at.line, "name %q is already used by %s", fa.Name, a.path)
				}
			}
		}
	}
}

// cfgInside reports whether child is parent or lies below it, comparing cleaned paths by path
// element and, when they exist, their symlink-resolved forms.
func cfgInside(child, parent string) bool {
	return cfgWithin(child, parent) || cfgWithin(cfgRealPath(child), cfgRealPath(parent))
}

func cfgSamePath(a, b string) bool {
	return cfgEqual(a, b) || cfgEqual(cfgRealPath(a), cfgRealPath(b))
}

func cfgFold(p string) string {
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" { // case-insensitive by default
		return strings.ToLower(p)
	}
	return p
}

func cfgEqual(a, b string) bool { return cfgFold(filepath.Clean(a)) == cfgFold(filepath.Clean(b)) }

func cfgWithin(child, parent string) bool {
	rel, err := filepath.Rel(cfgFold(parent), cfgFold(child))
	if err != nil {
		return false
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)))
}

// cfgRealPath resolves symlinks in the longest existing prefix of p (outputs and move targets
// may not exist yet).
func cfgRealPath(p string) string {
	cur, rest := filepath.Clean(p), ""
	for {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return filepath.Clean(p)
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}
