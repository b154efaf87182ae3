package stonithd

import (
	"sort"
	"strings"
	"time"
)

// Results recorded in history.
const (
	ResultSuccess = "success"
	ResultFailed  = "failed"
)

// DefaultHistoryMax bounds the history every node keeps (Pacemaker's
// fencer keeps 500 operations): enough for weeks of a flapping node,
// small enough to resend whole to a joining node.
const DefaultHistoryMax = 500

// Entry is one completed fencing operation. Entries are immutable once
// created; nodes exchange them and Merge keeps one copy of each ID. The
// JSON shape is what `ringctl stonith history --json` prints.
type Entry struct {
	// ID is unique cluster-wide: the executioner's node name, the start
	// time and a sequence number of that node's fencer.
	ID     string `json:"id"`
	Target string `json:"target"`
	Action string `json:"action"`
	// Device is the device (or the level's devices, comma-separated) that
	// fenced the target, or that failed last; empty when no device could.
	Device string `json:"device"`
	Result string `json:"result"` // ResultSuccess or ResultFailed
	// Time is when the operation completed; Started when it was requested.
	Time    time.Time `json:"time"`
	Started time.Time `json:"started"`
	// Origin is the node that asked for fencing; Executioner the node
	// whose fencer ran the devices (the same node in ringmaster today).
	Origin      string `json:"origin"`
	Executioner string `json:"executioner"`
	Client      string `json:"client,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// less is the history order: by completion time, then ID. It is total,
// so every node sorts a merged history identically.
func (e Entry) less(o Entry) bool {
	if !e.Time.Equal(o.Time) {
		return e.Time.Before(o.Time)
	}
	if e.ID != o.ID {
		return e.ID < o.ID
	}
	return e.canon() < o.canon()
}

// canon is a deterministic rendering used to pick one of two entries that
// claim the same ID with different contents (a broken peer): the smaller
// wins everywhere, so histories still converge.
func (e Entry) canon() string {
	return strings.Join([]string{e.ID, e.Target, e.Action, e.Device, e.Result,
		e.Time.UTC().Format(time.RFC3339Nano), e.Started.UTC().Format(time.RFC3339Nano),
		e.Origin, e.Executioner, e.Client, e.Reason}, "\x00")
}

// MergeEntries returns the union of a and b by ID, sorted by (time, ID),
// keeping only the max most recent (max <= 0: DefaultHistoryMax). It is
// commutative, associative and idempotent, so nodes that exchange entries
// in any order and any grouping end with the same history.
func MergeEntries(max int, a, b []Entry) []Entry {
	if max <= 0 {
		max = DefaultHistoryMax
	}
	byID := make(map[string]Entry, len(a)+len(b))
	for _, list := range [][]Entry{a, b} {
		for _, e := range list {
			if e.ID == "" {
				continue
			}
			if old, ok := byID[e.ID]; !ok || e.canon() < old.canon() {
				byID[e.ID] = e
			}
		}
	}
	out := make([]Entry, 0, len(byID))
	for _, e := range byID {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].less(out[j]) })
	if len(out) > max {
		out = append([]Entry(nil), out[len(out)-max:]...)
	}
	return out
}

// History is one node's bounded fence history. It is not safe for
// concurrent use; the Fencer and the Driver guard it.
type History struct {
	max     int
	entries []Entry
}

// NewHistory returns an empty history keeping at most max entries.
func NewHistory(max int) *History {
	if max <= 0 {
		max = DefaultHistoryMax
	}
	return &History{max: max}
}

// Merge adds entries (from this node or a peer) and returns those that
// were new here, for the caller to pass on.
func (h *History) Merge(entries ...Entry) []Entry {
	have := make(map[string]bool, len(h.entries))
	for _, e := range h.entries {
		have[e.ID] = true
	}
	h.entries = MergeEntries(h.max, h.entries, entries)
	var added []Entry
	kept := make(map[string]bool, len(h.entries))
	for _, e := range h.entries {
		kept[e.ID] = true
	}
	for _, e := range entries {
		if !have[e.ID] && kept[e.ID] {
			added = append(added, e)
			have[e.ID] = true
		}
	}
	return added
}

// Entries returns a copy of the history, oldest first.
func (h *History) Entries() []Entry { return append([]Entry(nil), h.entries...) }

// Len is the number of entries kept.
func (h *History) Len() int { return len(h.entries) }

// For returns target's entries, oldest first ("" means every target).
func (h *History) For(target string) []Entry {
	var out []Entry
	for _, e := range h.entries {
		if target == "" || strings.EqualFold(e.Target, target) {
			out = append(out, e)
		}
	}
	return out
}

// LastSuccess returns the latest successful fencing of target.
func (h *History) LastSuccess(target string) (Entry, bool) {
	for i := len(h.entries) - 1; i >= 0; i-- {
		e := h.entries[i]
		if e.Result == ResultSuccess && strings.EqualFold(e.Target, target) {
			return e, true
		}
	}
	return Entry{}, false
}
