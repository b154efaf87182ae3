package calc

import (
	"cmp"
	"slices"

	"ringmaster/totem"
	"ringmaster/votequorum/wire"
)

// sameContent: the same decision (expected votes, members and voters),
// whatever its version.
func sameContent(l, o *wire.Lineage) bool {
	return l.Expected == o.Expected && slices.Equal(l.Members, o.Members) && slices.Equal(l.Voters, o.Voters)
}

// voterByID orders voters by node id (their lists are sorted so).
func voterByID(v wire.Voter, id totem.NodeID) int { return cmp.Compare(v.ID, id) }

// findVoter looks id up in voters (sorted by id).
func findVoter(voters []wire.Voter, id totem.NodeID) (wire.Voter, bool) {
	i, ok := slices.BinarySearchFunc(voters, id, voterByID)
	if !ok {
		return wire.Voter{}, false
	}
	return voters[i], true
}

// cloneLineage is a deep copy: lineages are kept and handed out, never
// shared.
func cloneLineage(l wire.Lineage) wire.Lineage {
	l.Voters = slices.Clone(l.Voters)
	l.Members = slices.Clone(l.Members)
	return l
}

// proposeCurrent is a lineage of the active members only, with expected
// votes max(their votes, floor): the "by current nodes" recalculation of
// last_man_standing, allow_downscale and a lowered expected votes. It
// keeps the current version; evaluate versions it if it is adopted.
func (c *Calc) proposeCurrent(floor uint32) wire.Lineage {
	var l wire.Lineage
	var total uint32
	for _, m := range c.members {
		if !c.leaving[m] {
			l.Voters = append(l.Voters, wire.Voter{ID: m, Votes: c.votes[m]})
			total += c.votes[m]
		}
	}
	l.Expected = max(total, floor, 1)
	return l
}

// current is the lineage to change: the partition's, or (before the first
// quorate decision) the initial voters with the merged base.
func (c *Calc) current() wire.Lineage {
	if !c.lineage.None() {
		return cloneLineage(c.lineage)
	}
	return wire.Lineage{Expected: c.base, Voters: c.initialVoters(c.members)}
}

// TakePersisted returns the state to keep in state_dir and whether it
// changed since the last call (the driver writes it then).
func (c *Calc) TakePersisted() (Persisted, bool) {
	d := c.dirty
	c.dirty = false
	return Persisted{ExpectedVotesTracking: c.evTracking, Lineage: cloneLineage(c.lineage)}, d
}
