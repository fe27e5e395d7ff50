package mosaic

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
)

// flexTime decodes the timestamps Mosaic sends (RFC 3339 with or without zone or fraction, or
// null). An unparseable value becomes the zero time instead of failing the whole answer.
type flexTime struct{ time.Time }

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

func (t *flexTime) UnmarshalJSON(b []byte) error {
	t.Time = time.Time{}
	var s string
	if json.Unmarshal(b, &s) != nil {
		var secs float64 // unix seconds, should a number ever appear
		if json.Unmarshal(b, &secs) == nil && secs > 0 {
			t.Time = time.Unix(0, int64(secs*1e9)).UTC()
		}
		return nil
	}
	s = strings.TrimSpace(s)
	for _, layout := range timeLayouts {
		if v, err := time.Parse(layout, s); err == nil {
			t.Time = v // layouts without a zone parse as UTC
			return nil
		}
	}
	return nil
}

// flexStrings decodes a string array, a single string, or null.
type flexStrings []string

func (f *flexStrings) UnmarshalJSON(b []byte) error {
	*f = nil
	var list []any
	if json.Unmarshal(b, &list) == nil {
		for _, v := range list {
			if s := anyString(v); s != "" {
				*f = append(*f, s)
			}
		}
		return nil
	}
	var s string
	if json.Unmarshal(b, &s) == nil && s != "" {
		*f = flexStrings{s}
	}
	return nil
}

// flexString decodes a string, a number, or null into a string.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	var v any
	if json.Unmarshal(b, &v) != nil {
		*f = ""
		return nil
	}
	*f = flexString(anyString(v))
	return nil
}

func anyString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case map[string]any:
		for _, k := range []string{"message", "msg", "detail", "error"} {
			if s, ok := x[k].(string); ok {
				return s
			}
		}
	}
	return ""
}

// orderedFields decodes a JSON object into name/value pairs in the order the object lists them,
// which a map would lose. String values are used verbatim; other scalars as their JSON text.
func orderedFields(raw json.RawMessage) ([]FormField, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("fields is not a JSON object")
	}
	var fields []FormField
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := kt.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		var value string
		if err := json.Unmarshal(v, &value); err != nil {
			if string(v) == "null" {
				value = ""
			} else {
				value = string(v)
			}
		}
		fields = append(fields, FormField{Name: name, Value: value})
	}
	if _, err := dec.Token(); err != nil { // closing '}'
		return nil, err
	}
	return fields, nil
}
