// Package votequorum is ringmaster's quorum service, corosync's votequorum
// in behaviour: every node has votes, a partition is quorate when the votes
// of its members reach quorum = expected_votes/2 + 1, and the options
// two_node, wait_for_all, last_man_standing, auto_tie_breaker and
// allow_downscale bend that rule the way votequorum(5) describes.
//
// The package has two layers:
//
//   - Calc, the pure calculator: inputs are the options, membership
//     changes, the nodes' state messages, reconfigurations and the time (as
//     a value); outputs are the quorum status, the node's own state message,
//     the state to persist and the last_man_standing deadline. No clocks,
//     goroutines or I/O, so a whole cluster of calculators runs in one test
//     (sim_test.go).
//   - Service, the driver: an executive service that multicasts the node's
//     state in the sync step after each membership change, feeds what the
//     ring delivers to the calculator, persists its state in state_dir and
//     answers clients.
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
package votequorum

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"ringmaster/totem"
)

// Sentinel errors (errors.Is).
var (
	// ErrNotQuorate: the partition does not have quorum.
	ErrNotQuorate = errors.New("votequorum: not quorate")
	// ErrInvalid: a reconfiguration corosync would refuse (for example
	// expected votes that would make the cluster inquorate at once).
	ErrInvalid = errors.New("votequorum: invalid value")
	// ErrNoSuchNode: votes for a node votequorum has never heard of.
	ErrNoSuchNode = errors.New("votequorum: no such node")
)

// InfoFlags describe a node in its state message. Numbers are part of the
// wire protocol: append only.
type InfoFlags uint32

// State message flags.
const (
	// InfoQuorate: the node was quorate when it sent the message (its
	// last completed sync); such a node lifts wait_for_all for the
	// partition it joins (it joins a running cluster).
	InfoQuorate InfoFlags = 1 << 0
	// InfoLeaving: the node is shutting down cleanly (allow_downscale).
	InfoLeaving InfoFlags = 1 << 1
	// InfoWaitForAll: the node is still waiting for all nodes.
	InfoWaitForAll InfoFlags = 1 << 2
)

// Voter is a node whose votes count in a lineage.
type Voter struct {
	ID    totem.NodeID `json:"nodeid"`
	Votes uint32       `json:"votes"`
}

// Lineage is the record of the last quorate decision a node took part in
// (or learnt of): the expected votes and the voters they stand for, and
// the tie-breaker nodes of that partition. See the package doc.
type Lineage struct {
	// Ring and Step version the lineage: newer rings win, and changes in
	// one ring (reconfiguration, last_man_standing) count up Step.
	Ring     totem.RingID `json:"ring"`
	Step     uint32       `json:"step"`
	Expected uint32       `json:"expected_votes"`
	Voters   []Voter      `json:"voters"`
	// Members is the partition that made this decision (sorted): the
	// auto_tie_breaker nodes are taken from it, so both halves of a split
	// of that partition agree on them.
	Members []totem.NodeID `json:"members"`
}

// None reports the empty lineage of a node that was never quorate.
func (l *Lineage) None() bool { return l.Expected == 0 }

// Newer orders lineages by version; any lineage is newer than none.
func (l *Lineage) Newer(o *Lineage) bool {
	if l.None() || o.None() {
		return !l.None() && o.None()
	}
	if l.Ring != o.Ring {
		return o.Ring.Less(l.Ring)
	}
	return l.Step > o.Step
}

func (l *Lineage) sameContent(o *Lineage) bool {
	return l.Expected == o.Expected && slices.Equal(l.Members, o.Members) && slices.Equal(l.Voters, o.Voters)
}

func (l *Lineage) voter(id totem.NodeID) (Voter, bool) {
	i, ok := slices.BinarySearchFunc(l.Voters, id, func(v Voter, id totem.NodeID) int { return cmp.Compare(v.ID, id) })
	if !ok {
		return Voter{}, false
	}
	return l.Voters[i], true
}

func (l Lineage) clone() Lineage {
	l.Voters = slices.Clone(l.Voters)
	l.Members = slices.Clone(l.Members)
	return l
}

// NodeInfo is one node's state as multicast in the sync step (corosync's
// req_exec_quorum_nodeinfo, plus what ringmaster needs to make every
// member's decision identical).
type NodeInfo struct {
	// Ring the message belongs to: messages of another ring are stale.
	Ring  totem.RingID
	Votes uint32
	// Expected is the node's expected votes without a lineage: the
	// configured value raised to its expected-votes tracking floor.
	Expected uint32
	Flags    InfoFlags
	// Prev is the membership of the node's previous partition, for the
	// last_man_standing "nodes left" rule.
	Prev []totem.NodeID
	// Lineage is the newest quorate decision the node knows of.
	Lineage Lineage
}

// Param names what a Reconfigure changes. Numbers are part of the wire
// protocol (corosync's VOTEQUORUM_RECONFIG_PARAM_*): append only.
type Param uint8

// Reconfiguration parameters.
const (
	ParamExpected  Param = 1 // expected votes := Value
	ParamVotes     Param = 2 // votes of Node := Value
	ParamCancelWFA Param = 3 // stop waiting for all nodes
)

// Reconfigure is a runtime change that goes through the ring so that all
// members apply it at the same point of the stream.
type Reconfigure struct {
	Param Param
	Node  totem.NodeID
	Value uint32
	// Nonce lets the sender match the delivery to its client's request.
	Nonce uint64
}

// Persisted is what a node keeps in state_dir across restarts.
type Persisted struct {
	// ExpectedVotesTracking is the highest expected votes seen
	// (corosync's ev_tracking), kept with expected_votes_tracking.
	ExpectedVotesTracking uint32 `json:"expected_votes_tracking"`
	// Lineage is the newest quorate decision the node knows of.
	Lineage Lineage `json:"lineage"`
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
	lineage Lineage // newest lineage of the partition (persisted)
	base    uint32  // agreed expected votes without a lineage
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
	infos       map[totem.NodeID]NodeInfo
	deferred    []Reconfigure
}

// NewCalc builds the calculator of node local from the options and what an
// earlier run persisted (zero when nothing). The calculator starts as a
// one-node partition, as corosync does before the first membership.
func NewCalc(opt Options, local totem.NodeID, saved Persisted) (*Calc, error) {
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
		lineage:  saved.Lineage.clone(),
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
func (c *Calc) Lineage() Lineage { return c.lineage.clone() }

// initialVoters are the voters before any quorate decision: every listed
// node and every member. An expected_votes below the node list's votes
// says that only that many votes are expected, so then only the members
// count (two partitions may then both be quorate: that is what such an
// expected_votes asks for).
func (c *Calc) initialVoters(members []totem.NodeID) []Voter {
	var vs []Voter
	if c.opt.ExpectedVotes == 0 || c.opt.ExpectedVotes >= c.opt.ConfiguredVotes() {
		for _, n := range c.opt.Nodes {
			vs = append(vs, Voter(n))
		}
	}
	return mergeVoters(vs, members, c.votes)
}

// mergeVoters adds members to vs (sorted by id) with their current votes;
// members already in vs get their current votes too.
func mergeVoters(vs []Voter, members []totem.NodeID, votes map[totem.NodeID]uint32) []Voter {
	out := slices.Clone(vs)
	for _, m := range members {
		i, ok := slices.BinarySearchFunc(out, m, func(v Voter, id totem.NodeID) int { return cmp.Compare(v.ID, id) })
		if ok {
			out[i].Votes = votes[m]
		} else {
			out = slices.Insert(out, i, Voter{ID: m, Votes: votes[m]})
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
func (c *Calc) evaluate(members []totem.NodeID, l Lineage, authority, proposed bool) {
	var voters []Voter
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
		if _, ok := (&Lineage{Voters: voters}).voter(m); ok {
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
		next := Lineage{Voters: mergeVoters(voters, active, c.votes), Members: slices.Clone(active)}
		var nv uint32
		for _, v := range next.Voters {
			nv += v.Votes
		}
		next.Expected = max(exp, nv)
		switch {
		case !proposed && !l.None() && next.sameContent(&l):
			// the newest known decision still stands: keep its version
		case !c.lineage.None() && next.sameContent(&c.lineage):
			l = c.lineage.clone()
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
		c.lineage = l.clone()
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

// holdsTieBreaker reports whether the active members hold the tie-breaker
// of lineage l. lowest/highest: the lowest/highest node of the partition
// that made the lineage (none before the first quorate partition, as in
// corosync). A list: the first listed node that was in that partition
// decides (a listed node that was not "was not in the cluster before the
// split" and is skipped, corosync's rule). Both halves of a split judge by
// the same lineage, so they agree on the node.
func (c *Calc) holdsTieBreaker(active []totem.NodeID, l Lineage) bool {
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

// info is this node's state message for ring.
func (c *Calc) info(ring totem.RingID) NodeInfo {
	var f InfoFlags
	if c.quorate {
		f |= InfoQuorate
	}
	if c.waiting {
		f |= InfoWaitForAll
	}
	if c.leavingSelf {
		f |= InfoLeaving
	}
	return NodeInfo{
		Ring: ring, Votes: c.ownVotes, Expected: c.base, Flags: f,
		Prev: slices.Clone(c.members), Lineage: c.lineage.clone(),
	}
}

// SyncStart begins the sync of a new membership and returns the state
// message this node must multicast. A SyncStart during a sync restarts it.
func (c *Calc) SyncStart(ring totem.RingID, members []totem.NodeID) NodeInfo {
	c.syncing = true
	c.syncRing = ring
	c.syncMembers = slices.Compact(slices.Sorted(slices.Values(members)))
	c.infos = map[totem.NodeID]NodeInfo{}
	c.deferred = nil
	return c.info(ring)
}

// NodeInfo records a member's state message. During a sync it belongs to
// the sync of its ring (others are stale and ignored). Outside a sync the
// only meaningful message is a leaving notice of a member of the current
// partition: with allow_downscale a quorate partition lowers expected votes
// to the votes left at once (not below the configured expected votes). It
// reports whether the status changed.
func (c *Calc) NodeInfo(from totem.NodeID, in NodeInfo) bool {
	if c.syncing {
		if in.Ring == c.syncRing && slices.Contains(c.syncMembers, from) {
			c.infos[from] = in
		}
		return false
	}
	if in.Ring != c.ring || !slices.Contains(c.members, from) || in.Flags&InfoLeaving == 0 || !c.opt.AllowDownscale || c.leaving[from] {
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

// proposeCurrent is a lineage of the active members only, with expected
// votes max(their votes, floor): the "by current nodes" recalculation of
// last_man_standing, allow_downscale and a lowered expected votes. It
// keeps the current version; evaluate versions it if it is adopted.
func (c *Calc) proposeCurrent(floor uint32) Lineage {
	var l Lineage
	var total uint32
	for _, m := range c.members {
		if !c.leaving[m] {
			l.Voters = append(l.Voters, Voter{ID: m, Votes: c.votes[m]})
			total += c.votes[m]
		}
	}
	l.Expected = max(total, floor, 1)
	return l
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
	newest := Lineage{}
	leaving := map[totem.NodeID]bool{}
	for _, m := range members {
		in, ok := c.infos[m]
		if !ok {
			// Cannot happen after a completed barrier; count the node
			// with what is known rather than not at all.
			in = NodeInfo{Votes: c.votesOf(m), Expected: c.base}
		}
		c.votes[m] = in.Votes
		if m == c.local {
			c.ownVotes = in.Votes
		}
		if in.Flags&InfoLeaving != 0 {
			leaving[m] = true
		}
		base = max(base, in.Expected)
		if in.Flags&InfoQuorate != 0 {
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
	c.evaluate(members, newest.clone(), auth, false)
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
func (c *Calc) Reconfigure(r Reconfigure) {
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
func (c *Calc) apply(r Reconfigure) {
	switch r.Param {
	case ParamExpected:
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
	case ParamVotes:
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
	case ParamCancelWFA:
		c.evaluate(c.members, c.lineage.clone(), true, false)
	}
}

// current is the lineage to change: the partition's, or (before the first
// quorate decision) the initial voters with the merged base.
func (c *Calc) current() Lineage {
	if !c.lineage.None() {
		return c.lineage.clone()
	}
	return Lineage{Expected: c.base, Voters: c.initialVoters(c.members)}
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

// LMSDeadline is when the armed last_man_standing window ends.
func (c *Calc) LMSDeadline() (time.Time, bool) { return c.lmsAt, c.lmsArmed && c.lms }

// LMSDue reports whether the window has ended at now: the driver then
// multicasts an expiry for the current ring (Ring) so that every member
// applies it at the same point (ApplyLMS).
func (c *Calc) LMSDue(now time.Time) bool {
	return c.lmsArmed && c.lms && !c.syncing && c.quorate && !now.Before(c.lmsAt)
}

// Ring is the partition's ring (of the last completed sync).
func (c *Calc) Ring() totem.RingID { return c.ring }

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
func (c *Calc) Leave() NodeInfo {
	c.leavingSelf = true
	return c.info(c.ring)
}

// TakePersisted returns the state to keep in state_dir and whether it
// changed since the last call (the driver writes it then).
func (c *Calc) TakePersisted() (Persisted, bool) {
	d := c.dirty
	c.dirty = false
	return Persisted{ExpectedVotesTracking: c.evTracking, Lineage: c.lineage.clone()}, d
}

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

// Status returns the current status (names are left empty; the service
// fills them in from the node list).
func (c *Calc) Status() Status {
	st := Status{
		NodeID:           uint32(c.local),
		Ring:             c.ring,
		Quorate:          c.quorate,
		ExpectedVotes:    c.expected,
		TotalVotes:       c.total,
		Quorum:           c.quorum,
		Flags:            []string{},
		WaitForAllStatus: c.waiting,
		Members:          []Member{},
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
		{c.quorate, FlagQuorate},
		{c.opt.TwoNode, FlagTwoNode},
		{c.opt.WaitForAll, FlagWaitForAll},
		{c.lms, FlagLastManStanding},
		{c.opt.AutoTieBreaker != ATBNone, FlagAutoTieBreaker},
		{c.opt.AllowDownscale, FlagAllowDownscale},
	} {
		if f.on {
			st.Flags = append(st.Flags, f.name)
		}
	}
	for _, m := range c.members {
		st.Members = append(st.Members, Member{
			NodeID: uint32(m), Votes: c.votes[m], Leaving: c.leaving[m], Local: m == c.local,
			NotCounted: !c.leaving[m] && !slices.Contains(c.voterIDs, m),
		})
	}
	return st
}

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
