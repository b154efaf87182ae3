// Package calc is votequorum's pure quorum calculator, corosync's
// votequorum arithmetic: every node has votes, a partition is quorate when
// the votes of its members reach quorum = expected_votes/2 + 1, and the
// options two_node, wait_for_all, last_man_standing, auto_tie_breaker and
// allow_downscale bend that rule the way votequorum(5) describes.
//
// Inputs are the options, membership changes, the nodes' state messages,
// reconfigurations and the time (as a value); outputs are the quorum
// status, the node's own state message, the state to persist and the
// last_man_standing deadline. No clocks, goroutines, logging or I/O, so a
// whole cluster of calculators runs in one test (sim_test.go). The driver
// is the votequorum package's Service; the messages are votequorum/wire's.
//
// The files follow the concerns: calc.go the state machine (sync, state
// messages, reconfiguration), arith.go the quorum arithmetic (evaluate and
// the checks of runtime changes), lineage.go the quorum lineage and what is
// persisted, lms.go last_man_standing, allow_downscale's leave and the
// auto_tie_breaker, status.go what the calculator shows, options.go the
// options and corosync's implied settings.
//
// # Agreement
//
// Every member computes the quorum of its partition from the same inputs in
// the same order: the state messages of all members (delivered before the
// sync barrier, see totem/exec), then reconfigurations and
// last_man_standing expiries, which are messages in the ordered stream too.
// Where corosync lets each node keep private state (its own expected votes,
// its wait_for_all flag, the tie-breaker node), ringmaster carries that
// state in the state message and merges it with a rule every member applies
// identically (see SyncDone), so all members of a partition always show the
// same quorum.
//
// # Safety: the quorum lineage
//
// corosync lowers expected votes at run time (last_man_standing,
// allow_downscale, `quorum expected`) and lets a partition adopt the lower
// value of any quorate member. The partition simulator shows where that
// lets two partitions be quorate at once: two halves of a partition that
// lowered expected votes to 3 each topped up with nodes that were away.
// ringmaster therefore keeps, with the expected votes, the set of voters
// they were computed from (a Lineage, as in dynamic linear voting): each
// quorate decision records its voters and expected votes under a version
// (ring id, step); a partition evaluates the newest lineage any member
// knows and only the votes of that lineage's voters count towards its
// quorum. Expected votes never fall below the voters' votes, so two
// disjoint partitions can never both hold a majority of the same lineage,
// and a partition still on an older lineage lacks the majority that went
// into the newer one. The lineage is persisted in state_dir with the
// expected-votes tracking value, so a restarted node remembers it. With
// the default options this is exactly corosync's arithmetic; it only makes
// a difference after expected votes were lowered.
//
// # State of one calculator
//
//	state \ event   | SyncStart   | NodeInfo(ring R)     | SyncDone          | Reconfigure   | ApplyLMS(R)
//	----------------+-------------+----------------------+-------------------+---------------+------------------
//	stable(R)       | → sync(R')  | leaving notice: AD   | -                 | apply now     | R current: lower
//	                |             | recompute            |                   |               | expected to votes
//	sync(R')        | → sync(R'') | R': record; else     | merge, decide,    | defer to      | ignore
//	                |             | ignore (stale)       | → stable(R')      | SyncDone      |
package calc

import (
	"errors"
	"slices"
	"time"

	"ringmaster/totem"
	"ringmaster/votequorum/wire"
)

// Sentinel errors (errors.Is).
var (
	// ErrInvalid: a reconfiguration corosync would refuse (for example
	// expected votes that would make the cluster inquorate at once).
	ErrInvalid = errors.New("votequorum: invalid value")
	// ErrNoSuchNode: votes for a node votequorum has never heard of.
	ErrNoSuchNode = errors.New("votequorum: no such node")
)

// Persisted is what a node keeps in state_dir across restarts.
type Persisted struct {
	// ExpectedVotesTracking is the highest expected votes seen
	// (corosync's ev_tracking), kept with expected_votes_tracking.
	ExpectedVotesTracking uint32 `json:"expected_votes_tracking"`
	// Lineage is the newest quorate decision the node knows of.
	Lineage wire.Lineage `json:"lineage"`
}

// Calc is the pure quorum calculator of one node. It is not safe for
// concurrent use; the Service calls it under the executive's lock.
type Calc struct {
	opt      Options
	warnings []string
	local    totem.NodeID
	ownVotes uint32
	lms      bool // last_man_standing still active (switched off by a node voting > 1)

	// The agreed state of the current partition.
	ring    totem.RingID
	members []totem.NodeID
	prev    []totem.NodeID // agreed previous membership (union of members' Prev)
	votes   map[totem.NodeID]uint32
	leaving map[totem.NodeID]bool
	lineage wire.Lineage // newest lineage of the partition (persisted)
	base    uint32       // agreed expected votes without a lineage
	// status
	expected, total, quorum uint32
	quorate, waiting        bool
	voterIDs                []totem.NodeID // the voters of the last evaluation (Member.NotCounted)
	leavingSelf             bool

	evBarrier  uint32 // allow_downscale floor: configured (or set) expected votes
	evTracking uint32 // highest expected votes seen
	dirty      bool   // persisted state changed

	lmsArmed bool
	lmsAt    time.Time

	syncing     bool
	syncRing    totem.RingID
	syncMembers []totem.NodeID
	infos       map[totem.NodeID]wire.NodeInfo
	deferred    []wire.Reconfigure
}

// New builds the calculator of node local from the options and what an
// earlier run persisted (zero when nothing). The calculator starts as a
// one-node partition, as corosync does before the first membership.
func New(opt Options, local totem.NodeID, saved Persisted) (*Calc, error) {
	opt, warn, err := opt.Normalize()
	if err != nil {
		return nil, err
	}
	c := &Calc{
		opt:      opt,
		warnings: warn,
		local:    local,
		ownVotes: opt.VotesOf(local),
		lms:      opt.LastManStanding,
		votes:    map[totem.NodeID]uint32{},
		leaving:  map[totem.NodeID]bool{},
		lineage:  cloneLineage(saved.Lineage),
	}
	c.votes[local] = c.ownVotes
	c.evBarrier = opt.ConfiguredExpected()
	c.base = c.evBarrier
	if opt.ExpectedVotesTracking {
		c.evTracking = saved.ExpectedVotesTracking
		c.base = max(c.base, c.evTracking)
	}
	c.members = []totem.NodeID{local}
	c.evaluate(c.members, c.lineage, false, false)
	return c, nil
}

// Options are the options in effect (after Normalize).
func (c *Calc) Options() Options { return c.opt }

// Warnings lists the features Normalize (or a node voting more than 1 with
// last_man_standing) switched off.
func (c *Calc) Warnings() []string { return slices.Clone(c.warnings) }

// Quorate reports whether the partition has quorum.
func (c *Calc) Quorate() bool { return c.quorate }

// Syncing reports whether a membership change is being synchronised.
func (c *Calc) Syncing() bool { return c.syncing }

// Lineage is the newest lineage the partition knows.
func (c *Calc) Lineage() wire.Lineage { return cloneLineage(c.lineage) }

// SyncStart begins the sync of a new membership and returns the state
// message this node must multicast. A SyncStart during a sync restarts it.
func (c *Calc) SyncStart(ring totem.RingID, members []totem.NodeID) wire.NodeInfo {
	c.syncing = true
	c.syncRing = ring
	c.syncMembers = slices.Compact(slices.Sorted(slices.Values(members)))
	c.infos = map[totem.NodeID]wire.NodeInfo{}
	c.deferred = nil
	return c.info(ring)
}

// NodeInfo records a member's state message. During a sync it belongs to
// the sync of its ring (others are stale and ignored). Outside a sync the
// only meaningful message is a leaving notice of a member of the current
// partition: with allow_downscale a quorate partition lowers expected votes
// to the votes left at once (not below the configured expected votes). It
// reports whether the status changed.
func (c *Calc) NodeInfo(from totem.NodeID, in wire.NodeInfo) bool {
	if c.syncing {
		if in.Ring == c.syncRing && slices.Contains(c.syncMembers, from) {
			c.infos[from] = in
		}
		return false
	}
	if in.Ring != c.ring || !slices.Contains(c.members, from) || in.Flags&wire.InfoLeaving == 0 || !c.opt.AllowDownscale || c.leaving[from] {
		return false
	}
	c.leaving[from] = true
	if !c.quorate {
		c.evaluate(c.members, c.lineage, !c.waiting, false)
		return true
	}
	c.evaluate(c.members, c.proposeCurrent(c.evBarrier), true, true)
	return true
}

// SyncDone ends the sync: every member's state message has been delivered
// (or never will be). The partition is judged by the newest lineage any
// member knows (without one, by the highest expected votes any member
// reports, which includes each node's tracking floor); wait_for_all is
// lifted when a member was quorate (the partition joins a running cluster)
// or all expected votes are present. last_man_standing arms its window when
// the partition is quorate, nodes of the previous partition are missing
// and voters are absent; an armed window that is not re-armed keeps
// running, as in corosync.
func (c *Calc) SyncDone(now time.Time) {
	if !c.syncing {
		return
	}
	members := c.syncMembers
	var base uint32
	auth := false
	var prev []totem.NodeID
	newest := wire.Lineage{}
	leaving := map[totem.NodeID]bool{}
	for _, m := range members {
		in, ok := c.infos[m]
		if !ok {
			// Cannot happen after a completed barrier; count the node
			// with what is known rather than not at all.
			in = wire.NodeInfo{Votes: c.votesOf(m), Expected: c.base}
		}
		c.votes[m] = in.Votes
		if m == c.local {
			c.ownVotes = in.Votes
		}
		if in.Flags&wire.InfoLeaving != 0 {
			leaving[m] = true
		}
		base = max(base, in.Expected)
		if in.Flags&wire.InfoQuorate != 0 {
			auth = true
		}
		if in.Lineage.Newer(&newest) {
			newest = in.Lineage
		}
		prev = append(prev, in.Prev...)
	}
	slices.Sort(prev)
	c.prev = slices.Compact(prev)
	c.leaving = leaving
	c.base = max(base, 1)
	c.ring = c.syncRing
	c.syncing = false
	c.infos = nil
	c.evaluate(members, cloneLineage(newest), auth, false)
	if c.lms && c.quorate && countOutside(c.prev, members) > 0 && c.total < c.expected {
		c.lmsArmed = true
		c.lmsAt = now.Add(c.opt.LastManStandingWindow)
	}
	deferred := c.deferred
	c.deferred = nil
	for _, r := range deferred {
		c.apply(r)
	}
}

func (c *Calc) votesOf(id totem.NodeID) uint32 {
	if v, ok := c.votes[id]; ok {
		return v
	}
	return c.opt.VotesOf(id)
}

// Reconfigure applies a runtime change delivered by the ring. During a
// sync it is applied right after SyncDone, which every member of the new
// partition does at the same point.
func (c *Calc) Reconfigure(r wire.Reconfigure) {
	if c.syncing {
		c.deferred = append(c.deferred, r)
		return
	}
	c.apply(r)
}

// apply: these are operator overrides, as in corosync. Lowering expected
// votes below the voters' votes makes the current members the only voters
// (the operator declares the others gone), which is what lets a partition
// continue, and what makes it the operator's job to be sure.
func (c *Calc) apply(r wire.Reconfigure) {
	switch r.Param {
	case wire.ParamExpected:
		if r.Value == 0 {
			return
		}
		c.evBarrier = r.Value
		l := c.current()
		var votesV uint32
		for _, v := range mergeVoters(l.Voters, c.members, c.votes) {
			votesV += v.Votes
		}
		if r.Value >= votesV {
			l.Expected = r.Value
		} else {
			l = c.proposeCurrent(r.Value)
		}
		c.evaluate(c.members, l, !c.waiting, true)
	case wire.ParamVotes:
		c.votes[r.Node] = r.Value
		if r.Node == c.local {
			c.ownVotes = r.Value
		}
		l := c.current()
		for i := range l.Voters {
			if l.Voters[i].ID == r.Node {
				l.Voters[i].Votes = r.Value
			}
		}
		c.evaluate(c.members, l, !c.waiting, true)
	case wire.ParamCancelWFA:
		c.evaluate(c.members, cloneLineage(c.lineage), true, false)
	}
}

// Ring is the partition's ring (of the last completed sync).
func (c *Calc) Ring() totem.RingID { return c.ring }
