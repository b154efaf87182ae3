// Package wire is the binary encoding of the Totem single-ring protocol
// messages exchanged by totem/srp: the ordering token, regular multicast
// messages, join messages, the commit token, merge detection, leave and
// token-hold cancellation.
//
// Every datagram starts with the same 6-byte header:
//
//	offset size field
//	0      1    version (Version)
//	1      1    type (Type, append-only numbers)
//	2      4    from: the node that transmitted this datagram (not
//	            necessarily the originator of a retransmitted message)
//
// All integers are big endian. Sets of node IDs are sorted, without
// duplicates and without 0; decoders reject anything else, so the protocol
// core can rely on it. Decoders never panic and never retain the input
// slice except where documented (Mcast.Payload aliases the datagram).
//
// Encoders are append-style (AppendX(dst, ...)) so the caller can encode
// many datagrams into one arena without per-datagram allocations.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"ringmaster/totem"
)

// Version is the protocol version carried in every header. A datagram with
// another version is rejected with ErrVersion: mixed-version rings are not
// supported, and silently misreading a newer format is worse than dropping.
const Version uint8 = 1

// Type identifies a message. Numbers are part of the protocol: append only,
// never renumber or reuse.
type Type uint8

// Message types.
const (
	TypeToken       Type = 1 // ordering token (unicast to the next member)
	TypeMcast       Type = 2 // regular message (broadcast)
	TypeJoin        Type = 3 // membership join (broadcast, gather state)
	TypeCommit      Type = 4 // commit token (unicast, commit state)
	TypeMergeDetect Type = 5 // ring representative's "I am here" (broadcast)
	TypeLeave       Type = 6 // graceful leave (broadcast)
	TypeHoldCancel  Type = 7 // ask the holder of an idle token to release it
	TypeLinkPing    Type = 8 // link heartbeat (unicast on one link; the ring driver's, never srp's)
	TypeLinkPong    Type = 9 // answer to a link ping, on the link it came on
)

func (t Type) String() string {
	switch t {
	case TypeToken:
		return "token"
	case TypeMcast:
		return "mcast"
	case TypeJoin:
		return "join"
	case TypeCommit:
		return "commit"
	case TypeMergeDetect:
		return "merge-detect"
	case TypeLeave:
		return "leave"
	case TypeHoldCancel:
		return "hold-cancel"
	case TypeLinkPing:
		return "link-ping"
	case TypeLinkPong:
		return "link-pong"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Sentinel errors. Decoders wrap them with context; test with errors.Is.
var (
	// ErrTruncated: the datagram ends before a field it announces.
	ErrTruncated = errors.New("wire: truncated")
	// ErrVersion: the header carries a version this code does not speak.
	ErrVersion = errors.New("wire: unsupported version")
	// ErrType: unknown message type, or a decoder called on another type.
	ErrType = errors.New("wire: unknown message type")
	// ErrMalformed: the fields are present but inconsistent (bad counts,
	// unsorted sets, node ID 0, trailing bytes, aru above seq, ...).
	ErrMalformed = errors.New("wire: malformed")
	// ErrRange: a sequence number or count beyond what any processor
	// produces (see MaxRingSeq, MaxMsgSeq, MaxTokenSeq, MaxCount). Such a
	// datagram is forged or corrupt; acting on it could overflow a
	// sequence number (and persist it).
	ErrRange = errors.New("wire: out of range")
)

// Range limits: every sequence number and count from the wire is checked
// against them before the protocol sees it. They are far above anything a
// real ring reaches, and far enough below 2^64 that no arithmetic on them
// (a new ring's seq = highest seq + 4, a message seq + 1, a window added
// to an aru) can overflow.
const (
	// MaxRingSeq bounds ring sequence numbers (ring IDs, MaxSeq): rings
	// add 4 per configuration, so 2^48 is 7 × 10^13 configurations,
	// 2 million years at one per second.
	MaxRingSeq = 1 << 48
	// MaxMsgSeq bounds message sequence numbers (seq, aru, rtr entries,
	// a recovered message's original seq): they restart at every
	// configuration, and 2^48 frames is 89 years at 100,000 frames/s
	// without a single membership change.
	MaxMsgSeq = 1 << 48
	// MaxTokenSeq bounds the token's forward counter (one per hop, also
	// restarting with each ring).
	MaxTokenSeq = 1 << 62
	// MaxCount bounds the token's flow-control counts (fcc, backlog): srp
	// caps what it writes there at 2^31.
	MaxCount = 1 << 31
)

// Limits that bound what a decoder accepts (and what an allocation from a
// hostile count can cost).
const (
	// HeaderLen is the size of the common header.
	HeaderLen = 6
	// MaxNodes bounds node sets in joins and commit tokens.
	MaxNodes = 1024
	// MaxRtr bounds the retransmission request list of a token.
	MaxRtr = 1024
)

// Header is the common datagram header.
type Header struct {
	Version uint8
	Type    Type
	From    totem.NodeID
}

// DecodeHeader reads the common header. It checks the version and that From
// is not 0, but not the type, so a caller can count unknown types.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("header: %d bytes: %w", len(b), ErrTruncated)
	}
	h := Header{Version: b[0], Type: Type(b[1]), From: totem.NodeID(binary.BigEndian.Uint32(b[2:]))}
	if h.Version != Version {
		return h, fmt.Errorf("header: version %d: %w", h.Version, ErrVersion)
	}
	if h.From == 0 {
		return h, fmt.Errorf("header: from node 0: %w", ErrMalformed)
	}
	return h, nil
}

func appendHeader(dst []byte, t Type, from totem.NodeID) []byte {
	dst = append(dst, Version, byte(t))
	return binary.BigEndian.AppendUint32(dst, uint32(from))
}

// reader consumes a datagram; the first error sticks, so decoders check it
// once at the end (and before any allocation sized by a count).
type reader struct {
	b   []byte
	err error
	msg string
}

func (r *reader) fail(err error, format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %s: %w", r.msg, fmt.Sprintf(format, args...), err)
	}
}

func (r *reader) need(n int, field string) bool {
	if r.err != nil {
		return false
	}
	if len(r.b) < n {
		r.fail(ErrTruncated, "%s", field)
		return false
	}
	return true
}

func (r *reader) u8(field string) uint8 {
	if !r.need(1, field) {
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u16(field string) uint16 {
	if !r.need(2, field) {
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *reader) u32(field string) uint32 {
	if !r.need(4, field) {
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) u64(field string) uint64 {
	if !r.need(8, field) {
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) node(field string) totem.NodeID {
	v := totem.NodeID(r.u32(field))
	if r.err == nil && v == 0 {
		r.fail(ErrMalformed, "%s is node 0", field)
	}
	return v
}

func (r *reader) ring(field string) totem.RingID {
	rep := totem.NodeID(r.u32(field))
	seq := r.seq(field, MaxRingSeq)
	return totem.RingID{Rep: rep, Seq: seq}
}

// seq reads a u64 that must not exceed limit (ErrRange).
func (r *reader) seq(field string, limit uint64) uint64 {
	v := r.u64(field)
	if r.err == nil && v > limit {
		r.fail(ErrRange, "%s %d above %d", field, v, limit)
	}
	return v
}

// nodes reads a u16 count and that many sorted, distinct, non-zero IDs into
// dst[:0] (reusing its storage).
func (r *reader) nodes(dst []totem.NodeID, field string) []totem.NodeID {
	n := int(r.u16(field))
	dst = dst[:0]
	if r.err != nil {
		return dst
	}
	if n > MaxNodes {
		r.fail(ErrMalformed, "%s: %d entries", field, n)
		return dst
	}
	if !r.need(4*n, field) {
		return dst
	}
	var prev totem.NodeID
	for i := 0; i < n; i++ {
		id := totem.NodeID(binary.BigEndian.Uint32(r.b[4*i:]))
		if id <= prev { // also rejects 0 at i == 0
			r.fail(ErrMalformed, "%s: not sorted, distinct and non-zero", field)
			return dst
		}
		prev = id
		dst = append(dst, id)
	}
	r.b = r.b[4*n:]
	return dst
}

func (r *reader) end() {
	if r.err == nil && len(r.b) != 0 {
		r.fail(ErrMalformed, "%d trailing bytes", len(r.b))
	}
}

// start checks the header and the expected type and returns a reader
// positioned after it.
func start(b []byte, want Type) (reader, Header) {
	h, err := DecodeHeader(b)
	r := reader{b: b, msg: want.String()}
	if err != nil {
		r.err = fmt.Errorf("%s: %w", want, err)
		return r, h
	}
	if h.Type != want {
		r.fail(ErrType, "got %s", h.Type)
		return r, h
	}
	r.b = b[HeaderLen:]
	return r, h
}

func appendRing(dst []byte, r totem.RingID) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(r.Rep))
	return binary.BigEndian.AppendUint64(dst, r.Seq)
}

func appendNodes(dst []byte, ns []totem.NodeID) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(ns)))
	for _, n := range ns {
		dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	}
	return dst
}
