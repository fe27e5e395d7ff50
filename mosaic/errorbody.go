package mosaic

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

const maxDetailLen = 300 // characters of a non-JSON error body kept in Detail

// newAPIError builds the typed error for a non-success answer; body is at most a few KB of it.
func (c *Client) newAPIError(op string, req *http.Request, resp *http.Response, body []byte, storage bool) *APIError {
	e := &APIError{
		Op:         op,
		Method:     req.Method,
		URL:        RedactURL(req.URL.String()),
		StatusCode: resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		storage:    storage,
	}
	e.Code, e.Detail = parseErrorBody(body, resp.Header.Get("Content-Type"))
	if storage {
		e.expired = storageExpired(resp.StatusCode, body, req.Method)
	}
	e.Code = c.redact.Load().text(e.Code)
	e.Detail = c.redact.Load().text(e.Detail)
	if e.Detail == "" && e.Code == "" {
		e.Detail = http.StatusText(resp.StatusCode)
	}
	return e
}

// parseErrorBody understands {"error","detail"}, {"detail":"..."}, FastAPI {"detail":[{"loc","msg"}]},
// {"message"}, storage XML (<Code>, <Message>) and falls back to a short excerpt of text or HTML.
func parseErrorBody(body []byte, contentType string) (code, detail string) {
	trimmed := strings.TrimSpace(string(body))
	if trimmed == "" {
		return "", ""
	}
	if strings.HasPrefix(trimmed, "{") {
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(trimmed), &m) == nil {
			code = jsonString(m["error"])
			if code == "" {
				code = jsonString(m["code"])
			}
			detail = detailText(m["detail"])
			if detail == "" {
				detail = jsonString(m["message"])
			}
			if detail == "" && code == "" {
				// {"error": {"code":..., "message":...}} and other shapes: keep an excerpt.
				detail = excerpt(trimmed)
			}
			return code, detail
		}
	}
	if strings.HasPrefix(trimmed, "<") && !looksHTML(trimmed, contentType) {
		xmlCode := xmlElement(trimmed, "Code")
		xmlMsg := xmlElement(trimmed, "Message")
		if xmlCode != "" || xmlMsg != "" {
			return xmlCode, excerpt(xmlMsg)
		}
	}
	if looksHTML(trimmed, contentType) {
		if t := xmlElement(trimmed, "title"); t != "" {
			return "", excerpt(t)
		}
		return "", excerpt(stripTags(trimmed))
	}
	return "", excerpt(trimmed)
}

// detailText reads "detail" as a string, or a FastAPI validation array joined with "; ".
func detailText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if s := jsonString(raw); s != "" {
		return s
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) == nil {
		var msgs []string
		for _, it := range items {
			var v struct {
				Loc []any  `json:"loc"`
				Msg string `json:"msg"`
			}
			if json.Unmarshal(it, &v) == nil && v.Msg != "" {
				if loc := joinLoc(v.Loc); loc != "" {
					msgs = append(msgs, loc+": "+v.Msg)
				} else {
					msgs = append(msgs, v.Msg)
				}
				continue
			}
			if s := jsonString(it); s != "" {
				msgs = append(msgs, s)
			}
		}
		return strings.Join(msgs, "; ")
	}
	return excerpt(string(raw))
}

func joinLoc(loc []any) string {
	var parts []string
	for _, p := range loc {
		switch v := p.(type) {
		case string:
			if v == "body" && len(parts) == 0 && len(loc) > 1 {
				continue // "body" prefix adds nothing for the reader
			}
			parts = append(parts, v)
		case float64:
			parts = append(parts, strconv.FormatFloat(v, 'f', -1, 64))
		}
	}
	return strings.Join(parts, ".")
}

func jsonString(raw json.RawMessage) string {
	var s string
	if len(raw) > 0 && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return ""
}

func looksHTML(s, contentType string) bool {
	if strings.Contains(strings.ToLower(contentType), "html") {
		return true
	}
	l := strings.ToLower(s[:min(len(s), 256)])
	return strings.HasPrefix(l, "<!doctype html") || strings.HasPrefix(l, "<html") || strings.Contains(l, "<body")
}

func xmlElement(s, name string) string {
	re := regexp.MustCompile(`(?is)<` + name + `(?:\s[^>]*)?>(.*?)</` + name + `>`)
	m := re.FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return strings.TrimSpace(stripTags(m[1]))
}

var tagRE = regexp.MustCompile(`(?s)<[^>]*>`)
var spaceRE = regexp.MustCompile(`\s+`)

func stripTags(s string) string {
	s = regexp.MustCompile(`(?is)<(script|style)[^>]*>.*?</(script|style)>`).ReplaceAllString(s, " ")
	return strings.TrimSpace(spaceRE.ReplaceAllString(tagRE.ReplaceAllString(s, " "), " "))
}

// excerpt collapses whitespace and cuts s to maxDetailLen runes.
func excerpt(s string) string {
	s = strings.TrimSpace(spaceRE.ReplaceAllString(s, " "))
	if utf8.RuneCountInString(s) <= maxDetailLen {
		return s
	}
	r := []rune(s)
	return string(r[:maxDetailLen]) + "…"
}

// storageExpired decides whether a signed URL was refused because it expired. GCS answers an expired
// signed URL with 400 or 403 and an ExpiredToken / "expired" body; a download URL refused with 403/400
// has no other remedy than fetching a fresh URL, so that counts as expired too.
func storageExpired(status int, body []byte, method string) bool {
	mentions := strings.Contains(strings.ToLower(string(body)), "expired")
	switch {
	case status == http.StatusForbidden:
		return true
	case status == http.StatusBadRequest && method == http.MethodGet:
		return true
	case status == http.StatusBadRequest:
		return mentions
	}
	return false
}

// parseRetryAfter accepts delta-seconds or an HTTP date; 0 when absent or unparseable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
