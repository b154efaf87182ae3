package ring

import (
	"ringmaster/totem/crypto"
	"ringmaster/totem/transport"
	"ringmaster/totem/wire"
)

// This file sizes the ring's frames: the MTU a datagram is cut for and the
// pg frame budget that keeps a sealed Totem message within it. The run loop
// (ring.go) only uses the results, fixed when the ring is built.

// ipUDPHeaders is what IPv4 and UDP add to a datagram (no IP options);
// IPv6 adds 20 bytes more (frameBudget).
const ipUDPHeaders = 20 + 8

// FrameBudget is the largest pg frame (srp payload) that keeps a sealed
// Totem message within netMTU: see the package documentation.
func FrameBudget(netMTU int, c crypto.Cipher) int {
	return netMTU - ipUDPHeaders - crypto.Overhead(c) - wire.McastOverhead
}

// frameBudget is FrameBudget for the datagrams of tr: an IPv6 link's
// header is 40 bytes, not 20 (transport.UDP.IPHeader; a multi-link
// transport reports its largest), so its frames are 20 bytes smaller and
// a datagram of netMTU bytes still fits the link.
func frameBudget(tr transport.Transport, netMTU int, c crypto.Cipher) int {
	b := FrameBudget(netMTU, c)
	if h, ok := tr.(interface{ IPHeader() int }); ok && h.IPHeader() > transport.IPv4Header {
		b -= h.IPHeader() - transport.IPv4Header
	}
	return b
}

// FrameBudget is the pg frame size this ring uses.
func (r *Ring) FrameBudget() int { return r.budget }

// NetMTU is the datagram size this ring's frames are cut for: the
// configured netmtu, or when that is 0 the one autoMTU chose.
func (r *Ring) NetMTU() int { return r.mtu }

// maxDatagram is the largest IPv4 datagram (a UDP payload of 65507 bytes;
// an IPv6 datagram of this size, header included, carries 65487).
const maxDatagram = 65535

// autoMTU is the datagram size for netmtu = 0: the MTU of the interface
// holding the ring address (1500 on Ethernet, 65536 on loopback; the IP
// header, 20 or 40 bytes, is inside it, see frameBudget), but small
// enough that a window's worth of frames (window_size messages per
// rotation, plus a little) fits twice into the socket's receive buffer, so
// that a receiver that was not scheduled for a rotation does not drop
// them. As root the buffer is 8 MiB (SO_RCVBUFFORCE) and loopback frames
// are 64 KiB; otherwise net.core.rmem_max decides.
func autoMTU(tr transport.Transport, window int) int {
	mtu := 1500
	if m, ok := tr.(interface{ MTU() int }); ok && m.MTU() > 0 {
		mtu = m.MTU()
	}
	if window <= 0 {
		window = 50
	}
	if b, ok := tr.(interface{ RecvBuffer() int }); ok && b.RecvBuffer() > 0 {
		// SO_RCVBUF reports twice the usable size (bookkeeping).
		mtu = min(mtu, b.RecvBuffer()/2/(2*(window+8)))
	}
	return max(min(mtu, maxDatagram), 1500)
}
