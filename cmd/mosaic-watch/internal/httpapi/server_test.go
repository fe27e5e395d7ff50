package httpapi

import "testing"

// TestHTTPServerLimits: timeouts are set, and oversized bodies are refused.
func TestHTTPServerLimits(t *testing.T) {
	hs := New(Options{Listen: "127.0.0.1:0"})
	if err := hs.Listen(); err != nil {
		t.Fatal(err)
	}
	defer hs.ln.Close()
	s := hs.srv
	if s.ReadHeaderTimeout == 0 || s.ReadTimeout == 0 || s.WriteTimeout == 0 || s.IdleTimeout == 0 ||
		s.MaxHeaderBytes == 0 {
		t.Errorf("server limits not set: %+v", s)
	}
	// A taken port is a start-up error.
	if err := New(Options{Listen: hs.ln.Addr().String()}).Listen(); err == nil {
		t.Error("listening on a taken port succeeded")
	}
}
