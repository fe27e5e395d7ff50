package mosaictest

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAuthRejectsBadKeys(t *testing.T) {
	s := newFake(t, Options{})
	for _, tc := range []struct{ name, auth string }{
		{"missing key", ""},
		{"not bearer", "Basic " + DefaultAPIKey},
		{"not mk_", "Bearer sk_test_0123456789abcdef"},
		{"unknown mk_ key", "Bearer mk_unknown_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, m := callKey(t, "GET", s.URL()+"/whoami", tc.auth, nil)
			if st != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", st)
			}
			if m["error"] != "invalid_api_key" || m["detail"] != "Invalid or missing API key" {
				t.Fatalf("body %v", m)
			}
		})
	}
	if _, err := NewServer(Options{APIKeys: []string{"sk_nope"}}); err == nil {
		t.Fatal("NewServer accepted a key without mk_")
	}
}

func TestWhoAmIShapes(t *testing.T) {
	s := newFake(t, Options{BasePath: "/api/v1"})
	if !strings.HasSuffix(s.URL(), "/api/v1") {
		t.Fatalf("URL %s lacks base path", s.URL())
	}
	st, m := call(t, "GET", s.URL()+"/whoami", nil)
	if st != 200 || m["organization_slug"] != "fake-org" || m["organization_id"] == nil {
		t.Fatalf("newest whoami: %d %v", st, m)
	}
	if v, ok := m["scopes"]; !ok || v != nil {
		t.Fatalf("scopes should be present and null: %v", m)
	}
	s.SetLegacyWhoAmI(true)
	st, m = call(t, "GET", s.URL()+"/whoami", nil)
	if st != 200 || m["email"] == nil || m["user_id"] == nil || m["organization_id"] != nil {
		t.Fatalf("legacy whoami: %d %v", st, m)
	}
	// The API is not served outside the base path.
	if st, _ := callRaw(t, "GET", s.RootURL()+"/whoami", "Bearer "+DefaultAPIKey, nil); st != 404 {
		t.Fatalf("whoami outside base path: %d", st)
	}
}

func TestStorageRejectsWrongClients(t *testing.T) {
	clock := newClock()
	s := newFake(t, Options{Now: clock.Now, MaxFileSize: 100})
	for _, tc := range []struct {
		name    string
		build   func(u issued) (method, contentType string, body []byte)
		advance time.Duration
		status  int
		bodyHas string
	}{
		{"PUT upload", func(u issued) (string, string, []byte) {
			return "PUT", "video/mp4", []byte("data")
		}, 0, 405, "MethodNotAllowed"},
		{"not multipart", func(u issued) (string, string, []byte) {
			return "POST", "video/mp4", []byte("data")
		}, 0, 400, "multipart/form-data"},
		{"file part before the fields", func(u issued) (string, string, []byte) {
			ct, b := formBody(t, append([]part{{"file", "data"}}, issuedParts(u.fields)...))
			return "POST", ct, b
		}, 0, 400, "before the policy fields"},
		{"field after the file", func(u issued) (string, string, []byte) {
			ps := issuedParts(u.fields)
			ct, b := formBody(t, append(append(ps[:len(ps)-1:len(ps)-1], part{"file", "data"}), ps[len(ps)-1]))
			return "POST", ct, b
		}, 0, 400, "InvalidPolicyDocument"},
		{"field after the complete form", func(u issued) (string, string, []byte) {
			ct, b := formBody(t, append(issuedParts(u.fields), part{"file", "data"}, part{"success_action_status", "201"}))
			return "POST", ct, b
		}, 0, 400, "must be the last part"},
		{"changed policy field", func(u issued) (string, string, []byte) {
			ps := issuedParts(u.fields)
			for i := range ps {
				if ps[i].name == "policy" {
					ps[i].value += "x"
				}
			}
			ct, b := formBody(t, append(ps, part{"file", "data"}))
			return "POST", ct, b
		}, 0, 400, "does not match"},
		{"missing policy field", func(u issued) (string, string, []byte) {
			var ps []part
			for _, p := range issuedParts(u.fields) {
				if p.name != "x-goog-signature" {
					ps = append(ps, p)
				}
			}
			ct, b := formBody(t, append(ps, part{"file", "data"}))
			return "POST", ct, b
		}, 0, 400, "Missing policy field"},
		{"extra field", func(u issued) (string, string, []byte) {
			ct, b := formBody(t, append(issuedParts(u.fields), part{"Content-Type", "video/mp4"}, part{"file", "data"}))
			return "POST", ct, b
		}, 0, 400, "Unexpected form field"},
		{"oversize file", func(u issued) (string, string, []byte) {
			ct, b := formBody(t, append(issuedParts(u.fields), part{"file", strings.Repeat("x", 101)}))
			return "POST", ct, b
		}, 0, 400, "EntityTooLarge"},
		{"expired policy", func(u issued) (string, string, []byte) {
			ct, b := formBody(t, append(issuedParts(u.fields), part{"file", "data"}))
			return "POST", ct, b
		}, time.Hour + time.Second, 403, "ExpiredToken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := getUploadURL(t, s)
			clock.Advance(tc.advance)
			method, ct, body := tc.build(u)
			req, _ := http.NewRequest(method, u.url, strings.NewReader(string(body)))
			req.Header.Set("Content-Type", ct)
			resp, err := testHTTP.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var sb strings.Builder
			_, _ = copyBody(&sb, resp)
			if resp.StatusCode != tc.status || !strings.Contains(sb.String(), tc.bodyHas) || !strings.Contains(sb.String(), "<Error><Code>") {
				t.Fatalf("got %d %q, want %d containing %q", resp.StatusCode, sb.String(), tc.status, tc.bodyHas)
			}
			// The upload stays not uploaded.
			st, m := call(t, "POST", s.URL()+"/uploads/video/finalize_upload", map[string]string{"video_id": u.videoID})
			if tc.advance == 0 && (st != 400 || m["detail"] != "File not uploaded") {
				t.Fatalf("finalize after rejected upload: %d %v", st, m)
			}
		})
	}
	st := s.Stats()
	if st.StoragePosts != 0 || st.StorageRejected != 10 {
		t.Fatalf("stats: posts %d rejected %d", st.StoragePosts, st.StorageRejected)
	}
}

func TestStorageIgnoresMosaicAuth(t *testing.T) {
	s := newFake(t, Options{})
	u := getUploadURL(t, s)
	ct, body := formBody(t, append(issuedParts(u.fields), part{"file", "abc"}))
	req, _ := http.NewRequest("POST", u.url, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+DefaultAPIKey)
	resp, err := testHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if strings.HasPrefix(u.url, s.URL()+"/") && s.URL() != s.RootURL() {
		t.Fatal("storage lives under the API base path")
	}
}

func TestFinalizeRules(t *testing.T) {
	clock := newClock()
	s := newFake(t, Options{Now: clock.Now})
	fin := s.URL() + "/uploads/video/finalize_upload"

	u := getUploadURL(t, s)
	if st, m := call(t, "POST", fin, map[string]string{"video_id": u.videoID}); st != 400 {
		t.Fatalf("before upload: %d %v", st, m)
	} else {
		wantErrBody(t, m, "validation_error", "File not uploaded")
	}
	if st, m := call(t, "POST", fin, map[string]string{"video_id": newUUID()}); st != 404 {
		t.Fatalf("unknown id: %d %v", st, m)
	}
	if st, _ := call(t, "POST", fin, []byte(`{}`)); st != 400 {
		t.Fatalf("missing video_id: %d", st)
	}
	ct, body := formBody(t, append(issuedParts(u.fields), part{"file", "hello"}))
	if st, b := postForm(t, u.url, ct, body); st != 204 || b != "" {
		t.Fatalf("upload: %d %q", st, b)
	}
	for i := range 2 { // idempotent
		st, m := call(t, "POST", fin, map[string]string{"video_id": u.videoID})
		if st != 200 || m["video_id"] != u.videoID {
			t.Fatalf("finalize #%d: %d %v", i, st, m)
		}
	}
	// An upload URL that expired without an upload is gone.
	stale := getUploadURL(t, s)
	clock.Advance(2 * time.Hour)
	if st, _ := call(t, "POST", fin, map[string]string{"video_id": stale.videoID}); st != 404 {
		t.Fatalf("expired id: %d", st)
	}
	if st := s.Stats(); st.Finalizes != 2 || st.StoragePosts != 1 || st.BytesUploaded != 5 || st.UploadURLsIssued != 2 {
		t.Fatalf("stats %+v", st)
	}
}
