package config

// Suggestions for mistakes: where a misplaced key belongs, which known key or value a typo meant.

import (
	"fmt"
	"strings"
)

// keyHome says where a key belongs, to answer "unknown key" with "it goes under X".
var keyHome = func() map[string]string {
	home := map[string]string{}
	add := func(section string, keys []string) {
		for _, k := range keys {
			if _, ok := home[k]; !ok {
				home[k] = section
			}
		}
	}
	add("the top level", topKeys)
	add("mosaic:", mosaicKeys)
	add("log:", logKeys)
	add("the top-level limits:", limitsKeys)
	add("retry:", retryKeys)
	add("http:", httpKeys)
	add("webhook:", webhookKeys)
	add("database:", databaseKeys)
	add("defaults: or a folder entry", folderSettingKeys)
	add("a folder's limits: (or defaults.limits:)", folderLimitsKeys)
	add("a folder entry (folders: - ...)", folderOnlyKeys)
	return home
}()

func unknownKeyMsg(key string, known []string) string {
	msg := "unknown key"
	if home, ok := keyHome[key]; ok { // a valid key in the wrong place beats a look-alike
		return msg + fmt.Sprintf(" here; %s belongs under %s", key, home)
	}
	if s := suggest(key, known); s != "" {
		return msg + fmt.Sprintf("; did you mean %q?", s)
	}
	return msg + "; allowed keys: " + strings.Join(known, ", ")
}

// suggest returns the known key closest to key, or "" if none is close.
func suggest(key string, known []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.ToLower(s))
	}
	best, bestD := "", 1<<30
	for _, k := range known {
		if norm(k) == norm(key) {
			return k
		}
		d := editDistance(strings.ToLower(key), k)
		if d < bestD {
			best, bestD = k, d
		}
	}
	limit := 2
	if len(key) >= 9 {
		limit = 3
	}
	if bestD <= limit {
		return best
	}
	for _, k := range known { // "agent" -> "agent_id", "after_success_move" -> "after_success_move_to"
		if len(key) >= 4 && (strings.HasPrefix(k, key) || strings.HasPrefix(key, k)) {
			return k
		}
	}
	return ""
}

func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
