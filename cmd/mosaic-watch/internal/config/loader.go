package config

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// Load reads the file at path, expands ${VAR} (lookupEnv; nil means os.LookupEnv), decodes
// strictly, applies defaults and validates. Its error is an ErrorList naming every problem.
func Load(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	return load(path, lookupEnv, true)
}

// HTTP is how to reach a running daemon's HTTP surface: http.listen and http.token.
type HTTP struct {
	File   string // absolute path of the config file
	Listen string // http.listen ("" when the surface is off)
	Token  string // http.token (secret)
}

// LoadHTTP reads the http section for a command that talks to the running daemon. The file is
// decoded as strictly as by Load, but the folders and the API key are not checked: a missing
// input folder is what the daemon's health reports, not a reason to be unable to ask it.
func LoadHTTP(path string, lookupEnv func(string) (string, bool)) (*HTTP, error) {
	cfg, err := load(path, lookupEnv, false)
	if err != nil {
		return nil, err
	}
	return &HTTP{File: cfg.File, Listen: cfg.HTTPListen, Token: cfg.HTTPToken}, nil
}

func load(path string, lookupEnv func(string) (string, bool), whole bool) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		msg := fmt.Sprintf("cannot resolve config path: %v", err)
		return nil, ErrorList{{File: path, Msg: msg, Err: err}}
	}
	abs = filepath.Clean(abs)
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, ErrorList{{File: abs, Msg: "cannot read config file: " + errText(err), Err: err}}
	}
	l := &loader{file: abs, dir: filepath.Dir(abs), lookupEnv: lookupEnv, cfg: defaults()}
	l.cfg.File, l.cfg.lookupEnv = abs, lookupEnv
	l.home, l.homeErr = os.UserHomeDir()
	if fi, err := os.Stat(abs); err == nil {
		l.fileMode = fi.Mode().Perm()
	}

	root, ok := l.parse(data)
	if ok {
		l.walkTop(root)
		l.stateDirFromEnv()
		if whole {
			l.validate()
		}
	}
	if len(l.problems) > 0 {
		l.problems.Sort()
		return nil, l.problems
	}
	l.cfg.Warnings = l.warnings
	return l.cfg, nil
}

// location is where a key was set: its path and line.
type location struct {
	path string
	line int
}

// folderSource is a folder being assembled, with where each setting came from.
type folderSource struct {
	f    Folder
	line int                 // line of the folder's "- " item (0 for the defaults template)
	path string              // "folders[i]"
	set  map[string]location // key -> where it was set (folder or defaults)
	own  map[string]bool     // keys set by the folder entry itself
}

func (s folderSource) clone() folderSource {
	c := s
	c.set = make(map[string]location, len(s.set))
	for k, v := range s.set {
		c.set[k] = v
	}
	c.own = map[string]bool{}
	return c
}

// where returns the location of key for a problem: where it was set, else the folder item.
func (s *folderSource) where(key string) location {
	if loc, ok := s.set[key]; ok {
		return loc
	}
	return location{path: s.path + "." + key, line: s.line}
}

// loader holds one Load's state: the configuration being filled in and what went wrong.
type loader struct {
	file, dir string
	fileMode  fs.FileMode
	lookupEnv func(string) (string, bool)
	home      string
	homeErr   error
	cfg       *Config
	problems  ErrorList
	warnings  []string

	folders       []folderSource
	foldersLine   int
	stateDirLine  int
	mosaicLine    int
	publicURLLine int       // line of webhook.public_url
	apiKey        *location // where api_key was set
	apiKeyFile    *location
	apiKeyFromEnv bool
	apiKeyFileAt  string
	db            databaseState
}

func (l *loader) problem(path string, line int, format string, args ...any) {
	l.problems.Add(l.file, line, path, fmt.Sprintf(format, args...))
}

func (l *loader) warn(path string, line int, format string, args ...any) {
	w := Error{File: l.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)}
	l.warnings = append(l.warnings, w.Error())
}

// StateDirOf returns the state_dir a configuration file names, even when the file has other
// problems: `status` and `explain` still find the daemon's database after a bad edit. It
// falls back to the default state directory.
func StateDirOf(path string, lookupEnv func(string) (string, bool)) string {
	return storeOf(path, lookupEnv).StateDir
}

// StoreOf is StateDirOf with the database section too: where the daemon of a configuration
// file with problems keeps its jobs (the state_dir, and database.url if it is valid).
func StoreOf(path string, lookupEnv func(string) (string, bool)) *Config {
	return storeOf(path, lookupEnv)
}

func storeOf(path string, lookupEnv func(string) (string, bool)) *Config {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	c := &Config{StateDir: DefaultStateDir()}
	abs, err := filepath.Abs(path)
	if err != nil {
		return c
	}
	c.File = abs
	data, err := os.ReadFile(abs)
	if err != nil {
		return c
	}
	l := &loader{file: abs, dir: filepath.Dir(abs), lookupEnv: lookupEnv, cfg: defaults()}
	l.home, l.homeErr = os.UserHomeDir()
	root, ok := l.parse(data)
	if !ok || root == nil || deref(root).Kind != yaml.MappingNode {
		return c
	}
	n := deref(root)
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch n.Content[i].Value {
		case "state_dir":
			if s, ok := l.pathValue(n.Content[i+1], "state_dir"); ok {
				c.StateDir = s
			}
		case "database":
			before := len(l.problems)
			l.walkDatabase(n.Content[i+1], "database")
			l.validateDatabase()
			if len(l.problems) == before {
				c.Database = l.cfg.Database
			}
		}
	}
	return c
}
