package mosaictest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// hookEvent is one webhook body ready to POST.
type hookEvent struct {
	url  string
	flag string
	body []byte
}

// hookQueue delivers one run's webhooks in order, one at a time.
type hookQueue struct {
	events []hookEvent
	held   []hookEvent // RUN_STARTED held back by the OutOfOrder knob
	active bool
}

// loopbackURL reports whether u points at this machine (the only place the fake calls).
func loopbackURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	host := p.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *Server) webhookPayloadLocked(r *run, flag string) map[string]any {
	now := s.now()
	p := map[string]any{
		"flag": flag, "agent_id": r.agent.id, "run_id": r.id, "status": r.status,
		"node_status_counts": r.nodeCounts(), "triggered_by": r.triggeredBy,
	}
	switch flag {
	case "RUN_STARTED":
		p["status"] = statusRunning
		p["inputs"] = s.inputsLocked(r, s.rootURL, now)
	case "RUN_PROGRESS":
		p["status"] = statusRunning
		p["updated_nodes"] = []any{map[string]any{"original_node_id": r.agent.nodes[0], "status": statusCompleted,
			"status_message": nil, "errors": []string{}, "outputs": []any{}}}
	case "RUN_FINISHED":
		p["status_message"] = r.statusMessage()
		p["needs_credits"] = r.needsCredits()
		p["errors"] = r.errorsView()
		p["inputs"] = s.inputsLocked(r, s.rootURL, now)
		p["outputs"] = s.outputsLocked(r, s.rootURL, now)
	}
	return p
}

// queueWebhookLocked queues flag for r's callback_url according to the knobs.
func (s *Server) queueWebhookLocked(r *run, flag string) {
	if r.callbackURL == "" || s.knobs.Drop || s.closing {
		return
	}
	if !loopbackURL(r.callbackURL) {
		s.stats.WebhooksRefused++
		s.log.Warn("mosaictest: refusing to deliver a webhook to a non-loopback callback_url", "host", hostOf(r.callbackURL))
		return
	}
	q := s.hooks[r]
	if q == nil {
		q = &hookQueue{}
		s.hooks[r] = q
	}
	mk := func(f string) hookEvent {
		b, _ := json.Marshal(s.webhookPayloadLocked(r, f))
		return hookEvent{url: r.callbackURL, flag: f, body: b}
	}
	var evs []hookEvent
	switch flag {
	case "RUN_STARTED":
		started := []hookEvent{mk("RUN_STARTED")}
		if s.knobs.Progress {
			started = append(started, mk("RUN_PROGRESS"))
		}
		if s.knobs.OutOfOrder {
			q.held = append(q.held, started...)
		} else {
			evs = started
		}
	default:
		evs = append([]hookEvent{mk(flag)}, q.held...)
		q.held = nil
	}
	for _, ev := range evs {
		q.events = append(q.events, ev)
		if s.knobs.Duplicate {
			q.events = append(q.events, ev)
		}
	}
	if len(q.events) > 0 && !q.active {
		q.active = true
		s.wg.Add(1)
		go s.deliverLoop(r, q)
	}
}

func hostOf(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Host
	}
	return "?"
}

func (s *Server) deliverLoop(r *run, q *hookQueue) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		if len(q.events) == 0 || s.ctx.Err() != nil {
			q.active = false
			if len(q.held) == 0 {
				delete(s.hooks, r)
			}
			s.mu.Unlock()
			return
		}
		ev := q.events[0]
		q.events = q.events[1:]
		s.mu.Unlock()
		ok := s.deliver(ev)
		s.mu.Lock()
		if ok {
			s.stats.WebhooksDelivered++
		} else {
			s.stats.WebhooksFailed++
		}
		s.mu.Unlock()
	}
}

// deliver POSTs one event: 1 attempt + up to 3 retries on non-2xx or network errors.
func (s *Server) deliver(ev hookEvent) bool {
	delay := s.opts.WebhookRetryDelay
	for attempt := 0; attempt < 4; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(delay)
			select {
			case <-s.ctx.Done():
				t.Stop()
				return false
			case <-t.C:
			}
			delay *= 2
		}
		err := s.post(ev)
		if err == nil {
			return true
		}
		s.log.Debug("mosaictest: webhook delivery failed", "flag", ev.flag, "attempt", attempt+1, "err", err)
		if s.ctx.Err() != nil {
			return false
		}
	}
	return false
}

var webhookClient = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

func (s *Server) post(ev hookEvent) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ev.url, bytes.NewReader(ev.body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mosaic-fake-webhooks")
	if s.opts.WebhookSecret != "" {
		req.Header.Set("X-Mosaic-Signature", s.opts.WebhookSecret)
	}
	resp, err := webhookClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop the URL: it may carry a secret query
		}
		return fmt.Errorf("webhook %s to %s: %w", ev.flag, hostOf(ev.url), err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook %s: status %d", ev.flag, resp.StatusCode)
	}
	return nil
}
