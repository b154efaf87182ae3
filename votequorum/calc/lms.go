package calc

import (
	"slices"
	"time"

	"ringmaster/totem"
	"ringmaster/votequorum/wire"
)

// holdsTieBreaker reports whether the active members hold the tie-breaker
// of lineage l. lowest/highest: the lowest/highest node of the partition
// that made the lineage (none before the first quorate partition, as in
// corosync). A list: the first listed node that was in that partition
// decides (a listed node that was not "was not in the cluster before the
// split" and is skipped, corosync's rule). Both halves of a split judge by
// the same lineage, so they agree on the node.
func (c *Calc) holdsTieBreaker(active []totem.NodeID, l wire.Lineage) bool {
	if len(l.Members) == 0 {
		return false
	}
	switch c.opt.AutoTieBreaker {
	case ATBLowest:
		return slices.Contains(active, l.Members[0])
	case ATBHighest:
		return slices.Contains(active, l.Members[len(l.Members)-1])
	case ATBList:
		for _, id := range c.opt.TieBreakerNodes {
			if slices.Contains(l.Members, id) {
				return slices.Contains(active, id)
			}
		}
	}
	return false
}

// countOutside counts the nodes of prev that are not in members.
func countOutside(prev, members []totem.NodeID) int {
	n := 0
	for _, p := range prev {
		if !slices.Contains(members, p) {
			n++
		}
	}
	return n
}

// LMSDeadline is when the armed last_man_standing window ends.
func (c *Calc) LMSDeadline() (time.Time, bool) { return c.lmsAt, c.lmsArmed && c.lms }

// LMSDue reports whether the window has ended at now: the driver then
// multicasts an expiry for the current ring (Ring) so that every member
// applies it at the same point (ApplyLMS).
func (c *Calc) LMSDue(now time.Time) bool {
	return c.lmsArmed && c.lms && !c.syncing && c.quorate && !now.Before(c.lmsAt)
}

// ApplyLMS applies a delivered last_man_standing expiry: if it is for the
// current ring and the partition is still quorate, the members become the
// only voters and expected votes drop to their votes (not below the
// configured expected votes with allow_downscale). It reports whether the
// status changed; applying it twice is harmless.
func (c *Calc) ApplyLMS(ring totem.RingID) bool {
	if c.syncing || ring != c.ring {
		return false
	}
	c.lmsArmed = false
	if !c.quorate || !c.lms {
		return false
	}
	var floor uint32
	if c.opt.AllowDownscale {
		floor = c.evBarrier
	}
	l := c.proposeCurrent(floor)
	if l.Expected >= c.expected {
		return false
	}
	c.evaluate(c.members, l, true, true)
	return true
}

// Leave marks this node as leaving cleanly and returns the notice to
// multicast (only meaningful with allow_downscale).
func (c *Calc) Leave() wire.NodeInfo {
	c.leavingSelf = true
	return c.info(c.ring)
}
