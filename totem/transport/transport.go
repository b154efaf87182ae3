// Package transport moves sealed Totem datagrams between nodes, best effort:
// datagrams may be lost, duplicated or reordered, and the protocol above
// (totem/srp) copes with that. Three implementations:
//
//   - UDP: multicast (corosync's transport "udp"). Broadcasts go to the
//     group once; the token and other datagrams for one node go by unicast.
//   - UDPU: one unicast per configured node (corosync's "udpu"), including
//     nodes not currently in the ring so that their joins are answered and
//     partitions heal.
//
// Both work over IPv4 or IPv6: the family of the bind address decides the
// sockets' (udp4, or udp6 with IPV6_V6ONLY), and every peer and the group
// must have it.
//   - Mem: in-process, for tests, with fault injection.
//
// Both UDP transports batch their system calls (sendmmsg/recvmmsg on the
// raw socket, with reused headers: no allocation per datagram) and ask for
// large socket buffers, so a burst of a window's worth of datagrams is
// neither dropped by the kernel nor paid for one syscall at a time.
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
	"net/netip"

	"ringmaster/totem"
)

// Broadcast is the Packet.To that addresses every configured node except
// the sender itself: the protocol handles its own broadcasts internally
// (with udp the multicast loops back for other nodes of the same host, and
// the receiver drops its own copy unread).
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
	// Seg, when not 0, says that Buf[:N] holds several datagrams of
	// Seg bytes each (the last may be shorter) that the kernel kept
	// together (UDP_GRO: a segmented burst of one sender); Datagrams
	// cuts them apart. UDP receivers coalesce only if every Buf of their
	// first Recv holds a whole UDP payload (65507 bytes); a caller keeps
	// its slot sizes from then on.
	Seg int
	// From is the source address of the datagram (UDP transports; the
	// zero AddrPort for Mem). The driver drops datagrams whose source is
	// not the configured address of the node they claim to come from.
	From netip.AddrPort
	// Link is the number of the link the datagram arrived on (Links;
	// 0 for single-link transports).
	Link uint8
}

// Datagrams calls f with each datagram the slot holds, in order.
func (m *Msg) Datagrams(f func([]byte)) {
	b := m.Buf[:m.N]
	if m.Seg <= 0 {
		f(b)
		return
	}
	for len(b) > 0 {
		n := min(m.Seg, len(b))
		f(b[:n:n])
		b = b[n:]
	}
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

// ByteCounter is implemented by transports that count the bytes they send:
// the total size of the datagrams Send's count covers, for the ring's
// bytes_out counter.
type ByteCounter interface {
	SentBytes() uint64
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

// GroupBacklogger is implemented by transports with a multicast socket
// next to the unicast one (udp): the driver asks, when a token arrives on
// the unicast socket, whether multicasts are still waiting, and steps them
// first, so that the token does not overtake the messages sent before it.
type GroupBacklogger interface {
	GroupBacklog() bool
}

// GroupReceivers is implemented by transports with multicast sockets
// among their receivers (udp): the driver counts what their readers hold
// (see GroupBacklogger).
type GroupReceivers interface {
	// IsGroupReceiver reports whether Receivers()[i] is a multicast
	// socket.
	IsGroupReceiver(i int) bool
}

// Errors.
var (
	ErrClosed      = errors.New("transport closed")
	ErrUnknownNode = errors.New("no address for node")
	ErrConfig      = errors.New("invalid transport configuration")
)
