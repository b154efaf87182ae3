package calc

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"ringmaster/totem"
)

// ATBMode is how auto_tie_breaker picks the partition that wins an exact
// 50 % split. Numbers match corosync's runtime.votequorum.atb_type.
type ATBMode uint8

// Tie-breaker modes.
const (
	ATBNone    ATBMode = 0
	ATBLowest  ATBMode = 1 // the partition holding the lowest node id of the last quorate ring
	ATBHighest ATBMode = 2 // the partition holding the highest node id of the last quorate ring
	ATBList    ATBMode = 3 // the first listed node present (see checkATB)
)

func (m ATBMode) String() string {
	switch m {
	case ATBNone:
		return "none"
	case ATBLowest:
		return "lowest"
	case ATBHighest:
		return "highest"
	case ATBList:
		return "list"
	}
	return fmt.Sprintf("atb(%d)", uint8(m))
}

// NodeVotes is one configured node and its quorum_votes.
type NodeVotes struct {
	ID    totem.NodeID
	Votes uint32
}

// Options is votequorum's configuration as the calculator sees it
// (corosync's names and semantics, see votequorum(5)). The daemon builds it
// from corosync.toml (internal/daemon); Normalize applies corosync's
// implied settings.
type Options struct {
	// Nodes is the node list with each node's votes (default 1).
	Nodes []NodeVotes
	// ExpectedVotes overrides the sum of the node list's votes (0: the sum).
	ExpectedVotes uint32
	// TwoNode makes quorum 1 while at most two nodes are members; it
	// implies WaitForAll unless that is set explicitly.
	TwoNode bool
	// WaitForAll: the cluster becomes quorate for the first time only once
	// all expected votes were present together.
	WaitForAll bool
	// LastManStanding lowers expected votes to the votes present after the
	// membership has been stable and quorate for LastManStandingWindow.
	LastManStanding       bool
	LastManStandingWindow time.Duration
	// AutoTieBreaker decides exact 50 % splits; TieBreakerNodes is the
	// ordered list for ATBList.
	AutoTieBreaker  ATBMode
	TieBreakerNodes []totem.NodeID
	// AllowDownscale lowers expected votes when a node leaves cleanly
	// (down to the configured expected votes); it implies
	// ExpectedVotesTracking, as in corosync.
	AllowDownscale bool
	// ExpectedVotesTracking keeps the highest expected votes ever seen in
	// state_dir and uses it as the floor of expected votes at start.
	ExpectedVotesTracking bool
}

// ErrConfig is wrapped by option combinations votequorum refuses.
var ErrConfig = errors.New("votequorum: invalid configuration")

// ParseTieBreaker parses auto_tie_breaker_node: "lowest" (also the empty
// string), "highest", or a space-separated list of node ids.
func ParseTieBreaker(s string) (ATBMode, []totem.NodeID, error) {
	switch strings.TrimSpace(s) {
	case "", "lowest":
		return ATBLowest, nil, nil
	case "highest":
		return ATBHighest, nil, nil
	}
	var list []totem.NodeID
	for _, f := range strings.Fields(s) {
		id, err := strconv.ParseUint(f, 10, 32)
		if err != nil || id == 0 {
			return ATBNone, nil, fmt.Errorf("%w: auto_tie_breaker_node: want \"lowest\", \"highest\" or node ids, got %q", ErrConfig, s)
		}
		list = append(list, totem.NodeID(id))
	}
	return ATBList, list, nil
}

// ConfiguredVotes is the sum of the node list's votes.
func (o *Options) ConfiguredVotes() uint32 {
	var s uint32
	for _, n := range o.Nodes {
		s += n.Votes
	}
	return s
}

// ConfiguredExpected is expected_votes, or the node list's sum of votes.
func (o *Options) ConfiguredExpected() uint32 {
	if o.ExpectedVotes > 0 {
		return o.ExpectedVotes
	}
	return o.ConfiguredVotes()
}

// VotesOf is a node's configured votes (1 for a node outside the list, as
// corosync counts an unlisted joiner).
func (o *Options) VotesOf(id totem.NodeID) uint32 {
	for _, n := range o.Nodes {
		if n.ID == id {
			return n.Votes
		}
	}
	return 1
}

// Normalize applies corosync's implied settings and its refusals. It
// returns the options in effect, warnings for features it switched off (as
// corosync logs them), and an error wrapping ErrConfig for combinations
// corosync refuses to start with:
//
//   - two_node with auto_tie_breaker: two_node is switched off (a fence race
//     and a node-id rule cannot both decide).
//   - auto_tie_breaker on an odd number of votes without wait_for_all: with
//     last_man_standing an error, otherwise ATB is switched off (a half+1
//     that restarts without the tie-breaker node would win on its own).
//   - last_man_standing with a node voting more than 1: LMS is switched
//     off (it lowers expected votes to the number of nodes).
//   - allow_downscale implies expected_votes_tracking; ringmaster also
//     tracks with last_man_standing, so a node that restarts after the
//     cluster shrank never starts from less than the highest expected
//     votes it has seen.
func (o Options) Normalize() (Options, []string, error) {
	var warn []string
	o.Nodes = slices.Clone(o.Nodes)
	slices.SortFunc(o.Nodes, func(a, b NodeVotes) int { return cmp.Compare(a.ID, b.ID) })
	if o.LastManStandingWindow <= 0 {
		o.LastManStandingWindow = 10 * time.Second // corosync's default
	}
	if o.TwoNode && o.AutoTieBreaker != ATBNone {
		warn = append(warn, "two_node and auto_tie_breaker are not compatible: two_node is disabled")
		o.TwoNode = false
	}
	if o.AutoTieBreaker != ATBNone && o.ConfiguredVotes()%2 == 1 && !o.WaitForAll {
		if o.LastManStanding {
			return o, warn, fmt.Errorf("%w: auto_tie_breaker and last_man_standing on an odd number of votes (%d) need wait_for_all", ErrConfig, o.ConfiguredVotes())
		}
		warn = append(warn, fmt.Sprintf("auto_tie_breaker on an odd number of votes (%d) needs wait_for_all: auto_tie_breaker is disabled", o.ConfiguredVotes()))
		o.AutoTieBreaker, o.TieBreakerNodes = ATBNone, nil
	}
	if o.LastManStanding {
		for _, n := range o.Nodes {
			if n.Votes > 1 {
				warn = append(warn, fmt.Sprintf("last_man_standing needs every node to vote 1 (node %d votes %d): last_man_standing is disabled", n.ID, n.Votes))
				o.LastManStanding = false
				break
			}
		}
	}
	if o.AllowDownscale || o.LastManStanding {
		o.ExpectedVotesTracking = true
	}
	if o.ConfiguredExpected() == 0 {
		return o, warn, fmt.Errorf("%w: expected votes is 0 (no node votes and no quorum.expected_votes)", ErrConfig)
	}
	return o, warn, nil
}
