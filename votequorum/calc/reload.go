package calc

import (
	"slices"

	"ringmaster/totem"
	"ringmaster/votequorum/wire"
)

// SetOptions applies new options while the cluster runs: a cluster-wide
// configuration reload (`ringctl config reload`) calls it on every member
// at the same point of the ordered stream (the reload's commit), with the
// same options (the reload compares the node list and [quorum] of every
// member first), so the members stay in agreement as they do for a
// Reconfigure. As corosync's reload does:
//
//   - the node list's votes replace the nodes' votes (a runtime `quorum
//     votes` of a node whose quorum_votes did not change stays);
//   - expected votes follow the node list (or quorum.expected_votes): a
//     node added to the list counts as an absent voter at once, a node
//     removed (it must have left the ring first) no longer counts; the
//     change is recorded as a new version of the quorum lineage, and the
//     expected-votes tracking floor is reset to the new value (the
//     operator shrank the cluster on purpose);
//   - two_node, wait_for_all, last_man_standing (and its window),
//     auto_tie_breaker and allow_downscale take effect at the next
//     evaluation, which happens here; wait_for_all only ever holds a
//     partition that was not yet quorate, as at start.
//
// On error (an option combination New would refuse) nothing changes.
func (c *Calc) SetOptions(opt Options) error {
	opt, warn, err := opt.Normalize()
	if err != nil {
		return err
	}
	old := c.opt
	c.opt = opt
	c.warnings = append(c.warnings, warn...)
	for _, n := range opt.Nodes {
		if old.VotesOf(n.ID) != n.Votes || !old.configuredIn(n.ID) {
			c.votes[n.ID] = n.Votes
		}
	}
	c.ownVotes = c.votes[c.local]
	if c.ownVotes == 0 && !opt.configuredIn(c.local) {
		c.ownVotes = opt.VotesOf(c.local)
	}
	c.votes[c.local] = c.ownVotes
	c.lms = opt.LastManStanding
	if !c.lms {
		c.lmsArmed = false
	}
	c.evBarrier = opt.ConfiguredExpected()
	c.base = c.evBarrier
	if opt.ExpectedVotesTracking {
		c.evTracking = c.evBarrier
	} else {
		c.evTracking = 0
	}
	c.dirty = true
	if c.syncing {
		// SyncDone evaluates with the new options.
		return nil
	}
	if c.lineage.None() {
		c.evaluate(c.members, c.lineage, !c.waiting, false)
		return nil
	}
	// The lineage's voters become the listed nodes and the members
	// (every member keeps counting, listed or not, as a joiner does).
	l := cloneLineage(c.lineage)
	var voters []wire.Voter
	for _, v := range l.Voters {
		if opt.configuredIn(v.ID) || slices.Contains(c.members, v.ID) {
			voters = append(voters, wire.Voter{ID: v.ID, Votes: c.votesOf(v.ID)})
		}
	}
	for _, n := range opt.Nodes {
		if i, ok := slices.BinarySearchFunc(voters, n.ID, voterByID); !ok {
			voters = slices.Insert(voters, i, wire.Voter{ID: n.ID, Votes: c.votesOf(n.ID)})
		}
	}
	l.Voters = voters
	l.Expected = opt.ConfiguredExpected()
	if !l.Ring.Less(c.ring) {
		l.Step++
	} else {
		l.Ring, l.Step = c.ring, 1
	}
	c.lineage = cloneLineage(l)
	c.evaluate(c.members, l, !c.waiting, false)
	return nil
}

// configuredIn reports whether id is in the node list.
func (o *Options) configuredIn(id totem.NodeID) bool {
	for _, n := range o.Nodes {
		if n.ID == id {
			return true
		}
	}
	return false
}
