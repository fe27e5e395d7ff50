package httpapi

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// The Host check stops DNS rebinding: a web page whose name an attacker points at 127.0.0.1
// is, to the browser, same-origin with this server, so neither Origin nor Sec-Fetch-Site gives
// it away; only the Host header it sends (the attacker's name) does.

// hostPolicy decides which Host headers are served.
type hostPolicy struct {
	any     bool                // an exposed listener without allowed_hosts: the token guards
	names   map[string]struct{} // http.allowed_hosts, lower case
	webhook string              // webhook.public_url's host: accepted on the webhook route only
}

func newHostPolicy(opts Options) hostPolicy {
	p := hostPolicy{any: opts.Exposed && len(opts.AllowedHosts) == 0, names: map[string]struct{}{}}
	for _, h := range opts.AllowedHosts {
		p.names[hostName(h)] = struct{}{}
	}
	if opts.WebhookSecret != "" && opts.WebhookURL != "" {
		if u, err := url.Parse(opts.WebhookURL); err == nil {
			p.webhook = strings.ToLower(u.Hostname())
		}
	}
	return p
}

// allows reports whether a request for path with this Host header is served.
func (p hostPolicy) allows(host, path string) bool {
	name := hostName(host)
	if p.any || loopbackName(name) {
		return true
	}
	if _, ok := p.names[name]; ok {
		return true
	}
	return p.webhook != "" && name == p.webhook && path == webhookPath
}

// hostGuard refuses, before routing, requests whose Host this server does not answer to.
func (s *Server) hostGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hosts.allows(r.Host, r.URL.Path) {
			writeJSONError(w, http.StatusMisdirectedRequest, "this server does not answer to that "+
				"host name: use http://127.0.0.1:PORT/ or http://localhost:PORT/, or add the name "+
				"to http.allowed_hosts")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostName is the lower-case name or address of a Host header, without port or brackets.
func hostName(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.ToLower(host)
}

// loopbackName: "localhost" or a loopback address. Only these need no DNS, so no attacker can
// point them elsewhere.
func loopbackName(name string) bool {
	if name == "localhost" {
		return true
	}
	ip := net.ParseIP(name)
	return ip != nil && ip.IsLoopback()
}
