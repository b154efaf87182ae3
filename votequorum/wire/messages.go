package wire

import (
	"ringmaster/totem"
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
// the tie-breaker nodes of that partition. See votequorum/calc ("Safety:
// the quorum lineage").
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
