package mosaic

import (
	"net/url"
	"regexp"
	"strings"
)

// RedactURL returns scheme://host/path of u: query string, fragment and user info removed, because a
// signed URL's query is a bearer credential. Unparseable input is reduced to the part before '?'.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" && p.Scheme == "" {
		cut := u
		if i := strings.IndexAny(cut, "?#"); i >= 0 {
			cut = cut[:i]
		}
		if i := strings.Index(cut, "@"); i >= 0 && strings.Contains(cut[:i], "://") {
			cut = cut[:strings.Index(cut, "://")+3] + cut[i+1:]
		}
		return cut
	}
	p.RawQuery = ""
	p.ForceQuery = false
	p.Fragment = ""
	p.RawFragment = ""
	p.User = nil
	return p.String()
}

var (
	// Any URL inside free text (error bodies, transport messages): its query gets dropped.
	urlInText = regexp.MustCompile(`(?i)\bhttps?://[^\s"'<>]+`)
	// Credential-looking parameters that may appear outside a full URL (GCS XML echoes them).
	secretParam = regexp.MustCompile(`(?i)\b(x-goog-signature|x-goog-credential|x-amz-signature|x-amz-credential|signature|sig|token|policy|key|api_key|apikey)=[^&\s"'<>]+`)
	// Mosaic API keys.
	apiKeyLike = regexp.MustCompile(`\bmk_[A-Za-z0-9_\-]+`)
	// GCS error XML elements that repeat the signed request.
	signedEcho = regexp.MustCompile(`(?is)<(StringToSign|CanonicalRequest|Details)>.*?</(StringToSign|CanonicalRequest|Details)>`)
)

// redactor scrubs secrets from any text that may end up in an error or a log line.
type redactor struct{ keys []string }

func newRedactor(key string) *redactor { return (*redactor)(nil).with(key) }

// with returns a redactor that also scrubs key (r may be nil).
func (r *redactor) with(key string) *redactor {
	out := &redactor{}
	if r != nil {
		out.keys = append(out.keys, r.keys...)
	}
	if key != "" {
		out.keys = append(out.keys, key)
	}
	return out
}

func (r *redactor) text(s string) string {
	if s == "" {
		return s
	}
	if r != nil {
		for _, k := range r.keys {
			s = strings.ReplaceAll(s, k, "[REDACTED]")
		}
	}
	s = signedEcho.ReplaceAllString(s, "<$1>[REDACTED]</$2>")
	s = urlInText.ReplaceAllStringFunc(s, RedactURL)
	s = secretParam.ReplaceAllString(s, "$1=[REDACTED]")
	s = apiKeyLike.ReplaceAllString(s, "mk_[REDACTED]")
	return s
}

// RedactText scrubs free text that came from Mosaic or storage (a run's status_message or error
// messages) before it is stored, logged or shown: URL queries, credential parameters and keys.
func RedactText(s string) string { return (*redactor)(nil).text(s) }
