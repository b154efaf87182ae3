package srp

import (
	"ringmaster/totem"
)

// entry is one message of a ring, kept for delivery and retransmission
// until it is both delivered locally and held by every member (stable).
type entry struct {
	present   bool
	guarantee totem.Guarantee
	// recovery marks a message carried during recovery: it is an old
	// ring's message (origRing, origSeq) and is never delivered as a
	// message of this ring.
	recovery bool
	sender   totem.NodeID
	origRing totem.RingID
	origSeq  uint64
	// payload is immutable once stored: delivered events and
	// retransmissions share it.
	payload []byte
}

// maxBufSpan bounds how far ahead of the oldest retained message a ring
// buffer grows. Flow control keeps real rings far below it (seq never runs
// more than seqSpan ahead of the ring-wide aru); a sequence number beyond
// it is garbage or from a member far ahead, and is dropped (it will be
// retransmitted once the buffer catches up).
const maxBufSpan = 1 << 16

// msgBuf holds a ring's messages by sequence number in a power-of-two
// circular array: O(1) store, lookup and release, no per-message map
// entry, and storage reused across rotations.
type msgBuf struct {
	ents []entry
	base uint64 // lowest sequence number still retained (released below)
}

func newMsgBuf() msgBuf { return msgBuf{ents: make([]entry, 256), base: 1} }

func (b *msgBuf) reset() {
	clear(b.ents)
	b.base = 1
}

// get returns the message with sequence number seq, or nil.
func (b *msgBuf) get(seq uint64) *entry {
	if seq < b.base || seq-b.base >= uint64(len(b.ents)) {
		return nil
	}
	e := &b.ents[seq&uint64(len(b.ents)-1)]
	if !e.present {
		return nil
	}
	return e
}

func (b *msgBuf) has(seq uint64) bool { return b.get(seq) != nil }

// put stores e at seq. It reports false if seq was released or lies beyond
// maxBufSpan, or is already present.
func (b *msgBuf) put(seq uint64, e entry) bool {
	if seq < b.base || seq-b.base >= maxBufSpan {
		return false
	}
	for seq-b.base >= uint64(len(b.ents)) {
		b.grow()
	}
	slot := &b.ents[seq&uint64(len(b.ents)-1)]
	if slot.present {
		return false
	}
	e.present = true
	*slot = e
	return true
}

func (b *msgBuf) grow() {
	n := make([]entry, 2*len(b.ents))
	mask := uint64(len(n) - 1)
	old := uint64(len(b.ents) - 1)
	for s := b.base; s < b.base+uint64(len(b.ents)); s++ {
		n[s&mask] = b.ents[s&old]
	}
	b.ents = n
}

// release forgets every message up to and including seq.
func (b *msgBuf) release(seq uint64) {
	if seq < b.base {
		return
	}
	if seq-b.base >= uint64(len(b.ents)) {
		clear(b.ents)
	} else {
		mask := uint64(len(b.ents) - 1)
		for s := b.base; s <= seq; s++ {
			b.ents[s&mask] = entry{}
		}
	}
	b.base = seq + 1
}

// ringLog is the receive state of one ring: its messages and how far this
// processor has received, delivered and knows them to be stable.
type ringLog struct {
	buf       msgBuf
	aru       uint64 // my_aru: every message up to aru is held
	high      uint64 // highest sequence number held
	delivered uint64 // every message up to delivered was delivered (or skipped)
	safe      uint64 // every member held every message up to safe (two-visit rule)
	// lastSafe is the highest sequence number of a safe message of
	// this ring (0: none): while the token's aru has not covered it for
	// a few visits, a held token could delay its delivery (holdQuietNow).
	lastSafe uint64
}

func newRingLog() ringLog { return ringLog{buf: newMsgBuf()} }

func (l *ringLog) reset() {
	l.buf.reset()
	l.aru, l.high, l.delivered, l.safe, l.lastSafe = 0, 0, 0, 0, 0
}

// add stores a message and advances aru; it reports whether it was new.
func (l *ringLog) add(seq uint64, e entry) bool {
	if seq <= l.aru || !l.buf.put(seq, e) {
		return false
	}
	if seq > l.high {
		l.high = seq
	}
	if e.guarantee == totem.Safe && !e.recovery && seq > l.lastSafe {
		l.lastSafe = seq
	}
	for l.buf.has(l.aru + 1) {
		l.aru++
	}
	return true
}

// release frees what is both delivered and stable.
func (l *ringLog) release() {
	upto := min(l.safe, l.delivered)
	if upto >= l.buf.base {
		l.buf.release(upto)
	}
}
