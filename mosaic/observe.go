package mosaic

import (
	"net/http"
	"time"
)

// do sends one HTTP attempt and reports it to Options.OnResponse (metrics only: it changes
// nothing about the request or its result).
func (c *Client) do(op string, req *http.Request) (*http.Response, error) {
	if c.onResponse == nil {
		return c.hc.Do(req)
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	status := 0
	if err == nil {
		status = resp.StatusCode
	}
	c.onResponse(op, status, time.Since(start))
	return resp, err
}
