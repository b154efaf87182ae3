package wire

import (
	"encoding/binary"

	"ringmaster/totem"
)

// Token flags. Bits are part of the protocol: append only.
const (
	// TokenRecovered is set by the first member that finds recovery
	// complete on a new ring; every member still in recovery that sees it
	// completes recovery too (see srp's recovery rules).
	TokenRecovered uint8 = 1 << 0
)

// Token is the ordering token (Totem's regular token).
//
//	ring(12) token_seq(8) seq(8) aru(8) aru_id(4) flags(1) busy(4)
//	fcc(4) backlog(4) rtr_count(2) rtr(8 each)
type Token struct {
	Ring totem.RingID
	// TokenSeq grows by one at every forward; receivers drop a token whose
	// TokenSeq is not above the last one they accepted (duplicates,
	// retransmissions).
	TokenSeq uint64
	// Seq is the highest message sequence number assigned on the ring.
	Seq uint64
	// Aru is "all received up to", lowered by any member that lacks a
	// message and raised only by the member that lowered it (AruID), or by
	// anyone when AruID is 0.
	Aru   uint64
	AruID totem.NodeID
	Flags uint8
	// Busy is, during recovery, the last member that still had old-ring
	// messages to re-broadcast (0: none since it cleared).
	Busy totem.NodeID
	// FCC counts the messages broadcast during the last rotation and
	// Backlog the messages queued ring-wide (flow control).
	FCC     uint32
	Backlog uint32
	// Rtr lists sequence numbers somebody is missing.
	Rtr []uint64
}

// AppendToken encodes t after dst.
func AppendToken(dst []byte, from totem.NodeID, t *Token) []byte {
	dst = appendHeader(dst, TypeToken, from)
	dst = appendRing(dst, t.Ring)
	dst = binary.BigEndian.AppendUint64(dst, t.TokenSeq)
	dst = binary.BigEndian.AppendUint64(dst, t.Seq)
	dst = binary.BigEndian.AppendUint64(dst, t.Aru)
	dst = binary.BigEndian.AppendUint32(dst, uint32(t.AruID))
	dst = append(dst, t.Flags)
	dst = binary.BigEndian.AppendUint32(dst, uint32(t.Busy))
	dst = binary.BigEndian.AppendUint32(dst, t.FCC)
	dst = binary.BigEndian.AppendUint32(dst, t.Backlog)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(t.Rtr)))
	for _, s := range t.Rtr {
		dst = binary.BigEndian.AppendUint64(dst, s)
	}
	return dst
}

// DecodeToken decodes a token datagram into t, reusing t.Rtr's storage.
func DecodeToken(b []byte, t *Token) (Header, error) {
	r, h := start(b, TypeToken)
	t.Ring = r.ring("ring")
	t.TokenSeq = r.seq("token_seq", MaxTokenSeq)
	t.Seq = r.seq("seq", MaxMsgSeq)
	t.Aru = r.seq("aru", MaxMsgSeq)
	t.AruID = totem.NodeID(r.u32("aru_id"))
	t.Flags = r.u8("flags")
	t.Busy = totem.NodeID(r.u32("busy"))
	t.FCC = r.u32("fcc")
	t.Backlog = r.u32("backlog")
	if r.err == nil && (t.FCC > MaxCount || t.Backlog > MaxCount) {
		r.fail(ErrRange, "fcc %d backlog %d", t.FCC, t.Backlog)
	}
	n := int(r.u16("rtr count"))
	t.Rtr = t.Rtr[:0]
	if r.err == nil && n > MaxRtr {
		r.fail(ErrMalformed, "rtr: %d entries", n)
	}
	if r.need(8*n, "rtr") {
		for i := 0; i < n; i++ {
			s := binary.BigEndian.Uint64(r.b[8*i:])
			if s == 0 || s > MaxMsgSeq {
				// (Entries above seq are ignored by srp.)
				r.fail(ErrRange, "rtr entry %d", s)
				break
			}
			t.Rtr = append(t.Rtr, s)
		}
		r.b = r.b[8*n:]
	}
	if r.err == nil && t.Aru > t.Seq {
		r.fail(ErrMalformed, "aru %d above seq %d", t.Aru, t.Seq)
	}
	if r.err == nil && t.Ring.Rep == 0 {
		r.fail(ErrMalformed, "ring rep 0")
	}
	r.end()
	return h, r.err
}

// Mcast flags. Bits are part of the protocol: append only.
const (
	// McastRecovery marks a message re-broadcast during recovery: it
	// carries a message of an old ring (OrigRing, OrigSeq) inside the new
	// ring's sequence space and is never delivered as a new-ring message.
	McastRecovery uint8 = 1 << 0
)

// Mcast is a regular (ordered) message.
//
//	ring(12) seq(8) sender(4) guarantee(1) flags(1)
//	[flags&McastRecovery: orig_ring(12) orig_seq(8)] payload(rest)
type Mcast struct {
	Ring      totem.RingID
	Seq       uint64
	Sender    totem.NodeID // originator (Header.From is the transmitter)
	Guarantee totem.Guarantee
	Flags     uint8
	OrigRing  totem.RingID
	OrigSeq   uint64
	// Payload aliases the decoded datagram: copy it to keep it.
	Payload []byte
}

// McastOverhead is the encoded size of an Mcast without payload, recovery
// fields included (the largest header): the driver sizes payloads with it.
const McastOverhead = HeaderLen + 12 + 8 + 4 + 1 + 1 + 12 + 8

// AppendMcast encodes m after dst.
func AppendMcast(dst []byte, from totem.NodeID, m *Mcast) []byte {
	dst = appendHeader(dst, TypeMcast, from)
	dst = appendRing(dst, m.Ring)
	dst = binary.BigEndian.AppendUint64(dst, m.Seq)
	dst = binary.BigEndian.AppendUint32(dst, uint32(m.Sender))
	dst = append(dst, byte(m.Guarantee), m.Flags)
	if m.Flags&McastRecovery != 0 {
		dst = appendRing(dst, m.OrigRing)
		dst = binary.BigEndian.AppendUint64(dst, m.OrigSeq)
	}
	return append(dst, m.Payload...)
}

// DecodeMcast decodes a regular message into m; m.Payload aliases b.
func DecodeMcast(b []byte, m *Mcast) (Header, error) {
	r, h := start(b, TypeMcast)
	m.Ring = r.ring("ring")
	m.Seq = r.seq("seq", MaxMsgSeq)
	m.Sender = r.node("sender")
	m.Guarantee = totem.Guarantee(r.u8("guarantee"))
	m.Flags = r.u8("flags")
	m.OrigRing, m.OrigSeq = totem.RingID{}, 0
	if m.Flags&McastRecovery != 0 {
		m.OrigRing = r.ring("orig_ring")
		m.OrigSeq = r.seq("orig_seq", MaxMsgSeq)
		if r.err == nil && (m.OrigSeq == 0 || m.OrigRing.Rep == 0) {
			r.fail(ErrMalformed, "recovery message without origin")
		}
	}
	if r.err == nil {
		switch {
		case m.Guarantee > totem.Safe:
			r.fail(ErrMalformed, "guarantee %d", m.Guarantee)
		case m.Flags&^McastRecovery != 0:
			r.fail(ErrMalformed, "flags %#x", m.Flags)
		case m.Seq == 0:
			r.fail(ErrMalformed, "seq 0")
		case m.Ring.Rep == 0:
			r.fail(ErrMalformed, "ring rep 0")
		}
	}
	if r.err != nil {
		m.Payload = nil
		return h, r.err
	}
	m.Payload = r.b
	return h, nil
}

// Join flags. Bits are part of the protocol: append only.
const (
	// JoinCommitted marks a join sent (unicast) by a processor already in
	// commit or recovery for a ring formed from exactly these sets, to a
	// member still gathering: it agrees and waits for the commit token.
	// Receivers that are themselves forming the ring ignore it.
	JoinCommitted uint8 = 1 << 0
)

// Join is a membership join message, broadcast in gather state.
//
//	ring(12) max_seq(8) flags(1) proc(u16 count, 4 each) fail(u16 count, 4 each)
type Join struct {
	// Ring is the sender's current regular ring (Rep 0 before its first).
	Ring totem.RingID
	// MaxSeq is the highest ring sequence number the sender has used or
	// seen: a new ring's seq is chosen above every member's MaxSeq, and a
	// join whose MaxSeq is below the receiver's ring was sent before that
	// ring formed (stale).
	MaxSeq uint64
	Flags  uint8
	Proc   []totem.NodeID
	Fail   []totem.NodeID
}

// AppendJoin encodes j after dst.
func AppendJoin(dst []byte, from totem.NodeID, j *Join) []byte {
	dst = appendHeader(dst, TypeJoin, from)
	dst = appendRing(dst, j.Ring)
	dst = binary.BigEndian.AppendUint64(dst, j.MaxSeq)
	dst = append(dst, j.Flags)
	dst = appendNodes(dst, j.Proc)
	return appendNodes(dst, j.Fail)
}

// DecodeJoin decodes a join into j, reusing its slices.
func DecodeJoin(b []byte, j *Join) (Header, error) {
	r, h := start(b, TypeJoin)
	j.Ring = r.ring("ring")
	j.MaxSeq = r.seq("max_seq", MaxRingSeq)
	j.Flags = r.u8("flags")
	j.Proc = r.nodes(j.Proc, "proc")
	j.Fail = r.nodes(j.Fail, "fail")
	r.end()
	if r.err == nil && j.Flags&^JoinCommitted != 0 {
		r.fail(ErrMalformed, "flags %#x", j.Flags)
	}
	if r.err == nil && !subset(j.Fail, j.Proc) {
		r.fail(ErrMalformed, "fail set not within proc set")
	}
	if r.err == nil && !contains(j.Proc, h.From) {
		r.fail(ErrMalformed, "sender %d not in its proc set", h.From)
	}
	return h, r.err
}

// CommitEntry is one member's line in the commit token: where it comes from.
type CommitEntry struct {
	Filled  bool
	OldRing totem.RingID // the member's last regular ring (Rep 0: none)
	Aru     uint64       // its my_aru on OldRing
	HighSeq uint64       // highest OldRing seq it holds
	SafeAru uint64       // highest OldRing seq it knows every member held
}

// Commit rounds.
const (
	// CommitFill: members fill in their entry as the token passes.
	CommitFill uint8 = 1
	// CommitInstall: every entry is filled; members enter recovery.
	CommitInstall uint8 = 2
)

// Commit is the commit token that forms a new ring.
//
//	ring(12) round(1) members(u16 count, 4 each)
//	entries(count × [filled(1) old_ring(12) aru(8) high_seq(8) safe_aru(8)])
type Commit struct {
	Ring    totem.RingID
	Round   uint8
	Members []totem.NodeID
	Entries []CommitEntry
}

const commitEntryLen = 1 + 12 + 8 + 8 + 8

// AppendCommit encodes c after dst. len(c.Entries) must equal
// len(c.Members).
func AppendCommit(dst []byte, from totem.NodeID, c *Commit) []byte {
	dst = appendHeader(dst, TypeCommit, from)
	dst = appendRing(dst, c.Ring)
	dst = append(dst, c.Round)
	dst = appendNodes(dst, c.Members)
	for _, e := range c.Entries {
		f := byte(0)
		if e.Filled {
			f = 1
		}
		dst = append(dst, f)
		dst = appendRing(dst, e.OldRing)
		dst = binary.BigEndian.AppendUint64(dst, e.Aru)
		dst = binary.BigEndian.AppendUint64(dst, e.HighSeq)
		dst = binary.BigEndian.AppendUint64(dst, e.SafeAru)
	}
	return dst
}

// DecodeCommit decodes a commit token into c, reusing its slices.
func DecodeCommit(b []byte, c *Commit) (Header, error) {
	r, h := start(b, TypeCommit)
	c.Ring = r.ring("ring")
	c.Round = r.u8("round")
	c.Members = r.nodes(c.Members, "members")
	c.Entries = c.Entries[:0]
	n := len(c.Members)
	if r.err == nil && (n == 0 || c.Ring.Rep != c.Members[0] || (c.Round != CommitFill && c.Round != CommitInstall)) {
		r.fail(ErrMalformed, "ring %v round %d with %d members", c.Ring, c.Round, n)
	}
	if r.need(n*commitEntryLen, "entries") {
		for i := 0; i < n; i++ {
			var e CommitEntry
			switch r.u8("filled") {
			case 0:
			case 1:
				e.Filled = true
			default:
				r.fail(ErrMalformed, "entry %d: filled flag", i)
			}
			e.OldRing = r.ring("old_ring")
			e.Aru = r.seq("aru", MaxMsgSeq)
			e.HighSeq = r.seq("high_seq", MaxMsgSeq)
			e.SafeAru = r.seq("safe_aru", MaxMsgSeq)
			if r.err == nil && (e.Aru > e.HighSeq || e.SafeAru > e.Aru) {
				r.fail(ErrMalformed, "entry %d: aru %d high %d safe %d", i, e.Aru, e.HighSeq, e.SafeAru)
			}
			c.Entries = append(c.Entries, e)
		}
	}
	r.end()
	return h, r.err
}

// MergeDetect is broadcast by a ring's representative every `merge` ms so
// that rings which can hear each other merge.
//
//	ring(12) max_seq(8)
type MergeDetect struct {
	Ring   totem.RingID
	MaxSeq uint64
}

// AppendMergeDetect encodes m after dst.
func AppendMergeDetect(dst []byte, from totem.NodeID, m *MergeDetect) []byte {
	dst = appendHeader(dst, TypeMergeDetect, from)
	dst = appendRing(dst, m.Ring)
	return binary.BigEndian.AppendUint64(dst, m.MaxSeq)
}

// DecodeMergeDetect decodes a merge-detect message.
func DecodeMergeDetect(b []byte, m *MergeDetect) (Header, error) {
	r, h := start(b, TypeMergeDetect)
	m.Ring = r.ring("ring")
	m.MaxSeq = r.seq("max_seq", MaxRingSeq)
	r.end()
	return h, r.err
}

// Leave announces a graceful leave: receivers exclude the sender at once
// instead of waiting for the token to be lost.
//
//	ring(12) max_seq(8)
type Leave struct {
	Ring   totem.RingID
	MaxSeq uint64
}

// AppendLeave encodes l after dst.
func AppendLeave(dst []byte, from totem.NodeID, l *Leave) []byte {
	dst = appendHeader(dst, TypeLeave, from)
	dst = appendRing(dst, l.Ring)
	return binary.BigEndian.AppendUint64(dst, l.MaxSeq)
}

// DecodeLeave decodes a leave message.
func DecodeLeave(b []byte, l *Leave) (Header, error) {
	r, h := start(b, TypeLeave)
	l.Ring = r.ring("ring")
	l.MaxSeq = r.seq("max_seq", MaxRingSeq)
	r.end()
	return h, r.err
}

// HoldCancel asks whoever holds the idle token of Ring to pass it on now,
// because the sender has messages queued.
//
//	ring(12)
type HoldCancel struct {
	Ring totem.RingID
}

// AppendHoldCancel encodes m after dst.
func AppendHoldCancel(dst []byte, from totem.NodeID, m *HoldCancel) []byte {
	dst = appendHeader(dst, TypeHoldCancel, from)
	return appendRing(dst, m.Ring)
}

// DecodeHoldCancel decodes a hold-cancel message.
func DecodeHoldCancel(b []byte, m *HoldCancel) (Header, error) {
	r, h := start(b, TypeHoldCancel)
	m.Ring = r.ring("ring")
	r.end()
	return h, r.err
}

// subset reports whether every element of a is in b (both sorted).
func subset(a, b []totem.NodeID) bool {
	j := 0
	for _, x := range a {
		for j < len(b) && b[j] < x {
			j++
		}
		if j == len(b) || b[j] != x {
			return false
		}
	}
	return true
}

func contains(s []totem.NodeID, x totem.NodeID) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}
