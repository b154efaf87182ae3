package wire

import (
	"errors"
	"fmt"
	"slices"

	"ringmaster/totem"
)

// ErrNotQuorate: the partition does not have quorum (Status.Err).
var ErrNotQuorate = errors.New("votequorum: not quorate")

// Status is the quorum status shown to clients (`ringctl quorum`).
type Status struct {
	NodeID        uint32       `json:"node_id"`
	Ring          totem.RingID `json:"ring_id"`
	Quorate       bool         `json:"quorate"`
	ExpectedVotes uint32       `json:"expected_votes"`
	TotalVotes    uint32       `json:"total_votes"`
	Quorum        uint32       `json:"quorum"`
	// Flags are corosync-quorumtool's flags: Quorate, TwoNode,
	// WaitForAll, LastManStanding, AutoTieBreaker, AllowDownscale.
	Flags []string `json:"flags"`
	// WaitForAllStatus: wait_for_all is still waiting for all nodes.
	WaitForAllStatus bool     `json:"wait_for_all_status"`
	Members          []Member `json:"members"`
	// Syncing: a membership change was still being synchronised when the
	// status was taken.
	Syncing bool `json:"syncing,omitempty"`
	// TieBreaker is the auto_tie_breaker mode ("" when off).
	TieBreaker string `json:"auto_tie_breaker,omitempty"`
	// LowestNode/HighestNode: members of the last quorate partition at
	// the ends of the id range (the lowest/highest tie-breaker).
	LowestNode        uint32 `json:"lowest_node_id,omitempty"`
	HighestNode       uint32 `json:"highest_node_id,omitempty"`
	EVBarrier         uint32 `json:"ev_barrier"`
	EVTrackingBarrier uint32 `json:"ev_tracking_barrier,omitempty"`
}

// Member is one member of the partition.
type Member struct {
	NodeID uint32 `json:"nodeid"`
	Votes  uint32 `json:"votes"`
	Name   string `json:"name"`
	// Leaving: the node announced a clean shutdown (allow_downscale).
	Leaving bool `json:"leaving,omitempty"`
	// NotCounted: the node is a member but not a voter of the lineage
	// the partition is judged by (it was away when expected votes were
	// lowered), so its votes are not in TotalVotes; it becomes a voter
	// once the partition is quorate.
	NotCounted bool `json:"not_counted,omitempty"`
	Local      bool `json:"local,omitempty"`
}

// Flag names, as `ringctl quorum` prints them.
const (
	FlagQuorate         = "Quorate"
	FlagTwoNode         = "TwoNode"
	FlagWaitForAll      = "WaitForAll"
	FlagLastManStanding = "LastManStanding"
	FlagAutoTieBreaker  = "AutoTieBreaker"
	FlagAllowDownscale  = "AllowDownscale"
)

// Err is nil when the status is quorate, else an error wrapping
// ErrNotQuorate that says why.
func (s *Status) Err() error {
	if s.Quorate {
		return nil
	}
	if s.WaitForAllStatus {
		return fmt.Errorf("%w: waiting for all nodes (%d of %d votes present)", ErrNotQuorate, s.TotalVotes, s.ExpectedVotes)
	}
	return fmt.Errorf("%w: %d votes present, quorum is %d of %d expected", ErrNotQuorate, s.TotalVotes, s.Quorum, s.ExpectedVotes)
}

// HasFlag reports whether the status carries the named flag.
func (s *Status) HasFlag(name string) bool { return slices.Contains(s.Flags, name) }
