package mosaic

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff returns the delay before retry number n (1-based): exponential from retryBase, capped at
// maxRetryDelay, with "equal jitter" (half fixed, half random) so concurrent clients spread out.
func (c *Client) backoff(n int) time.Duration {
	d := c.retryBase
	for i := 1; i < n && d < c.maxRetryDelay; i++ {
		d *= 2
	}
	d = min(d, c.maxRetryDelay)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// retryDelay honours the server's Retry-After (capped) when it is longer than our own backoff.
func (c *Client) retryDelay(n int, err error) time.Duration {
	d := c.backoff(n)
	if ra, ok := RetryAfter(err); ok {
		d = max(d, min(ra, c.maxRetryDelay))
	}
	return d
}

// retry runs attempt until it succeeds, fails permanently, the retry budget is spent or ctx ends.
// extra may declare additional errors retryable (finalize's 400 "not uploaded"). Only safe,
// idempotent calls go through here; RunAgent never does.
func (c *Client) retry(ctx context.Context, op string, extra func(error) bool, attempt func(context.Context) error) error {
	for n := 0; ; n++ {
		err := attempt(ctx)
		if err == nil {
			if n > 0 {
				c.log.Info("mosaic: succeeded after retries", "op", op, "retries", n)
			}
			return nil
		}
		retryable := IsRetryable(err) || (extra != nil && extra(err))
		if !retryable || n >= c.maxRetries || ctx.Err() != nil {
			return err
		}
		delay := c.retryDelay(n+1, err)
		c.log.Debug("mosaic: retrying", "op", op, "retry", n+1, "delay", delay, "err", err.Error())
		if werr := sleepCtx(ctx, delay); werr != nil {
			return &NetError{Op: op, Err: ctx.Err(), Canceled: isCallerCancel(ctx), Timeout: !isCallerCancel(ctx),
				msg: "gave up waiting to retry (" + werr.Error() + ") after: " + err.Error()}
		}
	}
}

// sleepCtx waits d or until ctx ends, whichever comes first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func isCallerCancel(ctx context.Context) bool { return ctx.Err() == context.Canceled }
