// Package transport moves sealed Totem datagrams between nodes, best effort:
// datagrams may be lost, duplicated or reordered, and the protocol above
// (totem/srp) copes with that. Three implementations:
//
//   - UDP: IPv4 multicast (corosync's transport "udp"). Broadcasts go to the
//     group once; the token and other datagrams for one node go by unicast.
//   - UDPU: one unicast per configured node (corosync's "udpu"), including
//     nodes not currently in the ring so that their joins are answered and
//     partitions heal.
//   - Mem: in-process, for tests, with fault injection.
//
// Both UDP transports batch their system calls (sendmmsg/recvmmsg through
// golang.org/x/net/ipv4 WriteBatch/ReadBatch) and ask for large socket
// buffers, so a burst of a window's worth of datagrams is neither dropped by
// the kernel nor paid for one syscall at a time.
//
// # Concurrency
//
// Send is called by one goroutine at a time (the ring driver's Run loop).
// Each Receiver is read by one goroutine at a time (the driver runs one
// reader per Receiver). Close may be called from any goroutine, once or
// more; it unblocks pending Recv calls, which then return ErrClosed.
package transport

import (
	"errors"

	"ringmaster/totem"
)

// Broadcast is the Packet.To that addresses every configured node,
// including the sender itself (the protocol expects to hear its own
// broadcasts, as with multicast loopback).
const Broadcast totem.NodeID = 0

// Packet is one datagram to send.
type Packet struct {
	To   totem.NodeID // Broadcast or one node
	Data []byte
}

// Msg is one slot of a receive batch: Buf is provided by the caller (its
// length is the most that is read), N is set to the datagram's size.
type Msg struct {
	Buf []byte
	N   int
	// Truncated is set when the datagram was larger than Buf; such a
	// datagram fails authentication and is dropped above.
	Truncated bool
}

// Receiver yields received datagrams in batches.
type Receiver interface {
	// Recv blocks until at least one datagram is available, fills up to
	// len(msgs) slots and returns how many it filled. After Close it
	// returns ErrClosed.
	Recv(msgs []Msg) (int, error)
}

// Transport sends datagrams and exposes one or more receivers (udp has a
// multicast and a unicast socket; the driver reads each with its own
// goroutine).
type Transport interface {
	// Send hands pkts to the network in as few system calls as possible.
	// It returns how many datagrams were handed over; err is the last
	// per-datagram error (an unreachable node does not stop the others),
	// or ErrClosed.
	Send(pkts []Packet) (int, error)
	Receivers() []Receiver
	Close() error
}

// Backlogger is implemented by transports that can tell whether datagrams
// are waiting in the kernel (or queue) that no Recv has returned yet. The
// driver asks before it lets a timer declare the token lost, so that a
// token which did arrive, but was not read yet because the machine is
// busy, is not mistaken for a lost one.
type Backlogger interface {
	// Backlog reports whether at least one datagram is waiting.
	Backlog() bool
}

// Errors.
var (
	ErrClosed      = errors.New("transport closed")
	ErrUnknownNode = errors.New("no address for node")
	ErrConfig      = errors.New("invalid transport configuration")
)
