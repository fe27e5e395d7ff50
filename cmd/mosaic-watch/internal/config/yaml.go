package config

// Reading the file into a yaml.Node tree and walking mappings, with every problem placed at its
// key path and line.

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

var yamlLineRe = regexp.MustCompile(`line (\d+):\s*`)

// parse turns the file into the root mapping node; an empty file yields nil (all defaults).
func (l *loader) parse(data []byte) (*yaml.Node, bool) {
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
		l.problem("", extra.Line, "a second YAML document (after ---) is not supported; "+
			"put all settings in one document")
	case !errors.Is(err, io.EOF):
		l.syntaxProblem(data, err)
	}
	if len(doc.Content) == 0 {
		return nil, true
	}
	if line, over := aliasesExpandTooFar(doc.Content[0], maxExpandedNodes); over {
		l.problem("", line, "YAML aliases (*name) here expand to more than %d values; a "+
			"configuration needs far fewer, so this is refused: write the values out or use fewer "+
			"aliases", maxExpandedNodes)
		return nil, false
	}
	return doc.Content[0], true
}

// maxExpandedNodes bounds what a configuration may expand to once its YAML aliases are
// followed. A real configuration has a few hundred values; a 600-byte "billion laughs" expands
// to billions, and decoding it took gigabytes.
const maxExpandedNodes = 100_000

// aliasesExpandTooFar counts the nodes of n with every alias followed, stopping as soon as the
// count passes budget, so the check itself is bounded. It returns the line of the first alias
// met when the budget is exceeded.
func aliasesExpandTooFar(n *yaml.Node, budget int) (line int, over bool) {
	count, first := 0, 0
	var walk func(n *yaml.Node) bool
	walk = func(n *yaml.Node) bool {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			if first == 0 {
				first = n.Line
			}
			n = n.Alias
		}
		if count++; count > budget {
			return false
		}
		for _, c := range n.Content {
			if !walk(c) {
				return false
			}
		}
		return true
	}
	if walk(n) {
		return 0, false
	}
	return first, true
}

func (l *loader) syntaxProblem(data []byte, err error) {
	msg, line := splitYAMLError(err)
	if parserErrors[msg] {
		line = parserErrorLine(data, msg, line)
	}
	if strings.Contains(msg, "found character that cannot start any token") ||
		strings.Contains(msg, "found a tab") {
		msg += " (YAML indentation must use spaces, not tabs)"
	}
	l.problem("", line, "YAML syntax error: %s", msg)
}

// splitYAMLError splits "yaml: line 3: message" into the message and the line (0 if none).
func splitYAMLError(err error) (string, int) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRe.FindStringSubmatchIndex(msg); m != nil {
		line, _ = strconv.Atoi(msg[m[2]:m[3]])
		msg = msg[:m[0]] + msg[m[1]:]
	}
	return msg, line
}

// parserErrors are the yaml parser's (not scanner's) messages. For those, yaml v3 reports the
// 0-based line of the enclosing block's start, which can be far above the mistake.
var parserErrors = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found undefined tag handle":             true,
}

// parserErrorLine finds the first line at which a prefix of the file fails with the same
// message: that is where the mistake is. Falls back to the (corrected) reported line.
func parserErrorLine(data []byte, msg string, reported int) int {
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
		if m, _ := splitYAMLError(err); m == msg {
			return k
		}
	}
	return start
}

func joinKey(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

func kindName(n *yaml.Node) string {
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
func (l *loader) mapping(n *yaml.Node, p string, known []string,
	each func(key string, k, v *yaml.Node, kp string)) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		l.problem(p, n.Line, "expected a mapping (key: value lines), got %s", kindName(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			l.problem(p, k.Line, "keys must be plain names, got %s", kindName(k))
			continue
		}
		key := k.Value
		kp := joinKey(p, key)
		if key == "<<" {
			l.problem(kp, k.Line,
				"YAML merge keys (<<) are not supported; use defaults: for shared folder settings")
			continue
		}
		if first, dup := seen[key]; dup {
			l.problem(kp, k.Line, "duplicate key (first set on line %d)", first)
			continue
		}
		seen[key] = k.Line
		if known != nil && !slices.Contains(known, key) {
			l.problem(kp, k.Line, "%s", unknownKeyMsg(key, known))
			continue
		}
		if isNull(v) {
			continue
		}
		each(key, k, deref(v), kp)
	}
}
