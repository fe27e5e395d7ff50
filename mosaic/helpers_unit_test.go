package mosaic_test

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
)

func TestParseErrorBody(t *testing.T) {
	cases := []struct {
		name, body, ctype, code, detail string
	}{
		{"error and detail", `{"error":"not_found","detail":"Agent not found"}`, "application/json", "not_found", "Agent not found"},
		{"detail only", `{"detail":"Run is not failed or cancelled"}`, "application/json", "", "Run is not failed or cancelled"},
		{"fastapi array", `{"detail":[{"loc":["body","video_ids",0],"msg":"not a uuid","type":"x"},{"loc":["query","limit"],"msg":"too big"}]}`,
			"application/json", "", "video_ids.0: not a uuid; query.limit: too big"},
		{"unknown fields", `{"detail":"x","error":"e","extra":{"a":1}}`, "", "e", "x"},
		{"message", `{"message":"boom"}`, "", "", "boom"},
		{"html", "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>", "text/html", "", "502 Bad Gateway"},
		{"html no title", "<html><body><p>Service   down\n now</p></body></html>", "text/html", "", "Service down now"},
		{"gcs xml", "<?xml version='1.0'?><Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message></Error>", "application/xml", "ExpiredToken", "The provided token has expired."},
		{"plain text", "upstream connect error", "text/plain", "", "upstream connect error"},
		{"empty", "  ", "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, detail := mosaic.ParseErrorBody([]byte(tc.body), tc.ctype)
			if code != tc.code || detail != tc.detail {
				t.Errorf("got (%q, %q), want (%q, %q)", code, detail, tc.code, tc.detail)
			}
		})
	}
	long := strings.Repeat("x", 5000)
	if _, d := mosaic.ParseErrorBody([]byte(long), "text/plain"); len(d) > 400 {
		t.Errorf("excerpt not cut: %d bytes", len(d))
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := map[string]time.Duration{
		"":        0,
		"7":       7 * time.Second,
		"0":       0,
		"-3":      0,
		"garbage": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0,
	}
	for in, want := range cases {
		if got := mosaic.ParseRetryAfter(in, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	cases := []struct {
		in                string
		start, end, total int64
		ok                bool
	}{
		{"bytes 100-199/200", 100, 199, 200, true},
		{"bytes 0-0/*", 0, 0, -1, true},
		{"bytes */500", -1, -1, 500, true},
		{"bytes 5-1/10", 0, 0, 0, false},
		{"items 1-2/3", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	}
	for _, tc := range cases {
		s, e, tot, ok := mosaic.ParseContentRange(tc.in)
		if ok != tc.ok || (ok && (s != tc.start || e != tc.end || tot != tc.total)) {
			t.Errorf("%q: got %d %d %d %v", tc.in, s, e, tot, ok)
		}
	}
}

func TestRedaction(t *testing.T) {
	key := "mk_live_supersecret"
	in := `Post "https://storage.example/bucket/o?X-Goog-Signature=abc&expires=1&sig=dead": key mk_live_supersecret, also mk_other_key and sig=beef token=t1 <StringToSign>GOOG4 x</StringToSign>`
	out := mosaic.RedactTextWithKey(key, in)
	for _, bad := range []string{"abc", "dead", "beef", "supersecret", "mk_other_key", "t1", "GOOG4"} {
		if strings.Contains(out, bad) {
			t.Errorf("redacted text still has %q: %s", bad, out)
		}
	}
	if !strings.Contains(out, "https://storage.example/bucket/o") {
		t.Errorf("path lost: %s", out)
	}
	if got := mosaic.RedactURL("https://user:pw@h.example/a/b?sig=1#frag"); got != "https://h.example/a/b" {
		t.Errorf("RedactURL = %q", got)
	}
	if got := mosaic.RedactURL("::not a url?sig=1"); strings.Contains(got, "sig") {
		t.Errorf("RedactURL(bad) = %q", got)
	}
}

func TestContentTypeFor(t *testing.T) {
	want := map[string]string{"a.mp4": "video/mp4", "B.MOV": "video/quicktime", "c.avi": "video/x-msvideo",
		"d.webm": "video/webm", "e.mkv": "video/x-matroska", "f.m4v": "video/x-m4v", "g.txt": "application/octet-stream", "noext": "application/octet-stream"}
	for name, ct := range want {
		if got := mosaic.ContentTypeFor(name); got != ct {
			t.Errorf("ContentTypeFor(%q) = %q, want %q", name, got, ct)
		}
	}
}

// The precomputed frame must equal what mime/multipart produces, and its length formula must be
// exact, for any field set and file name (quotes included).
func TestMultipartFrameLength(t *testing.T) {
	fields := []mosaic.FormField{{"key", "uploads/x"}, {"policy", "eyJ9"}, {"x-goog-signature", "ab\"c"}, {"empty", ""}}
	for _, size := range []int64{0, 1, 4096, 1 << 20} {
		prefix, trailer, formType, err := mosaic.MultipartFrame(fields, `my "clip".mp4`, "video/mp4")
		if err != nil {
			t.Fatal(err)
		}
		file := bytes.Repeat([]byte{7}, int(size))
		body := append(append(append([]byte{}, prefix...), file...), trailer...)
		if got := mosaic.MultipartLength(prefix, trailer, size); got != int64(len(body)) {
			t.Fatalf("size %d: length %d, body %d", size, got, len(body))
		}
		_, params, err := mime.ParseMediaType(formType)
		if err != nil {
			t.Fatal(err)
		}
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		var names []string
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(p)
			names = append(names, p.FormName())
			if p.FormName() == "file" {
				if p.FileName() != `my "clip".mp4` || p.Header.Get("Content-Type") != "video/mp4" || int64(len(data)) != size {
					t.Errorf("file part: name %q type %q len %d", p.FileName(), p.Header.Get("Content-Type"), len(data))
				}
			}
		}
		if strings.Join(names, ",") != "key,policy,x-goog-signature,empty,file" {
			t.Errorf("part order %v", names)
		}
	}
}

func TestOrderedFields(t *testing.T) {
	fields, err := mosaic.OrderedFieldsJSON([]byte(`{"z":"1","a":"2","m":3,"n":null,"key":"k"}`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fields {
		got = append(got, f.Name+"="+f.Value)
	}
	if strings.Join(got, "&") != "z=1&a=2&m=3&n=&key=k" {
		t.Errorf("fields %v", got)
	}
	if _, err := mosaic.OrderedFieldsJSON([]byte(`[1]`)); err == nil {
		t.Error("array accepted as fields")
	}
}

func TestNewValidates(t *testing.T) {
	for _, bad := range []string{"ftp://x", "http://", "http://h/p?q=1", "::"} {
		if _, err := mosaic.New(mosaic.Options{BaseURL: bad}); err == nil {
			t.Errorf("New accepted base URL %q", bad)
		}
	}
	_, err := mosaic.New(mosaic.Options{APIKey: "mk_abc\r\nX-Evil: 1"})
	if err == nil || strings.Contains(err.Error(), "mk_abc") {
		t.Errorf("bad key: err %v", err)
	}
	if _, err := mosaic.New(mosaic.Options{}); err != nil {
		t.Errorf("defaults rejected: %v", err)
	}
}

func TestIdentityString(t *testing.T) {
	cases := map[string]mosaic.Identity{
		"organization Acme (acme)": {OrganizationName: "Acme", OrganizationSlug: "acme"},
		"user a@b.c":               {UserID: "u1", Email: "a@b.c"},
		"user u1":                  {UserID: "u1"},
		"unknown identity":         {},
	}
	for want, id := range cases {
		if got := id.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

func TestTerminal(t *testing.T) {
	for status, want := range map[string]bool{"running": false, "completed": true, "partial_complete": true,
		"failed": true, "cancelled": true, "queued": false, "": false} {
		r := &mosaic.Run{Status: status}
		if r.Terminal() != want {
			t.Errorf("Terminal(%q) = %v", status, !want)
		}
	}
}
