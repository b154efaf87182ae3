package wire

import (
	"encoding/binary"

	"ringmaster/totem"
)

// Link heartbeats (TypeLinkPing, TypeLinkPong) are the ring driver's, not
// the protocol's: with redundant links (totem/link) every node pings every
// peer on every link, and the peer answers on the same link. They travel
// in the same authenticated envelope as the protocol's datagrams (so a
// forged or replayed heartbeat never marks a link up) and are taken out
// before srp sees anything.
//
//	header(6)  link(1)  stamp(8)
//
// link is the link number the datagram was sent on (below MaxLinks): a
// receiver drops a heartbeat that arrived on another link. stamp is the
// pinger's clock (nanoseconds since its driver started) when it sent the
// ping; the pong echoes it, and only the pinger interprets it.

// MaxLinks bounds the link number of a heartbeat (ring0 … ring7, as
// totem/link.MaxLinks).
const MaxLinks = 8

// MaxStamp bounds a heartbeat's stamp: 2^62 ns is 146 years of uptime.
const MaxStamp = 1 << 62

// LinkHeartbeatLen is the size of an encoded ping or pong.
const LinkHeartbeatLen = HeaderLen + 1 + 8

// LinkHeartbeat is the body of a ping or a pong.
type LinkHeartbeat struct {
	Link  uint8
	Stamp uint64
}

// AppendLinkHeartbeat encodes a ping (pong false) or pong after dst.
func AppendLinkHeartbeat(dst []byte, from totem.NodeID, pong bool, m *LinkHeartbeat) []byte {
	t := TypeLinkPing
	if pong {
		t = TypeLinkPong
	}
	dst = appendHeader(dst, t, from)
	dst = append(dst, m.Link)
	return binary.BigEndian.AppendUint64(dst, m.Stamp)
}

// DecodeLinkHeartbeat decodes a ping or a pong; pong says which.
func DecodeLinkHeartbeat(b []byte, m *LinkHeartbeat) (h Header, pong bool, err error) {
	want := TypeLinkPing
	if len(b) > 1 && Type(b[1]) == TypeLinkPong {
		want, pong = TypeLinkPong, true
	}
	r, h := start(b, want)
	m.Link = r.u8("link")
	m.Stamp = r.u64("stamp")
	if r.err == nil && m.Link >= MaxLinks {
		r.fail(ErrRange, "link %d", m.Link)
	}
	if r.err == nil && m.Stamp > MaxStamp {
		r.fail(ErrRange, "stamp %d", m.Stamp)
	}
	r.end()
	return h, pong, r.err
}
