package mosaic

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff returns the delay before attempt number attempt (1-based) of something that failed
// for a temporary reason: base doubled for each earlier attempt, capped at limit, then shortened by
// a random part of up to jitter (0..1) of it, so that many clients failing together spread out
// instead of retrying in lockstep. It never exceeds limit. The client, the pipeline and the daemon
// share it, each with its own base, limit and jitter.
func Backoff(base, limit time.Duration, attempt int, jitter float64) time.Duration {
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	spread := time.Duration(float64(d) * min(max(jitter, 0), 1))
	if spread <= 0 {
		return d
	}
	return d - rand.N(spread+1)
}

// backoff is the client's delay before retry number n (1-based): "equal jitter" (half fixed,
// half random).
func (c *Client) backoff(n int) time.Duration { return Backoff(c.retryBase, c.maxRetryDelay, n, 0.5) }

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
