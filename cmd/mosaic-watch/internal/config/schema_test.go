package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// schemaNode is a JSON Schema object as decoded from config.schema.json.
type schemaNode = map[string]any

func loadSchema(t *testing.T) schemaNode {
	t.Helper()
	var s schemaNode
	if err := json.Unmarshal(JSONSchema(), &s); err != nil {
		t.Fatalf("config.schema.json: %v", err)
	}
	return s
}

// at follows a path of object keys through the schema.
func at(t *testing.T, n schemaNode, path ...string) schemaNode {
	t.Helper()
	for _, k := range path {
		next, ok := n[k].(schemaNode)
		if !ok {
			t.Fatalf("schema has no object at %q (in %v)", k, path)
		}
		n = next
	}
	return n
}

func propertyNames(t *testing.T, n schemaNode) []string {
	t.Helper()
	props, _ := n["properties"].(schemaNode)
	names := make([]string, 0, len(props))
	for k := range props {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// TestSchemaMatchesTheLoaderKeys fails when a key is added to the loader's lists in schema.go
// without the schema, or to the schema without the loader.
func TestSchemaMatchesTheLoaderKeys(t *testing.T) {
	s := loadSchema(t)
	sections := []struct {
		where  string
		node   schemaNode
		loader []string
	}{
		{"the top level", s, topKeys},
		{"mosaic", at(t, s, "properties", "mosaic"), mosaicKeys},
		{"log", at(t, s, "properties", "log"), logKeys},
		{"limits", at(t, s, "properties", "limits"), limitsKeys},
		{"retry", at(t, s, "properties", "retry"), retryKeys},
		{"http", at(t, s, "properties", "http"), httpKeys},
		{"webhook", at(t, s, "properties", "webhook"), webhookKeys},
		{"database", at(t, s, "properties", "database"), databaseKeys},
		{"defaults and folders", at(t, s, "$defs", "folderSettings"), folderSettingKeys},
		{"a folder's limits", at(t, s, "$defs", "folderSettings", "properties", "limits"),
			folderLimitsKeys},
		{"a folder entry", at(t, s, "$defs", "folder"), folderOnlyKeys},
	}
	for _, sec := range sections {
		inSchema := propertyNames(t, sec.node)
		loader := slices.Sorted(slices.Values(sec.loader))
		for _, k := range loader {
			if !slices.Contains(inSchema, k) {
				t.Errorf("%s: the loader accepts %q, config.schema.json does not describe it", sec.where, k)
			}
		}
		for _, k := range inSchema {
			if !slices.Contains(loader, k) {
				t.Errorf("%s: config.schema.json describes %q, the loader does not accept it", sec.where, k)
			}
		}
		for _, k := range inSchema {
			p := at(t, sec.node, "properties", k)
			if d, _ := p["description"].(string); len(d) < 10 {
				t.Errorf("%s.%s: no description", sec.where, k)
			}
			_, hasType := p["type"]
			_, hasRef := p["$ref"]
			_, hasAny := p["anyOf"]
			_, hasEnum := p["enum"]
			if !hasType && !hasRef && !hasAny && !hasEnum {
				t.Errorf("%s.%s: no type", sec.where, k)
			}
		}
	}
}

// noDefault are keys without a default value (required, optional or derived from another key).
var noDefault = []string{"allowed_hosts", "mosaic", "api_key", "api_key_file", "state_dir", "log", "limits", "retry",
	"defaults", "folders", "http", "listen", "token", "webhook", "secret", "public_url", "name",
	"database", "url", "password_file",
	"input",
	"output", "agent_id", "after_success_move_to", "after_failure_move_to"}

// TestSchemaDefaultsAreTheLoaders checks every default the schema states against the value the
// loader applies when the key is left out.
func TestSchemaDefaultsAreTheLoaders(t *testing.T) {
	s := loadSchema(t)
	dir := testDir(t)
	cfg := loadOK(t, dir, minimal, defaultTestEnv)
	f := cfg.Folders[0]
	loaded := map[string]any{
		"mosaic.base_url": cfg.BaseURL, "mosaic.poll_interval": cfg.PollInterval,
		"mosaic.reconcile_after": cfg.ReconcileAfter, "mosaic.upload_api": string(cfg.UploadAPI),
		"mosaic.max_retry_after": cfg.MaxRetryAfter, "folder.on_source_change": f.OnSourceChange,
		"log.level": strings.ToLower(cfg.LogLevel.String()), "log.format": cfg.LogFormat,
		"limits.uploads": cfg.Limits.Uploads, "limits.active_runs": cfg.Limits.ActiveRuns,
		"limits.downloads": cfg.Limits.Downloads, "limits.max_runs_per_day": cfg.Limits.MaxRunsPerDay,
		"limits.backlog_confirm_over": cfg.Limits.BacklogConfirmOver,
		"database.lease":              cfg.Database.Lease,
		"shutdown_timeout":            cfg.ShutdownTimeout, "scan_interval": cfg.ScanInterval,
		"retry.base": cfg.Retry.Base, "retry.max": cfg.Retry.Max, "retry.attempts": cfg.Retry.Attempts,
		"folder.recursive": f.Recursive, "folder.settle": f.Settle,
		"folder.incomplete_after": f.IncompleteAfter,
		"folder.mode":             string(f.Mode), "folder.poll_interval": f.PollInterval,
		"folder.after_success": string(f.AfterSuccess), "folder.after_failure": string(f.AfterFailure),
		"folder.existing_files": string(f.ExistingFiles), "folder.limits.max_file_size": f.MaxFileSize,
		"folder.limits.max_runs_per_day": f.MaxRunsPerDay,
		"folder.include": `["**/*.mp4","**/*.mov","**/*.m4v","**/*.mkv",` +
			`"**/*.webm","**/*.avi"]`,
		"folder.exclude": `[]`, "folder.update_params": `{}`, "folder.ignore_nodes": `[]`,
	}
	checked := 0
	var walk func(prefix string, n schemaNode)
	walk = func(prefix string, n schemaNode) {
		props, _ := n["properties"].(schemaNode)
		for k, v := range props {
			p := v.(schemaNode)
			key := prefix + k
			def, has := p["default"]
			if !has {
				if !slices.Contains(noDefault, k) {
					t.Errorf("%s: no default in the schema", key)
				}
				walk(key+".", p)
				continue
			}
			want, ok := loaded[key]
			if !ok {
				t.Errorf("%s: the schema states a default this test does not check", key)
				continue
			}
			checked++
			if !sameDefault(def, want) {
				t.Errorf("%s: schema default %v, the loader applies %v", key, def, want)
			}
		}
	}
	walk("", s)
	walk("folder.", at(t, s, "$defs", "folderSettings"))
	walk("folder.", at(t, s, "$defs", "folder"))
	if checked < len(loaded) {
		t.Errorf("checked %d defaults, want %d", checked, len(loaded))
	}
}

func sameDefault(schema, loader any) bool {
	switch w := loader.(type) {
	case time.Duration:
		d, err := time.ParseDuration(fmt.Sprint(schema))
		return err == nil && d == w
	case int64: // a size
		n, err := parseSize(fmt.Sprint(schema))
		return err == nil && n == w
	case int:
		f, ok := schema.(float64)
		return ok && int(f) == w
	case string:
		if strings.HasPrefix(w, "[") || strings.HasPrefix(w, "{") { // a list or mapping, as JSON
			b, _ := json.Marshal(schema)
			return string(b) == w
		}
		return schema == w
	case bool:
		return schema == w
	}
	return false
}

// compileSchema compiles config.schema.json with a real JSON Schema validator.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JSONSchema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("config.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("config.schema.json")
	if err != nil {
		t.Fatalf("compile config.schema.json: %v", err)
	}
	return sch
}

// yamlInstance turns YAML into the JSON value the validator checks.
func yamlInstance(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

func TestSchemaValidatesTheExample(t *testing.T) {
	sch := compileSchema(t)
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	if want := "# yaml-language-server: $schema=" + SchemaPath; first != want {
		t.Errorf("config.example.yaml starts with %q, want %q", first, want)
	}
	repoSchema := filepath.Join("..", "..", "..", "..", filepath.FromSlash(SchemaPath))
	if _, err := os.Stat(repoSchema); err != nil {
		t.Errorf("the example's $schema path does not exist: %v", err)
	}
	if err := sch.Validate(yamlInstance(t, data)); err != nil {
		t.Fatalf("config.example.yaml does not validate against config.schema.json:\n%v", err)
	}
	// The validator is real: mistakes are caught.
	good := strings.ReplaceAll(minimal, "{{DIR}}", "/srv")
	for name, bad := range map[string]string{
		"unknown top key":      good + "pol_interval: 10s\n",
		"unknown folder key":   good + "    setle: 10s\n",
		"wrong enum":           good + "    existing_files: ask\n",
		"bad duration":         good + "    settle: soon\n",
		"negative limit":       good + "limits:\n  max_runs_per_day: -1\n",
		"folder without input": "mosaic:\n  api_key: x\nfolders:\n  - output: o\n    agent_id: a\n",
		"unknown limits key":   good + "    limits:\n      max_size: 5GiB\n",
	} {
		if err := sch.Validate(yamlInstance(t, []byte(bad))); err == nil {
			t.Errorf("%s: validated, want an error", name)
		}
	}
	for name, ok := range map[string]string{
		"env in a duration": good + "    settle: ${SETTLE}\n",
		"size with a unit":  good + "    limits:\n      max_file_size: 1.5 GB\n",
		"api key file": strings.Replace(good, "api_key: ${MOSAIC_API_KEY}",
			"api_key_file: key.txt", 1),
	} {
		if err := sch.Validate(yamlInstance(t, []byte(ok))); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
