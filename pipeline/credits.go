package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/store"
)

// MetaReader is the part of the store that status displays read: it works on a read-only store.
type MetaReader interface {
	GetMeta(ctx context.Context, key string) (string, error)
}

// CreditsRecord is the account's credit balance as last seen by the daemon.
type CreditsRecord struct {
	Balance   float64   `json:"balance"`
	Unlimited bool      `json:"unlimited,omitempty"`
	AutoTopUp bool      `json:"auto_topup"` // Mosaic buys credits when the balance runs low
	Plan      string    `json:"plan,omitempty"`
	At        time.Time `json:"at"`
}

const creditsKey = "credits"

// RefreshCredits asks Mosaic for the balance (GET /credits) and records it in the store, where
// `status`, the dashboard and /metrics read it.
func RefreshCredits(ctx context.Context, api *mosaic.Client, st store.Store, now time.Time) (*CreditsRecord, error) {
	c, err := api.GetCredits(ctx)
	if err != nil {
		return nil, err
	}
	rec := &CreditsRecord{Balance: c.Balance, Unlimited: c.Unlimited, AutoTopUp: c.AutoTopUp.Enabled, Plan: c.Plan, At: now.UTC()}
	b, _ := json.Marshal(rec)
	if err := st.SetMeta(ctx, creditsKey, string(b)); err != nil {
		return rec, fmt.Errorf("record the credit balance: %w", err)
	}
	return rec, nil
}

// LoadCredits reads the last recorded balance; nil when none was recorded yet.
func LoadCredits(ctx context.Context, st MetaReader) (*CreditsRecord, error) {
	v, err := st.GetMeta(ctx, creditsKey)
	if err != nil || v == "" {
		return nil, err
	}
	var rec CreditsRecord
	if err := json.Unmarshal([]byte(v), &rec); err != nil {
		return nil, fmt.Errorf("read the recorded credit balance: %w", err)
	}
	return &rec, nil
}

// String says the balance for people: "2,412 credits", "unlimited credits".
func (c *CreditsRecord) String() string {
	if c.Unlimited {
		return "unlimited credits"
	}
	s := fmt.Sprintf("%s credits", groupThousands(c.Balance))
	if c.AutoTopUp {
		s += " (auto top-up on)"
	}
	return s
}

func groupThousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	if v != float64(int64(v)) {
		s = fmt.Sprintf("%.2f", v)
	}
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	intPart, frac := s, ""
	for i := range s {
		if s[i] == '.' {
			intPart, frac = s[:i], s[i:]
			break
		}
	}
	var out []byte
	for i := range len(intPart) {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, intPart[i])
	}
	if neg {
		return "-" + string(out) + frac
	}
	return string(out) + frac
}
