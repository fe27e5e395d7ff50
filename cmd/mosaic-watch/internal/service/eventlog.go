package service

// A slog.Handler for the Windows Event Log, kept free of Windows APIs so it is tested on every
// OS: records are formatted by the configured text or JSON handler and written as one event
// each, with the event type following the level.

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
)

// eventSink is the part of golang.org/x/sys/windows/svc/eventlog.Log the handler uses.
type eventSink interface {
	Info(eid uint32, msg string) error
	Warning(eid uint32, msg string) error
	Error(eid uint32, msg string) error
}

const (
	// eventID is one EventCreate.exe accepts (1..1000): it is registered as the message file
	// at install.
	eventID        = 1
	maxEventLength = 31000 // the Event Log refuses strings over ~31 839 characters
)

type eventLogHandler struct {
	sink  eventSink
	mu    *sync.Mutex   // guards buf, shared by every handler derived with WithAttrs/WithGroup
	buf   *bytes.Buffer // inner writes one record here
	inner slog.Handler
}

func newEventLogHandler(sink eventSink, level slog.Level, format string) *eventLogHandler {
	buf := new(bytes.Buffer)
	opts := &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{} // every event carries its own time
			}
			return a
		},
	}
	var inner slog.Handler = slog.NewTextHandler(buf, opts)
	if format == "json" {
		inner = slog.NewJSONHandler(buf, opts)
	}
	return &eventLogHandler{sink: sink, mu: new(sync.Mutex), buf: buf, inner: inner}
}

func (h *eventLogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *eventLogHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	h.buf.Reset()
	err := h.inner.Handle(ctx, r)
	msg := strings.TrimRight(h.buf.String(), "\n")
	h.mu.Unlock()
	if err != nil {
		return err
	}
	if len(msg) > maxEventLength {
		msg = msg[:maxEventLength] + "..."
	}
	switch {
	case r.Level >= slog.LevelError:
		return h.sink.Error(eventID, msg)
	case r.Level >= slog.LevelWarn:
		return h.sink.Warning(eventID, msg)
	}
	return h.sink.Info(eventID, msg)
}

func (h *eventLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.inner = h.inner.WithAttrs(attrs)
	return &c
}

func (h *eventLogHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.inner = h.inner.WithGroup(name)
	return &c
}
