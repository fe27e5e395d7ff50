package mosaic

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Identity is who the API key belongs to. Newer API versions describe an organization, older ones
// a user; both shapes are accepted.
type Identity struct {
	OrganizationID, OrganizationName, OrganizationSlug string // newest shape
	UserID, Email, APIKeyID                            string // older shape
	IsAdmin                                            bool
	Scopes                                             []string // nil = full access
	CreatedAt, LastUsedAt                              time.Time
}

// String names the identity for humans: "organization Acme (acme)" or "user a@b.c".
func (i *Identity) String() string {
	if i == nil {
		return "unknown identity"
	}
	switch {
	case i.OrganizationName != "" && i.OrganizationSlug != "":
		return "organization " + i.OrganizationName + " (" + i.OrganizationSlug + ")"
	case i.OrganizationName != "":
		return "organization " + i.OrganizationName
	case i.OrganizationSlug != "":
		return "organization " + i.OrganizationSlug
	case i.OrganizationID != "":
		return "organization " + i.OrganizationID
	case i.Email != "":
		return "user " + i.Email
	case i.UserID != "":
		return "user " + i.UserID
	}
	return "unknown identity"
}

type whoamiJSON struct {
	OrganizationID   flexString      `json:"organization_id"`
	OrganizationName string          `json:"organization_name"`
	OrganizationSlug string          `json:"organization_slug"`
	UserID           flexString      `json:"user_id"`
	Email            string          `json:"email"`
	IsAdmin          bool            `json:"is_admin"`
	APIKeyID         flexString      `json:"api_key_id"`
	Scopes           json.RawMessage `json:"scopes"`
	CreatedAt        flexTime        `json:"created_at"`
	LastUsedAt       flexTime        `json:"last_used_at"`
}

// WhoAmI checks the key (GET /whoami). Only a 200 answer means the key is valid.
func (c *Client) WhoAmI(ctx context.Context) (*Identity, error) {
	var w whoamiJSON
	err := c.doJSON(ctx, apiCall{op: "whoami", method: http.MethodGet, url: c.endpoint(nil, "whoami"), safe: true}, &w)
	if err != nil {
		return nil, err
	}
	id := &Identity{
		OrganizationID:   string(w.OrganizationID),
		OrganizationName: w.OrganizationName,
		OrganizationSlug: w.OrganizationSlug,
		UserID:           string(w.UserID),
		Email:            w.Email,
		IsAdmin:          w.IsAdmin,
		APIKeyID:         string(w.APIKeyID),
		CreatedAt:        w.CreatedAt.Time,
		LastUsedAt:       w.LastUsedAt.Time,
	}
	if len(w.Scopes) > 0 && string(w.Scopes) != "null" {
		var scopes flexStrings
		_ = scopes.UnmarshalJSON(w.Scopes)
		id.Scopes = []string(scopes)
		if id.Scopes == nil {
			id.Scopes = []string{} // "[]" means no entity permission, unlike null (full access)
		}
	}
	return id, nil
}
