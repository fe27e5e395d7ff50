package mosaic

import (
	"context"
	"encoding/json"
	"net/http"
)

// Credits is the account's credit balance (GET /credits).
type Credits struct {
	Balance   float64
	Unlimited bool   // older shape only
	Plan      string // e.g. "creator"; may be ""
	AutoTopUp AutoTopUp
}

// AutoTopUp is the account's automatic credit purchase setting.
type AutoTopUp struct {
	Eligible, Enabled   bool
	Threshold, Quantity float64 // 0 when unset
}

type creditsJSON struct {
	Balance   *float64        `json:"balance"`
	Plan      json.RawMessage `json:"plan"`
	AutoTopUp *struct {
		Eligible  bool     `json:"eligible"`
		Enabled   bool     `json:"enabled"`
		Threshold *float64 `json:"threshold"`
		Quantity  *float64 `json:"quantity"`
	} `json:"auto_topup"`
	// Older capture: {"credits": {"balance", "unlimited", ...}, "plan"}.
	Credits *struct {
		Balance   float64 `json:"balance"`
		Unlimited bool    `json:"unlimited"`
	} `json:"credits"`
}

// GetCredits fetches GET /credits. Both the newest shape ({"balance", "auto_topup", ...}) and an
// older one ({"credits": {"balance", "unlimited"}}) are accepted.
func (c *Client) GetCredits(ctx context.Context) (*Credits, error) {
	var j creditsJSON
	call := apiCall{op: "get credits", method: http.MethodGet, url: c.endpoint(nil, "credits"), safe: true}
	if err := c.doJSON(ctx, call, &j); err != nil {
		return nil, err
	}
	out := &Credits{}
	switch {
	case j.Balance != nil:
		out.Balance = *j.Balance
	case j.Credits != nil:
		out.Balance, out.Unlimited = j.Credits.Balance, j.Credits.Unlimited
	}
	var plan string
	if json.Unmarshal(j.Plan, &plan) == nil {
		out.Plan = plan
	}
	if a := j.AutoTopUp; a != nil {
		out.AutoTopUp = AutoTopUp{Eligible: a.Eligible, Enabled: a.Enabled}
		if a.Threshold != nil {
			out.AutoTopUp.Threshold = *a.Threshold
		}
		if a.Quantity != nil {
			out.AutoTopUp.Quantity = *a.Quantity
		}
	}
	return out, nil
}
