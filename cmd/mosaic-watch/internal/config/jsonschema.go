package config

import _ "embed" // the JSON Schema ships inside the binary

// schemaJSON describes every key the loader accepts (see schema.go); schema_test.go keeps the
// two in sync both ways.
//
//go:embed config.schema.json
var schemaJSON []byte

// SchemaPath is where the schema lives in the repository, relative to its root: the path
// config.example.yaml's yaml-language-server comment names.
const SchemaPath = "cmd/mosaic-watch/internal/config/config.schema.json"

// JSONSchema returns the configuration's JSON Schema (draft 2020-12), for editors.
func JSONSchema() []byte { return append([]byte(nil), schemaJSON...) }
