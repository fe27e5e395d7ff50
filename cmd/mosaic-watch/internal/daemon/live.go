package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/mosaic-watch/mosaic-watch/cmd/mosaic-watch/internal/httpapi"
	"github.com/mosaic-watch/mosaic-watch/pipeline"
)

// live is the daemon as the HTTP surface sees it (httpapi.Live).
type live struct{ d *Daemon }

func (l live) Folders() []httpapi.Folder {
	cfg := l.d.config()
	out := make([]httpapi.Folder, len(cfg.Folders))
	for i, f := range cfg.Folders {
		out[i] = httpapi.Folder{Name: f.Name, Input: f.Input, Output: f.Output, AgentID: f.AgentID}
	}
	return out
}

func (l live) ConfigError() string { return l.d.ReloadFailure() }

func (l live) Notices() []string { return l.d.budgetNotices() }

func (l live) PendingApproval(ctx context.Context) map[string]int {
	return l.d.pendingApproval(ctx)
}

func (l live) Approve(ctx context.Context, input string) (int, error) {
	return l.d.approve(ctx, input)
}

// budgetNotices says which daily run limits are reached and until when.
func (d *Daemon) budgetNotices() []string {
	global, folders := d.pipe.RunBudgets()
	var out []string
	if global.Reached() {
		out = append(out, BudgetNotice("all folders", global))
	}
	for _, f := range d.config().Folders {
		if b := folders[f.Input]; b.Reached() {
			out = append(out, BudgetNotice("folder "+f.Name, b))
		}
	}
	return out
}

// BudgetNotice says that a daily run limit is reached (status prints it too).
func BudgetNotice(scope string, b pipeline.RunBudget) string {
	return fmt.Sprintf("Daily run limit reached for %s: %d of %d runs started in the last 24 hours; "+
		"new runs wait until %s (limits.max_runs_per_day)", scope, b.Used, b.Limit,
		b.Next.Local().Format(time.DateTime))
}
