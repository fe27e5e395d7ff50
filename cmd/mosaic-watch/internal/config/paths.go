package config

// Paths: expanding and resolving path values, and comparing folders (nesting, symlinks, case).

import (
	"path/filepath"
	"runtime"
	"strings"

	"go.yaml.in/yaml/v3"
)

// pathValue reads a path: ${VAR} expanded, "~/" expanded, relative to the config file's
// directory.
func (l *loader) pathValue(n *yaml.Node, p string) (string, bool) {
	s, ok := l.str(n, p)
	if !ok {
		return "", false
	}
	if strings.TrimSpace(s) == "" {
		l.problem(p, n.Line, "must not be empty")
		return "", false
	}
	windowsHome := runtime.GOOS == "windows" && strings.HasPrefix(s, `~\`)
	if s == "~" || strings.HasPrefix(s, "~/") || windowsHome {
		if l.homeErr != nil || l.home == "" {
			l.problem(p, n.Line, "cannot expand ~: home directory unknown (%v); use an absolute path",
				l.homeErr)
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

// inside reports whether child is parent or lies below it, comparing cleaned paths by path
// element and, when they exist, their symlink-resolved forms.
func inside(child, parent string) bool {
	return within(child, parent) || within(realPath(child), realPath(parent))
}

func samePath(a, b string) bool {
	return equalPath(a, b) || equalPath(realPath(a), realPath(b))
}

func foldCase(p string) string {
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" { // case-insensitive by default
		return strings.ToLower(p)
	}
	return p
}

func equalPath(a, b string) bool {
	return foldCase(filepath.Clean(a)) == foldCase(filepath.Clean(b))
}

func within(child, parent string) bool {
	rel, err := filepath.Rel(foldCase(parent), foldCase(child))
	if err != nil {
		return false
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)))
}

// realPath resolves symlinks in the longest existing prefix of p (outputs and move targets
// may not exist yet).
func realPath(p string) string {
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
