package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

type event struct{ kind, msg string }

type fakeEventSink struct {
	mu     sync.Mutex
	events []event
}

func (s *fakeEventSink) add(kind, msg string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, event{kind, msg})
	return nil
}
func (s *fakeEventSink) Info(_ uint32, m string) error    { return s.add("info", m) }
func (s *fakeEventSink) Warning(_ uint32, m string) error { return s.add("warning", m) }
func (s *fakeEventSink) Error(_ uint32, m string) error   { return s.add("error", m) }

func TestEventLogHandler(t *testing.T) {
	sink := &fakeEventSink{}
	log := slog.New(newEventLogHandler(sink, slog.LevelInfo, "text")).With("folder", "captions")
	log.Debug("not logged at info")
	log.Info("started", "files", 3)
	log.WithGroup("job").Warn("retrying", "id", 7)
	log.Error("upload failed", "err", errors.New("boom"))
	want := []event{
		{"info", `level=INFO msg=started folder=captions files=3`},
		{"warning", `level=WARN msg=retrying folder=captions job.id=7`},
		{"error", `level=ERROR msg="upload failed" folder=captions err=boom`},
	}
	if fmt.Sprint(sink.events) != fmt.Sprint(want) {
		t.Errorf("events:\n got %q\nwant %q", sink.events, want)
	}

	sink = &fakeEventSink{}
	log = slog.New(newEventLogHandler(sink, slog.LevelWarn, "json"))
	log.Info("dropped below warn")
	log.Warn("disk nearly full", "free", "1GiB")
	if len(sink.events) != 1 || sink.events[0].kind != "warning" {
		t.Fatalf("events = %q, want one warning", sink.events)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(sink.events[0].msg), &rec); err != nil {
		t.Fatalf("json format: %v: %s", err, sink.events[0].msg)
	}
	if rec["msg"] != "disk nearly full" || rec["free"] != "1GiB" || rec["time"] != nil {
		t.Errorf("json event = %v (want msg and attrs, no time: the Event Log stamps events)", rec)
	}
}

func TestEventLogHandlerConcurrent(t *testing.T) {
	sink := &fakeEventSink{}
	log := slog.New(newEventLogHandler(sink, slog.LevelInfo, "text"))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			l := log.With("g", g)
			for i := range 50 {
				l.Info("tick", "i", i)
			}
		})
	}
	wg.Wait()
	if len(sink.events) != 400 {
		t.Fatalf("%d events, want 400", len(sink.events))
	}
	for _, e := range sink.events {
		if strings.Count(e.msg, "msg=tick") != 1 {
			t.Fatalf("records mixed up: %q", e.msg)
		}
	}
}
