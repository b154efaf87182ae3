// Package wire is the votequorum wire format, shared by the votequorum
// service in ringd and the clients/quorum library: the IPC message numbers
// and payloads (requests, the Status reply and event), and the service's
// messages on the ring (NodeInfo, Reconfigure, the last_man_standing
// expiry). It has no logic beyond encoding and the ordering of lineages,
// and every decoder rejects (never panics on) bad input; see the fuzz
// tests.
//
// Client payloads are a version byte (ProtoVersion) followed by JSON. Ring
// messages are a version byte followed by big-endian fields.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"ringmaster/internal/versioned"

	"ringmaster/totem"
)

// Ring messages of the service (exec.ServiceQuorum). Numbers are part of
// the protocol: append only.
const (
	// RingNodeInfo: a node's state, multicast in the sync step (and, with
	// Leaving set, on a clean shutdown).
	RingNodeInfo uint16 = 1
	// RingReconfigure: a runtime change (expected votes, votes, cancel
	// wait_for_all) every member applies on delivery.
	RingReconfigure uint16 = 2
	// RingLMSExpired: a node's last_man_standing window ended for a ring.
	RingLMSExpired uint16 = 3
)

// Client messages (IPC requests to exec.ServiceQuorum), shared with
// clients/quorum. Numbers are part of the protocol: append only. Payloads
// are a version byte (ProtoVersion) followed by JSON.
const (
	// MsgStatus: no payload; reply Status. Asked during a sync, the reply
	// waits (boundedly) until the sync is done.
	MsgStatus uint16 = 1
	// MsgSetExpected: SetExpectedRequest; reply Status once applied.
	MsgSetExpected uint16 = 2
	// MsgSetVotes: SetVotesRequest; reply Status once applied.
	MsgSetVotes uint16 = 3
	// MsgCancelWaitForAll: no payload; reply Status once applied.
	MsgCancelWaitForAll uint16 = 4
	// MsgTrackStart: no payload; reply Status, then an EventStatus after
	// every change until MsgTrackStop or disconnect.
	MsgTrackStart uint16 = 5
	// MsgTrackStop: no payload; empty reply.
	MsgTrackStop uint16 = 6
)

// Events pushed to tracking clients. Numbers are part of the protocol.
const (
	// EventStatus: a Status after a change (membership, votes, expected
	// votes, quorate).
	EventStatus uint16 = 1
)

// ProtoVersion is the first byte of every client payload.
const ProtoVersion byte = 1

// wireVersion is the first byte of every ring message.
const wireVersion byte = 1

// MaxNodes bounds every node list of a NodeInfo (previous membership,
// lineage voters and members); corosync's PROCESSOR_COUNT_MAX is 384.
const MaxNodes = 1024

// ErrMalformed is returned by the decoders for bad input.
var ErrMalformed = errors.New("votequorum: malformed message")

// SetExpectedRequest is the payload of MsgSetExpected.
type SetExpectedRequest struct {
	ExpectedVotes uint32 `json:"expected_votes"`
}

// SetVotesRequest is the payload of MsgSetVotes.
type SetVotesRequest struct {
	NodeID uint32 `json:"nodeid"`
	Votes  uint32 `json:"votes"`
}

// EncodePayload is a client payload: ProtoVersion, then v as JSON.
func EncodePayload(v any) []byte { return versioned.Encode(ProtoVersion, v) }

// DecodePayload checks the version byte and decodes the JSON into v.
func DecodePayload(p []byte, v any) error {
	if err := versioned.Decode(p, ProtoVersion, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// EncodeNodeInfo lays out a state message (big endian):
//
//	version u8
//	ring    rep u32, seq u64
//	votes u32, expected u32, flags u32
//	prev    n u16, then n node ids u32
//	lineage ring rep u32, seq u64, step u32, expected u32,
//	        n u16, then n voters (node id u32, votes u32),
//	        n u16, then n members u32
func EncodeNodeInfo(in NodeInfo) []byte {
	be := binary.BigEndian
	b := make([]byte, 0, 64+4*len(in.Prev)+8*len(in.Lineage.Voters)+4*len(in.Lineage.Members))
	b = append(b, wireVersion)
	b = appendRing(b, in.Ring)
	b = be.AppendUint32(b, in.Votes)
	b = be.AppendUint32(b, in.Expected)
	b = be.AppendUint32(b, uint32(in.Flags))
	b = be.AppendUint16(b, uint16(len(in.Prev)))
	for _, p := range in.Prev {
		b = be.AppendUint32(b, uint32(p))
	}
	l := &in.Lineage
	b = appendRing(b, l.Ring)
	b = be.AppendUint32(b, l.Step)
	b = be.AppendUint32(b, l.Expected)
	b = be.AppendUint16(b, uint16(len(l.Voters)))
	for _, v := range l.Voters {
		b = be.AppendUint32(b, uint32(v.ID))
		b = be.AppendUint32(b, v.Votes)
	}
	b = be.AppendUint16(b, uint16(len(l.Members)))
	for _, m := range l.Members {
		b = be.AppendUint32(b, uint32(m))
	}
	return b
}

func appendRing(b []byte, r totem.RingID) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(r.Rep))
	return binary.BigEndian.AppendUint64(b, r.Seq)
}

// reader decodes big-endian fields, remembering the first shortfall.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || len(r.b) < n {
		r.bad = true
		return make([]byte, n)
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) u16() uint16 { return binary.BigEndian.Uint16(r.take(2)) }
func (r *reader) u32() uint32 { return binary.BigEndian.Uint32(r.take(4)) }
func (r *reader) u64() uint64 { return binary.BigEndian.Uint64(r.take(8)) }
func (r *reader) ring() totem.RingID {
	rep := r.u32()
	return totem.RingID{Rep: totem.NodeID(rep), Seq: r.u64()}
}

// DecodeNodeInfo decodes a state message; it never panics on bad input
// and rejects lists that are too long, unsorted voters and trailing bytes.
func DecodeNodeInfo(b []byte) (NodeInfo, error) {
	if len(b) == 0 || b[0] != wireVersion {
		return NodeInfo{}, fmt.Errorf("%w: node info version", ErrMalformed)
	}
	r := &reader{b: b[1:]}
	in := NodeInfo{Ring: r.ring(), Votes: r.u32(), Expected: r.u32(), Flags: InfoFlags(r.u32())}
	n := int(r.u16())
	if n > MaxNodes || len(r.b) < 4*n {
		return NodeInfo{}, fmt.Errorf("%w: node info with %d previous members", ErrMalformed, n)
	}
	for range n {
		in.Prev = append(in.Prev, totem.NodeID(r.u32()))
	}
	l := &in.Lineage
	l.Ring, l.Step, l.Expected = r.ring(), r.u32(), r.u32()
	n = int(r.u16())
	if n > MaxNodes || len(r.b) < 8*n {
		return NodeInfo{}, fmt.Errorf("%w: lineage with %d voters", ErrMalformed, n)
	}
	for i := range n {
		v := Voter{ID: totem.NodeID(r.u32()), Votes: r.u32()}
		if i > 0 && v.ID <= l.Voters[i-1].ID {
			return NodeInfo{}, fmt.Errorf("%w: lineage voters not sorted", ErrMalformed)
		}
		l.Voters = append(l.Voters, v)
	}
	n = int(r.u16())
	if n > MaxNodes || len(r.b) < 4*n {
		return NodeInfo{}, fmt.Errorf("%w: lineage with %d members", ErrMalformed, n)
	}
	for i := range n {
		m := totem.NodeID(r.u32())
		if i > 0 && m <= l.Members[i-1] {
			return NodeInfo{}, fmt.Errorf("%w: lineage members not sorted", ErrMalformed)
		}
		l.Members = append(l.Members, m)
	}
	if r.bad || len(r.b) != 0 {
		return NodeInfo{}, fmt.Errorf("%w: node info of %d bytes", ErrMalformed, len(b))
	}
	return in, nil
}

// EncodeReconfigure: version u8, param u8, node u32, value u32, nonce u64.
func EncodeReconfigure(r Reconfigure) []byte {
	b := make([]byte, 0, 18)
	b = append(b, wireVersion, byte(r.Param))
	b = binary.BigEndian.AppendUint32(b, uint32(r.Node))
	b = binary.BigEndian.AppendUint32(b, r.Value)
	return binary.BigEndian.AppendUint64(b, r.Nonce)
}

// DecodeReconfigure decodes a reconfiguration; unknown parameters are
// rejected.
func DecodeReconfigure(b []byte) (Reconfigure, error) {
	if len(b) != 18 || b[0] != wireVersion {
		return Reconfigure{}, fmt.Errorf("%w: reconfigure of %d bytes", ErrMalformed, len(b))
	}
	r := Reconfigure{
		Param: Param(b[1]),
		Node:  totem.NodeID(binary.BigEndian.Uint32(b[2:])),
		Value: binary.BigEndian.Uint32(b[6:]),
		Nonce: binary.BigEndian.Uint64(b[10:]),
	}
	if r.Param < ParamExpected || r.Param > ParamCancelWFA {
		return Reconfigure{}, fmt.Errorf("%w: reconfigure parameter %d", ErrMalformed, r.Param)
	}
	return r, nil
}

// EncodeLMS: version u8, ring rep u32, ring seq u64.
func EncodeLMS(ring totem.RingID) []byte {
	b := make([]byte, 0, 13)
	b = append(b, wireVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(ring.Rep))
	return binary.BigEndian.AppendUint64(b, ring.Seq)
}

// DecodeLMS decodes a last_man_standing expiry.
func DecodeLMS(b []byte) (totem.RingID, error) {
	if len(b) != 13 || b[0] != wireVersion {
		return totem.RingID{}, fmt.Errorf("%w: lms expiry of %d bytes", ErrMalformed, len(b))
	}
	return totem.RingID{Rep: totem.NodeID(binary.BigEndian.Uint32(b[1:])), Seq: binary.BigEndian.Uint64(b[5:])}, nil
}
