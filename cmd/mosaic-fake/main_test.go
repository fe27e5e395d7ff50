package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

// syncBuffer is a goroutine-safe output sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunServesAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		args := []string{"-addr", "127.0.0.1:0", "-base-path", "/api", "-legacy-whoami",
			"-run-duration", "1ms"}
		done <- run(ctx, args, &out, &errOut)
	}()
	re := regexp.MustCompile(`base URL: (\S+)`)
	deadline := time.Now().Add(10 * time.Second)
	for !re.MatchString(out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no URL printed: %q %q", out.String(), errOut.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	base := re.FindStringSubmatch(out.String())[1]
	if !strings.HasSuffix(base, "/api") || !strings.Contains(out.String(), mosaictest.DefaultAPIKey) {
		t.Fatalf("banner: %s", out.String())
	}
	for _, a := range standardAgents {
		if !strings.Contains(out.String(), a.spec.ID) {
			t.Fatalf("agent %s not printed", a.spec.ID)
		}
	}
	req, _ := http.NewRequest("GET", base+"/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+mosaictest.DefaultAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "user_id") {
		t.Fatalf("whoami: %d %s", resp.StatusCode, b)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func TestHelpExplainsEveryFlag(t *testing.T) {
	var errOut bytes.Buffer
	err := run(context.Background(), []string{"-h"}, io.Discard, &errOut)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	for _, f := range []string{"-addr", "-run-duration", "-fault-rate", "-seed", "-legacy-whoami",
		"-base-path", "-webhook-secret", "-key", "-clock-offset", "-lost-run-rate", "-no-run-rate",
		"-late-run-rate", "-late-run-delay", "-dashboard-runs-every", "-other-client-runs-every",
		"-credits"} {
		if !strings.Contains(errOut.String(), f) {
			t.Fatalf("help lacks %s:\n%s", f, errOut.String())
		}
	}
	if err := run(context.Background(), []string{"-fault-rate", "2"}, io.Discard,
		io.Discard); err == nil {
		t.Fatal("fault rate 2 accepted")
	}
	if err := run(context.Background(), []string{"-lost-run-rate", "0.6", "-no-run-rate", "0.6"},
		io.Discard, io.Discard); err == nil {
		t.Fatal("run-start rates adding up to more than 1 accepted")
	}
}

// Each run-start fault gets its share of all run starts.
func TestRunStartFaultsShareTheStarts(t *testing.T) {
	s, err := mosaictest.NewServer(mosaictest.Options{Seed: 3, ManualRuns: true,
		Agents: []mosaictest.AgentSpec{{}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	injectRunStartFaults(s, &config{lostRunRate: 0.3, noRunRate: 0.3, lateRunRate: 0.3,
		lateRunDelay: time.Hour})
	client := &http.Client{Timeout: 5 * time.Second}
	const n = 300
	for range n {
		// A URL input needs no upload.
		body := strings.NewReader(`{"video_urls":["https://example.com/v.mp4"]}`)
		req, _ := http.NewRequest("POST", s.URL()+"/agent/"+s.AgentIDs()[0]+"/run", body)
		req.Header.Set("Authorization", "Bearer "+mosaictest.DefaultAPIKey)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	st := s.Stats()
	for key, got := range map[string]int{
		"lost answers":  st.Requests["POST run_agent lost"],
		"lost requests": st.Requests["POST run_agent lost_request"],
		"late runs":     st.LateRunsPending,
		"answered":      st.Requests["POST run_agent 200"],
	} {
		want := 90
		if key == "answered" {
			want = 30
		}
		if got < want/2 || got > want*2 {
			t.Errorf("%s: %d of %d, want about %d", key, got, n, want)
		}
	}
}

func TestFaultRateSpreadsFaults(t *testing.T) {
	s, err := mosaictest.NewServer(mosaictest.Options{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	injectFaultRate(s, 0.5)
	client := &http.Client{Timeout: 5 * time.Second}
	failures := 0
	const n = 200
	for range n {
		req, _ := http.NewRequest("GET", s.URL()+"/whoami", nil)
		req.Header.Set("Authorization", "Bearer "+mosaictest.DefaultAPIKey)
		resp, err := client.Do(req)
		if err != nil {
			failures++
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			failures++
		}
	}
	if failures < n/4 || failures > 3*n/4 {
		t.Fatalf("%d of %d failed at rate 0.5", failures, n)
	}
}
