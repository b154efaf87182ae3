// Package srp is the Totem single-ring protocol as a pure state machine:
// ordering (token, sequence numbers, aru, retransmission, flow control,
// agreed and safe delivery) and membership (gather, commit, recovery, merge,
// extended virtual synchrony), as specified in shared/design/TOTEM.md.
//
// The Processor owns no goroutines, clock, sockets or global randomness.
// The caller (the ring driver in totem/ring, or the simulator) feeds it
// datagrams with Step and the passage of time with Tick, then takes the
// output with Ready: datagrams to send, the ordered stream of deliveries
// and configuration changes, a ring sequence number to persist, and the
// next deadline at which Tick must be called.
//
// Time is a time.Duration since an arbitrary epoch chosen by the caller (the
// simulator uses a virtual clock, the driver time.Since(start)).
//
// This file is the contract between the protocol core and its drivers.
package srp

import (
	"time"

	"ringmaster/totem"
)

// Datagram is one protocol datagram to send. To == 0 means "every
// processor" (multicast with transport udp, one unicast per configured node
// with udpu); otherwise it is for that processor only (the token, for
// example). Data is plaintext: the driver seals it (AEAD) before sending.
type Datagram struct {
	To   totem.NodeID
	Data []byte
}

// EventKind tells the two kinds of ordered output apart.
type EventKind uint8

const (
	// EventDeliver: Payload was delivered (agreed or safe) from Sender.
	EventDeliver EventKind = iota
	// EventConfChange: Conf was installed (transitional or regular).
	EventConfChange
)

// Event is one item of the ordered output stream. Payloads are what was
// given to Processor.Send (totem/pg frames), in total order.
type Event struct {
	Kind      EventKind
	Sender    totem.NodeID
	Guarantee totem.Guarantee
	Payload   []byte
	Conf      totem.ConfChange
}

// Ready is the output accumulated since the last call to Ready. It belongs
// to the caller, except the bytes of Datagrams with Config.ReuseDatagrams:
// those are valid until the next call to Ready.
type Ready struct {
	// PersistSeq, when non-zero, is a ring sequence number the driver must
	// store durably before sending Datagrams (so a restarted processor
	// never reuses a ring ID).
	PersistSeq uint64
	Datagrams  []Datagram
	Events     []Event
	// Deadline is the time at which Tick must be called next (0: none).
	Deadline time.Duration
}
