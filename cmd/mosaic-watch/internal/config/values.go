package config

// Scalar values: ${VAR} expansion and the typed readers (booleans, numbers, durations, enums,
// lists, globs, sizes, URLs, free-form agent parameters).

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// scalar returns the value of a scalar node with ${VAR} expanded; fromEnv reports whether any
// variable was substituted.
func (l *loader) scalar(n *yaml.Node, p string) (s string, fromEnv bool, ok bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode {
		l.problem(p, n.Line, "expected a single value, got %s", kindName(n))
		return "", false, false
	}
	s, fromEnv, errs := expand(n.Value, l.lookupEnv)
	for _, e := range errs {
		l.problem(p, n.Line, "%s", e)
	}
	return s, fromEnv, len(errs) == 0
}

var varNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand replaces ${NAME} with the variable's value; "$${" yields a literal "${"; a lone "$" is
// literal. Errors name the variable, never a value.
func expand(s string, lookup func(string) (string, bool)) (out string, used bool, errs []string) {
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
			if !varNameRe.MatchString(name) {
				errs = append(errs, "invalid variable reference: use ${NAME} with letters, "+
					"digits and _ (write $${ for a literal ${)")
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

func (l *loader) str(n *yaml.Node, p string) (string, bool) {
	s, _, ok := l.scalar(n, p)
	return s, ok
}

func (l *loader) boolean(n *yaml.Node, p string) (bool, bool) {
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

func (l *loader) integer(n *yaml.Node, p string, minimum int) (int, bool) {
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

func (l *loader) duration(n *yaml.Node, p string, minimum, maximum time.Duration) (
	time.Duration, bool) {
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

func (l *loader) enum(n *yaml.Node, p string, allowed []string) (string, bool) {
	s, _, ok := l.scalar(n, p)
	if !ok {
		return "", false
	}
	v := strings.ToLower(strings.TrimSpace(s))
	if slices.Contains(allowed, v) {
		return v, true
	}
	msg := fmt.Sprintf("unknown value %q; allowed: %s", s, strings.Join(allowed, ", "))
	if sug := suggest(v, allowed); sug != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", sug)
	}
	l.problem(p, n.Line, "%s", msg)
	return "", false
}

// enumOf reads one of allowed into a typed setting (watcher.Mode, mosaic.UploadAPI,
// Disposition), with enum's messages.
func enumOf[T ~string](l *loader, n *yaml.Node, p string, allowed []T) (T, bool) {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	s, ok := l.enum(n, p, names)
	return T(s), ok
}

func (l *loader) strList(n *yaml.Node, p string) ([]string, bool) {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		l.problem(p, n.Line, "expected a list (one \"- item\" per line, or [a, b]), got %s", kindName(n))
		return nil, false
	}
	out := make([]string, 0, len(n.Content))
	ok := true
	for i, item := range n.Content {
		ip := fmt.Sprintf("%s[%d]", p, i)
		s, good := l.str(item, ip)
		if good && strings.TrimSpace(s) == "" {
			l.problem(ip, deref(item).Line, "must not be empty")
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

func (l *loader) globs(n *yaml.Node, p string) ([]string, bool) {
	list, ok := l.strList(n, p)
	if !ok {
		return nil, false
	}
	for i, g := range list {
		if _, err := path.Match(strings.ReplaceAll(g, "**", "*"), "x"); err != nil {
			l.problem(fmt.Sprintf("%s[%d]", p, i), deref(n).Content[i].Line,
				"invalid glob pattern %q: %v", g, err)
			ok = false
		}
	}
	return list, ok
}

// pathValue reads a path: ${VAR} expanded, "~/" expanded, relative to the config file's directory.
var sizeRe = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$`)

var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// parseSize parses "5GiB", "500MB", "1.5 GB" or plain bytes.
func parseSize(s string) (int64, error) {
	m := sizeRe.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, errors.New("expected a size like 5GiB, 500MB or a number of bytes")
	}
	unit, ok := sizeUnits[strings.ToLower(m[2])]
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

func (l *loader) size(n *yaml.Node, p string) (int64, bool) {
	s, _, ok := l.scalar(n, p)
	if !ok {
		return 0, false
	}
	v, err := parseSize(s)
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

func (l *loader) httpURL(n *yaml.Node, p string) (string, bool) {
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

// updateParams reads node-id -> {param: value}. Values keep their YAML types (string, number,
// bool, list, mapping) so they can be sent as JSON.
func (l *loader) updateParams(n *yaml.Node, p string) map[string]map[string]any {
	out := map[string]map[string]any{}
	l.mapping(n, p, nil, func(node string, _, v *yaml.Node, np string) {
		if v.Kind != yaml.MappingNode {
			l.problem(np, v.Line,
				"expected a mapping of parameter names to values for agent node %q, got %s", node, kindName(v))
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

func (l *loader) anyValue(n *yaml.Node, p string) any {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		l.mapping(n, p, nil, func(key string, _, v *yaml.Node, kp string) { m[key] = l.anyValue(v, kp) })
		for i := 0; i+1 < len(n.Content); i += 2 { // explicit nulls are kept as JSON null
			if k := n.Content[i]; k.Kind == yaml.ScalarNode && isNull(n.Content[i+1]) {
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
	if isNull(n) {
		return nil
	}
	s, _, ok := l.scalar(n, p)
	if !ok {
		return nil
	}
	if s != n.Value { // expanded: a plain scalar gets its type from the substituted text
		if n.Style == 0 {
			return plainValue(s)
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

// plainValue types a substituted plain value like YAML would: bool, int, float, else string.
func plainValue(s string) any {
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
