// Package wire is the wire format of the cluster-wide configuration
// reload (`ringctl config reload`): the service's messages on the ring
// (Prepare, Vote, Abort), and its IPC request and reply, shared by ringd
// and ringctl. It holds no logic beyond encoding; every decoder checks
// every number and length it reads and rejects, never panics on, bad
// input (see the fuzz tests).
//
// Ring messages are a version byte followed by big-endian fields; IPC
// payloads are a version byte followed by JSON (internal/versioned).
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"ringmaster/internal/versioned"
	"ringmaster/totem"
	twire "ringmaster/totem/wire"
)

// Ring messages of the service (exec.ServiceReconfig). Numbers are part of
// the protocol: append only.
const (
	// MsgPrepare: a node asks every member to validate its own file for
	// reload transaction (sender, Seq).
	MsgPrepare uint16 = 1
	// MsgVote: a member's answer to a Prepare: it can apply its file
	// (with the digests of the cluster-wide parts), or why not.
	MsgVote uint16 = 2
	// MsgAbort: a member gives up on a transaction (its deadline
	// passed); delivered before the last vote, it aborts everywhere.
	MsgAbort uint16 = 3
)

// IPC messages (requests to exec.ServiceReconfig). Numbers are part of
// the protocol: append only.
const (
	// MsgReload: ReloadRequest; reply Result once the transaction ended
	// (committed or not).
	MsgReload uint16 = 1
)

// wireVersion is the first byte of every ring message.
const wireVersion byte = 1

// ProtoVersion is the first byte of every IPC payload.
const ProtoVersion byte = 1

// Limits checked by the decoders. They bound what one message can make a
// node allocate, far above what a real configuration needs.
const (
	// MaxTimeout bounds a transaction's timeout (10 minutes).
	MaxTimeout = 10 * time.Minute
	// MaxError bounds a refusal's text (a file's every problem, one per
	// line).
	MaxError = 8192
	// MaxKeys bounds the lists of changed settings in a vote.
	MaxKeys = 1024
	// MaxKey bounds one setting's name ("node[12].ring0_addr").
	MaxKey = 256
)

// Section numbers the parts of a configuration that must be the same on
// every node. Numbers are part of the protocol: append only.
type Section uint8

// Sections of the digest.
const (
	// SectionTotem: [totem] without the keyfile paths (cluster name,
	// transport, port, cipher, every timing).
	SectionTotem Section = 1
	// SectionKey: the key that seals (its SHA-256, never the key).
	SectionKey Section = 2
	// SectionNodes: the node list.
	SectionNodes Section = 3
	// SectionQuorum: [quorum].
	SectionQuorum Section = 4
	// NumSections is one more than the last section.
	NumSections = 5
)

// String names a section as the file does.
func (s Section) String() string {
	switch s {
	case SectionTotem:
		return "[totem]"
	case SectionKey:
		return "the key in totem.keyfile"
	case SectionNodes:
		return "the node list ([[node]])"
	case SectionQuorum:
		return "[quorum]"
	}
	return fmt.Sprintf("section %d", uint8(s))
}

// Digest is the SHA-256 of one section.
type Digest [32]byte

// Digests holds a digest per section, indexed by Section (index 0
// unused).
type Digests [NumSections]Digest

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("reconfig: malformed message")

// Prepare opens a transaction. Its initiator is the message's sender.
type Prepare struct {
	// Seq numbers the initiator's transactions (with the sender, the
	// transaction's ID).
	Seq uint64
	// Ring is the ring the initiator was in when it asked: a Prepare
	// delivered in another ring is refused.
	Ring totem.RingID
	// Timeout: a member that has not seen every vote that long after the
	// Prepare asks for an abort. 1 ms .. MaxTimeout.
	Timeout time.Duration
}

// Vote is a member's answer to a Prepare.
type Vote struct {
	// Initiator and Seq name the transaction.
	Initiator totem.NodeID
	Seq       uint64
	// OK: the member's file is valid and it can apply it; Digests are
	// then its cluster-wide parts. Otherwise Error says why, naming the
	// file and line ("/etc/ringmaster/corosync.toml:7: totem.token: ...").
	OK      bool
	Digests Digests
	Error   string
	// Applied lists the settings this member will change (dotted keys)
	// and Pending those that wait for its restart.
	Applied []string
	Pending []string
}

// AbortReason says why a member aborts. Numbers are part of the protocol:
// append only.
type AbortReason uint8

// Abort reasons.
const (
	AbortTimeout AbortReason = 1
)

// Abort asks every member to give up transaction (Initiator, Seq).
type Abort struct {
	Initiator totem.NodeID
	Seq       uint64
	Reason    AbortReason
}

// EncodePrepare: version u8, seq u64, ring rep u32, ring seq u64,
// timeout ms u32.
func EncodePrepare(p Prepare) []byte {
	b := make([]byte, 0, 25)
	b = append(b, wireVersion)
	b = binary.BigEndian.AppendUint64(b, p.Seq)
	b = binary.BigEndian.AppendUint32(b, uint32(p.Ring.Rep))
	b = binary.BigEndian.AppendUint64(b, p.Ring.Seq)
	return binary.BigEndian.AppendUint32(b, uint32(p.Timeout/time.Millisecond))
}

// DecodePrepare decodes a Prepare.
func DecodePrepare(b []byte) (Prepare, error) {
	if len(b) != 25 || b[0] != wireVersion {
		return Prepare{}, fmt.Errorf("%w: prepare of %d bytes", ErrMalformed, len(b))
	}
	r := reader{b: b[1:]}
	p := Prepare{Seq: r.u64(), Ring: totem.RingID{Rep: totem.NodeID(r.u32()), Seq: r.u64()}}
	ms := r.u32()
	if err := checkSeq(p.Seq); err != nil {
		return Prepare{}, err
	}
	if p.Ring.Seq > twire.MaxRingSeq {
		return Prepare{}, fmt.Errorf("%w: ring sequence %d above %d", ErrMalformed, p.Ring.Seq, uint64(twire.MaxRingSeq))
	}
	if ms == 0 || time.Duration(ms)*time.Millisecond > MaxTimeout {
		return Prepare{}, fmt.Errorf("%w: timeout %d ms (want 1..%d)", ErrMalformed, ms, MaxTimeout.Milliseconds())
	}
	p.Timeout = time.Duration(ms) * time.Millisecond
	return p, nil
}

// maxSeq bounds transaction numbers (2^62: a node starting one per
// microsecond for 100,000 years), so no arithmetic on them overflows.
const maxSeq = 1 << 62

func checkSeq(s uint64) error {
	if s == 0 || s > maxSeq {
		return fmt.Errorf("%w: transaction number %d out of range", ErrMalformed, s)
	}
	return nil
}

// EncodeVote lays out a vote (big endian):
//
//	version u8, initiator u32, seq u64, ok u8 (0 or 1)
//	digests  n u8 (NumSections-1), then n × (section u8, 32 bytes)
//	error    len u16, bytes (UTF-8)
//	applied  n u16, then n × (len u16, bytes)
//	pending  n u16, then n × (len u16, bytes)
func EncodeVote(v Vote) []byte {
	b := make([]byte, 0, 256+len(v.Error))
	b = append(b, wireVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(v.Initiator))
	b = binary.BigEndian.AppendUint64(b, v.Seq)
	ok := byte(0)
	if v.OK {
		ok = 1
	}
	b = append(b, ok, NumSections-1)
	for s := Section(1); s < NumSections; s++ {
		b = append(b, byte(s))
		b = append(b, v.Digests[s][:]...)
	}
	b = appendString(b, clip(v.Error, MaxError))
	b = appendList(b, v.Applied)
	return appendList(b, v.Pending)
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendList(b []byte, l []string) []byte {
	l = l[:min(len(l), MaxKeys)]
	b = binary.BigEndian.AppendUint16(b, uint16(len(l)))
	for _, s := range l {
		b = appendString(b, clip(s, MaxKey))
	}
	return b
}

// clip shortens s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// DecodeVote decodes a vote; it rejects unknown or repeated sections,
// strings that are too long or not UTF-8, and trailing bytes.
func DecodeVote(b []byte) (Vote, error) {
	if len(b) == 0 || b[0] != wireVersion {
		return Vote{}, fmt.Errorf("%w: vote version", ErrMalformed)
	}
	r := reader{b: b[1:]}
	v := Vote{Initiator: totem.NodeID(r.u32()), Seq: r.u64()}
	switch r.u8() {
	case 0:
	case 1:
		v.OK = true
	default:
		return Vote{}, fmt.Errorf("%w: vote ok flag", ErrMalformed)
	}
	n := int(r.u8())
	if n != NumSections-1 {
		return Vote{}, fmt.Errorf("%w: %d digest sections (want %d)", ErrMalformed, n, NumSections-1)
	}
	var seen [NumSections]bool
	for range n {
		s := Section(r.u8())
		if s == 0 || s >= NumSections || seen[s] {
			return Vote{}, fmt.Errorf("%w: digest section %d", ErrMalformed, s)
		}
		seen[s] = true
		copy(v.Digests[s][:], r.take(32))
	}
	var err error
	if v.Error, err = r.str(MaxError); err != nil {
		return Vote{}, err
	}
	if v.Applied, err = r.list(); err != nil {
		return Vote{}, err
	}
	if v.Pending, err = r.list(); err != nil {
		return Vote{}, err
	}
	if r.bad || len(r.b) != 0 {
		return Vote{}, fmt.Errorf("%w: vote of %d bytes", ErrMalformed, len(b))
	}
	if v.Initiator == 0 {
		return Vote{}, fmt.Errorf("%w: vote for initiator 0", ErrMalformed)
	}
	if err := checkSeq(v.Seq); err != nil {
		return Vote{}, err
	}
	return v, nil
}

// EncodeAbort: version u8, initiator u32, seq u64, reason u8.
func EncodeAbort(a Abort) []byte {
	b := make([]byte, 0, 14)
	b = append(b, wireVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(a.Initiator))
	b = binary.BigEndian.AppendUint64(b, a.Seq)
	return append(b, byte(a.Reason))
}

// DecodeAbort decodes an abort; unknown reasons are rejected.
func DecodeAbort(b []byte) (Abort, error) {
	if len(b) != 14 || b[0] != wireVersion {
		return Abort{}, fmt.Errorf("%w: abort of %d bytes", ErrMalformed, len(b))
	}
	r := reader{b: b[1:]}
	a := Abort{Initiator: totem.NodeID(r.u32()), Seq: r.u64(), Reason: AbortReason(r.u8())}
	if a.Initiator == 0 {
		return Abort{}, fmt.Errorf("%w: abort for initiator 0", ErrMalformed)
	}
	if err := checkSeq(a.Seq); err != nil {
		return Abort{}, err
	}
	if a.Reason != AbortTimeout {
		return Abort{}, fmt.Errorf("%w: abort reason %d", ErrMalformed, a.Reason)
	}
	return a, nil
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

func (r *reader) u8() uint8   { return r.take(1)[0] }
func (r *reader) u16() uint16 { return binary.BigEndian.Uint16(r.take(2)) }
func (r *reader) u32() uint32 { return binary.BigEndian.Uint32(r.take(4)) }
func (r *reader) u64() uint64 { return binary.BigEndian.Uint64(r.take(8)) }

func (r *reader) str(max int) (string, error) {
	n := int(r.u16())
	if n > max || n > len(r.b) {
		return "", fmt.Errorf("%w: string of %d bytes (at most %d)", ErrMalformed, n, max)
	}
	s := r.take(n)
	if !utf8.Valid(s) {
		return "", fmt.Errorf("%w: string not UTF-8", ErrMalformed)
	}
	return string(s), nil
}

func (r *reader) list() ([]string, error) {
	n := int(r.u16())
	if n > MaxKeys || 2*n > len(r.b) {
		return nil, fmt.Errorf("%w: list of %d entries", ErrMalformed, n)
	}
	var l []string
	for range n {
		s, err := r.str(MaxKey)
		if err != nil {
			return nil, err
		}
		l = append(l, s)
	}
	return l, nil
}

// ReloadRequest is the payload of MsgReload.
type ReloadRequest struct {
	// TimeoutMS bounds the transaction (0: the service's default).
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// NodeResult is one member's part of a committed reload.
type NodeResult struct {
	NodeID  uint32   `json:"nodeid"`
	Applied []string `json:"applied"`
	// PendingRestart: changed in the node's file, applied by its next
	// start.
	PendingRestart []string `json:"pending_restart"`
}

// Refusal is a member's reason not to reload.
type Refusal struct {
	NodeID uint32 `json:"nodeid"`
	Error  string `json:"error"`
}

// Result is the reply to MsgReload.
type Result struct {
	// ID names the transaction ("node.seq").
	ID        string `json:"id"`
	Committed bool   `json:"committed"`
	// Nodes: every member, when committed.
	Nodes []NodeResult `json:"nodes,omitempty"`
	// Error says why it did not commit; RefusedBy names the members
	// whose file was refused.
	Error     string    `json:"error,omitempty"`
	RefusedBy []Refusal `json:"refused_by,omitempty"`
	// TryAgain: nothing was refused, the moment was wrong (another
	// reload, a membership change, the ring's sync); asking again may
	// work.
	TryAgain bool `json:"try_again,omitempty"`
}

// EncodePayload is an IPC payload: ProtoVersion, then v as JSON.
func EncodePayload(v any) []byte { return versioned.Encode(ProtoVersion, v) }

// DecodePayload checks the version byte and decodes the JSON into v.
func DecodePayload(p []byte, v any) error {
	if err := versioned.Decode(p, ProtoVersion, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}
