// Package totem holds the types shared by the Totem ring (totem/srp, totem/pg,
// the transports and the ring driver) and the executive that runs services on
// top of it. The protocol itself is in totem/srp; this package has no logic.
package totem

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// NodeID identifies a processor. It is configured per node (`nodeid`) and is
// never 0: 0 means "no node" on the wire.
type NodeID uint32

// RingID names one ring (one regular configuration). Rep is the lowest node
// ID of the ring; Seq grows with every new ring and survives restarts.
type RingID struct {
	Rep NodeID `json:"rep"`
	Seq uint64 `json:"seq"`
}

func (r RingID) String() string { return fmt.Sprintf("%d.%d", r.Rep, r.Seq) }

// Less orders ring IDs by sequence, then representative.
func (r RingID) Less(o RingID) bool {
	if r.Seq != o.Seq {
		return r.Seq < o.Seq
	}
	return r.Rep < o.Rep
}

// Guarantee is the delivery guarantee a message is sent with.
type Guarantee uint8

// Guarantees. Numbers are part of the wire protocol: append only.
const (
	// Agreed: delivered once every message with a lower sequence number on
	// the ring has been delivered (total order).
	Agreed Guarantee = 0
	// Safe: delivered only once every member of the configuration is known
	// to hold the message.
	Safe Guarantee = 1
)

func (g Guarantee) String() string {
	switch g {
	case Agreed:
		return "agreed"
	case Safe:
		return "safe"
	}
	return fmt.Sprintf("guarantee(%d)", uint8(g))
}

// ConfKind tells a transitional configuration from a regular one (extended
// virtual synchrony).
type ConfKind uint8

const (
	// Transitional: the members of the old ring that move together into the
	// new one; delivered between the old and the new regular configuration.
	Transitional ConfKind = 0
	// Regular: a newly installed ring.
	Regular ConfKind = 1
)

func (k ConfKind) String() string {
	if k == Transitional {
		return "transitional"
	}
	return "regular"
}

// ConfChange is a configuration installed by the ring. Members, Left and
// Joined are sorted by node ID.
type ConfChange struct {
	Kind    ConfKind
	Ring    RingID
	Members []NodeID
	Left    []NodeID
	Joined  []NodeID
}

// Message is one application message delivered by the ring, after
// reassembly: the (Service, ID) pair routes it inside the executive.
type Message struct {
	Sender    NodeID
	Service   uint16
	ID        uint16
	Guarantee Guarantee
	Payload   []byte
}

// State is the protocol state of the local processor.
type State string

// Protocol states as shown to operators (`ringctl status`).
const (
	StateOperational State = "operational"
	StateGather      State = "gather"
	StateCommit      State = "commit"
	StateRecovery    State = "recovery"
)

// Counters are the ring's statistics, published under stats.* in confdb.
type Counters struct {
	DatagramsIn  uint64 `json:"datagrams_in"`
	DatagramsOut uint64 `json:"datagrams_out"`
	// Bytes of those datagrams as they travel (sealed, headers of the
	// envelope included, IP and UDP headers not).
	BytesIn       uint64 `json:"bytes_in"`
	BytesOut      uint64 `json:"bytes_out"`
	MessagesIn    uint64 `json:"messages_in"`
	MessagesOut   uint64 `json:"messages_out"`
	Retransmits   uint64 `json:"retransmits"`
	TokenLosses   uint64 `json:"token_losses"`
	Gathers       uint64 `json:"gathers"`
	AuthFailures  uint64 `json:"auth_failures"`
	Malformed     uint64 `json:"malformed"`
	TokenRotation uint64 `json:"token_rotations"`
	// Datagrams dropped before the protocol acted on them, by reason
	// (with AuthFailures and Malformed): replayed (seen before, older
	// than the sender's window or boot epoch, a unicast for another
	// node), from a node ID outside the nodelist, from a source address
	// that is not the sender's configured one, or carrying a sequence
	// number or counter out of range.
	Replayed    uint64 `json:"rejected_replay"`
	UnknownNode uint64 `json:"rejected_unknown_node"`
	BadAddress  uint64 `json:"rejected_bad_address"`
	OutOfRange  uint64 `json:"rejected_out_of_range"`
	// With redundant links: copies of datagrams already received on
	// another link (the sender sends on every link while none is known
	// healthy), dropped quietly; counted apart from Replayed.
	LinkDuplicates uint64 `json:"rejected_link_duplicate"`
	// Redundant links (two or more): how often a link to a peer went
	// up or down (heartbeats, totem/link).
	LinkUps   uint64 `json:"link_up_events"`
	LinkDowns uint64 `json:"link_down_events"`
}

// Backlog is what waits to be broadcast: levels that rise and fall, not
// counters (kept out of Counters so that clearing stats.* leaves them
// alone).
type Backlog struct {
	// Messages and Bytes the driver holds that the Processor has not
	// accepted yet (application messages, before packing); Send answers
	// ErrTryAgain when they reach the driver's bounds.
	Messages uint64 `json:"send_queue_messages"`
	Bytes    uint64 `json:"send_queue_bytes"`
	// Frames the Processor accepted that wait for the token.
	Frames uint64 `json:"srp_queue_frames"`
	// Ring is the flow-control backlog of the whole ring: the sum of
	// every member's queue as the token carried it when this node last
	// forwarded it (the token's backlog field).
	Ring uint64 `json:"ring"`
}

// Status is a snapshot of the ring for operators.
type Status struct {
	Node     NodeID
	Ring     RingID
	State    State
	Members  []NodeID
	Counters Counters
	Backlog  Backlog
	// Links is every (peer, link) of a ring with redundant links, by
	// peer then link (nil with one link: no heartbeats run).
	Links []LinkStatus
}

// LinkStatus is one link to one peer as its heartbeats see it.
type LinkStatus struct {
	Peer          NodeID
	Link          uint8
	Up            bool
	Local, Remote netip.AddrPort
	// RTT of the last heartbeat answered.
	RTT time.Duration
	// Ups and Downs count the link's transitions since ringd started.
	Ups, Downs uint64
}

// Events receives the ordered output of the ring. The ring calls it from a
// single goroutine, never concurrently, in the same total order on every
// node: deliveries between configuration changes belong to the last
// configuration delivered.
type Events interface {
	Deliver(m Message)
	ConfChange(c ConfChange)
}

// ErrTryAgain is returned when a message cannot be queued now (send queue
// full, or the ring is not operational and the queue is full); the caller
// should retry later. Nothing was queued.
var ErrTryAgain = errors.New("try again")

// ErrTooLarge is returned for a message above MaxMessageSize.
var ErrTooLarge = errors.New("message too large")

// MaxMessageSize is the largest application message the ring carries
// atomically (fragmented and reassembled by totem/pg).
const MaxMessageSize = 1 << 20
