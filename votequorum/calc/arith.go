package calc

import (
	"fmt"
	"slices"

	"ringmaster/totem"
	"ringmaster/votequorum/wire"
)

// initialVoters are the voters before any quorate decision: every listed
// node and every member. An expected_votes below the node list's votes
// says that only that many votes are expected, so then only the members
// count (two partitions may then both be quorate: that is what such an
// expected_votes asks for).
func (c *Calc) initialVoters(members []totem.NodeID) []wire.Voter {
	var vs []wire.Voter
	if c.opt.ExpectedVotes == 0 || c.opt.ExpectedVotes >= c.opt.ConfiguredVotes() {
		for _, n := range c.opt.Nodes {
			vs = append(vs, wire.Voter(n))
		}
	}
	return mergeVoters(vs, members, c.votes)
}

// mergeVoters adds members to vs (sorted by id) with their current votes;
// members already in vs get their current votes too.
func mergeVoters(vs []wire.Voter, members []totem.NodeID, votes map[totem.NodeID]uint32) []wire.Voter {
	out := slices.Clone(vs)
	for _, m := range members {
		i, ok := slices.BinarySearchFunc(out, m, voterByID)
		if ok {
			out[i].Votes = votes[m]
		} else {
			out = slices.Insert(out, i, wire.Voter{ID: m, Votes: votes[m]})
		}
	}
	return out
}

// evaluate decides the partition's quorum from its members, the lineage to
// judge it by (the newest one any member knows, or a proposed change) and
// whether wait_for_all is already lifted (authority). It looks only at
// agreed state, so every member calling it after the same history gets the
// same answer:
//
//	voters   = the lineage's voters (none yet: the node list and members)
//	expected = max(lineage expected, Σ voters' votes)   (none: merged base)
//	total    = Σ votes of the members that are voters and not leaving
//	quorum   = expected/2 + 1, or 1 with two_node and at most 2 members
//	waiting  = wait_for_all && !authority && total < expected
//	quorate  = !waiting && total ≥ quorum, or an exact half holding the
//	           lineage's tie-breaker (auto_tie_breaker)
//
// A quorate partition records a new lineage version when anything changed:
// all members become voters, expected votes are raised to the voters'
// votes (corosync's "expected votes follow the votes present") and the
// partition's lowest/highest node become the tie-breakers. An inquorate
// partition adopts the newest lineage its members know but never changes
// one.
func (c *Calc) evaluate(members []totem.NodeID, l wire.Lineage, authority, proposed bool) {
	var voters []wire.Voter
	exp := l.Expected
	if l.None() {
		voters = c.initialVoters(members)
		exp = c.base
	} else {
		voters = mergeVoters(l.Voters, nil, c.votes)
	}
	var votesV, total uint32
	var active []totem.NodeID
	for i, v := range voters {
		if slices.Contains(members, v.ID) {
			voters[i].Votes = c.votes[v.ID] // members' votes as they report them
		}
		votesV += voters[i].Votes
	}
	for _, m := range members {
		if c.leaving[m] {
			continue
		}
		active = append(active, m)
		if _, ok := findVoter(voters, m); ok {
			total += c.votes[m]
		}
	}
	if !l.None() {
		exp = max(exp, votesV)
	}
	twoNode := c.opt.TwoNode && len(active) <= 2
	quorumOf := func(e uint32) uint32 {
		if twoNode {
			return 1
		}
		return e/2 + 1
	}
	quorum := quorumOf(exp)
	waiting := c.opt.WaitForAll && !authority && total < exp
	quorate := !waiting && total >= quorum
	// An exact half: the half holding the lineage's tie-breaker wins.
	// corosync also lets "half-1" of an odd expected win; that is not
	// safe (the other side may hold a plain majority of nodes this side
	// never saw), so ringmaster requires an exact half.
	if !quorate && !waiting && c.opt.AutoTieBreaker != ATBNone && 2*total == exp && c.holdsTieBreaker(active, l) {
		quorate = true
	}
	c.voterIDs = c.voterIDs[:0]
	for _, v := range voters {
		c.voterIDs = append(c.voterIDs, v.ID)
	}
	if quorate {
		next := wire.Lineage{Voters: mergeVoters(voters, active, c.votes), Members: slices.Clone(active)}
		var nv uint32
		for _, v := range next.Voters {
			nv += v.Votes
		}
		next.Expected = max(exp, nv)
		switch {
		case !proposed && !l.None() && sameContent(&next, &l):
			// the newest known decision still stands: keep its version
		case !c.lineage.None() && sameContent(&next, &c.lineage):
			l = cloneLineage(c.lineage)
		default:
			base := c.lineage
			if !proposed && l.Newer(&base) {
				base = l
			}
			next.Ring, next.Step = c.ring, 1
			if !base.None() && !base.Ring.Less(c.ring) {
				next.Ring, next.Step = base.Ring, base.Step+1
			}
			l = next
		}
		exp, total, quorum = l.Expected, 0, quorumOf(l.Expected)
		for _, m := range active {
			total += c.votes[m]
		}
		c.voterIDs = c.voterIDs[:0]
		for _, v := range l.Voters {
			c.voterIDs = append(c.voterIDs, v.ID)
		}
	}
	// Adopt a newer lineage (a new decision, or the newest one a member
	// knows); a proposal that did not make the partition quorate is
	// dropped.
	if (quorate || !proposed) && l.Newer(&c.lineage) {
		c.lineage = cloneLineage(l)
		c.dirty = true
	}
	c.members = members
	c.expected, c.total, c.quorum, c.quorate = exp, total, quorum, quorate
	c.waiting = c.opt.WaitForAll && !quorate // re-armed whenever quorum is lost, as in corosync
	if c.opt.ExpectedVotesTracking && exp > c.evTracking {
		c.evTracking, c.dirty = exp, true
	}
	if c.lms {
		for _, m := range active {
			if c.votes[m] > 1 {
				c.lms = false
				c.lmsArmed = false
				c.warnings = append(c.warnings, fmt.Sprintf("last_man_standing needs every node to vote 1 (node %d votes %d): last_man_standing is disabled", m, c.votes[m]))
				break
			}
		}
	}
}

// CheckExpected validates `quorum expected N` on the node that asks,
// before it goes through the ring (corosync's rule: the new quorum must
// lie between half the votes present and the votes present, so the change
// can neither make the partition inquorate nor let a minority win).
func (c *Calc) CheckExpected(n uint32) error {
	if n == 0 {
		return fmt.Errorf("%w: expected votes must be at least 1", ErrInvalid)
	}
	return c.checkQuorum(n, c.presentVotes(), c.active())
}

// CheckVotes validates `quorum votes --node ID N`.
func (c *Calc) CheckVotes(node totem.NodeID, v uint32) error {
	if _, ok := c.votes[node]; !ok && !c.configured(node) {
		return fmt.Errorf("%w: node %d", ErrNoSuchNode, node)
	}
	if v > 255 {
		return fmt.Errorf("%w: votes must be 0-255, got %d", ErrInvalid, v)
	}
	total := c.presentVotes()
	if slices.Contains(c.members, node) && !c.leaving[node] {
		total = total - c.votes[node] + v
	}
	return c.checkQuorum(c.expected, total, c.active())
}

func (c *Calc) presentVotes() uint32 {
	var t uint32
	for _, m := range c.members {
		if !c.leaving[m] {
			t += c.votes[m]
		}
	}
	return t
}

func (c *Calc) checkQuorum(exp, total uint32, active int) error {
	q := max(exp/2+1, total/2+1)
	if c.opt.TwoNode && active <= 2 {
		q = 1
	}
	if q < total/2 || q > total {
		return fmt.Errorf("%w: expected votes %d would make quorum %d with %d votes present", ErrInvalid, exp, q, total)
	}
	return nil
}

func (c *Calc) configured(id totem.NodeID) bool {
	for _, n := range c.opt.Nodes {
		if n.ID == id {
			return true
		}
	}
	return false
}

func (c *Calc) active() int {
	n := 0
	for _, m := range c.members {
		if !c.leaving[m] {
			n++
		}
	}
	return n
}
