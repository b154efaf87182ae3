package calc

import (
	"slices"

	"ringmaster/totem"
	"ringmaster/votequorum/wire"
)

// info is this node's state message for ring.
func (c *Calc) info(ring totem.RingID) wire.NodeInfo {
	var f wire.InfoFlags
	if c.quorate {
		f |= wire.InfoQuorate
	}
	if c.waiting {
		f |= wire.InfoWaitForAll
	}
	if c.leavingSelf {
		f |= wire.InfoLeaving
	}
	return wire.NodeInfo{
		Ring: ring, Votes: c.ownVotes, Expected: c.base, Flags: f,
		Prev: slices.Clone(c.members), Lineage: cloneLineage(c.lineage),
	}
}

// Status returns the current status (names are left empty; the service
// fills them in from the node list).
func (c *Calc) Status() wire.Status {
	st := wire.Status{
		NodeID:           uint32(c.local),
		Ring:             c.ring,
		Quorate:          c.quorate,
		ExpectedVotes:    c.expected,
		TotalVotes:       c.total,
		Quorum:           c.quorum,
		Flags:            []string{},
		WaitForAllStatus: c.waiting,
		Members:          []wire.Member{},
		Syncing:          c.syncing,
		EVBarrier:        c.evBarrier,
	}
	if n := len(c.lineage.Members); n > 0 {
		st.LowestNode, st.HighestNode = uint32(c.lineage.Members[0]), uint32(c.lineage.Members[n-1])
	}
	if c.opt.ExpectedVotesTracking {
		st.EVTrackingBarrier = c.evTracking
	}
	if c.opt.AutoTieBreaker != ATBNone {
		st.TieBreaker = c.opt.AutoTieBreaker.String()
	}
	for _, f := range []struct {
		on   bool
		name string
	}{
		{c.quorate, wire.FlagQuorate},
		{c.opt.TwoNode, wire.FlagTwoNode},
		{c.opt.WaitForAll, wire.FlagWaitForAll},
		{c.lms, wire.FlagLastManStanding},
		{c.opt.AutoTieBreaker != ATBNone, wire.FlagAutoTieBreaker},
		{c.opt.AllowDownscale, wire.FlagAllowDownscale},
	} {
		if f.on {
			st.Flags = append(st.Flags, f.name)
		}
	}
	for _, m := range c.members {
		st.Members = append(st.Members, wire.Member{
			NodeID: uint32(m), Votes: c.votes[m], Leaving: c.leaving[m], Local: m == c.local,
			NotCounted: !c.leaving[m] && !slices.Contains(c.voterIDs, m),
		})
	}
	return st
}
