// Package pg sits between the ring (totem/srp) and the executive: it packs
// many small application messages into one ring payload, fragments large
// ones (up to totem.MaxMessageSize) over several, reassembles them in order
// per sender, and labels each with its (service, message id) for the
// executive's demultiplexer.
//
// # Frame format (version 1)
//
// A frame is one srp payload: a version byte, then records back to back.
// All integers are big endian; len, total and chunk are unsigned varints.
//
//	frame  = version(1) record*
//	whole  = 0x00 service(2) id(2) len  data[len]            a whole message
//	first  = 0x01 service(2) id(2) seq(4) total chunk data  first fragment
//	middle = 0x02 seq(4) chunk data[chunk]                   continuation
//	last   = 0x03 seq(4) chunk data[chunk]                   final fragment
//
// Record kinds are numbered constants, append only. seq numbers a sender's
// fragmented messages, so a continuation can only ever complete the message
// it belongs to. Every record of a frame has the frame's guarantee (srp
// carries it), so agreed and safe messages never share a frame.
//
// # Size budget
//
// A frame must fit one datagram: NetMTU − 28 (IPv4 and UDP headers) −
// the crypto envelope (crypto.Envelope.Overhead, 34 bytes with an AEAD) −
// srp's per-message header. The ring driver computes it (see
// totem/ring.FrameBudget) and gives it to both srp (MaxPayload) and the
// Packer. A whole-message record costs at most 8 bytes, a first fragment
// 15, a continuation 9, plus 1 version byte per frame: with the defaults
// (netmtu 1500, aes256) about 1.4 KB of application data per datagram.
//
// # Atomicity across configuration changes
//
// A fragmented message is delivered whole or not at all, and identically on
// every member of a configuration (virtual synchrony):
//   - at a configuration change, the partial message of a sender that is not
//     in the new configuration is dropped: its remaining fragments never
//     come;
//   - at a regular configuration that adds members (Joined not empty), every
//     partial message is dropped, because the newcomers did not see its
//     first fragments and could not deliver it; its remaining fragments
//     then arrive as orphans everywhere and are dropped everywhere. Whether
//     a regular configuration adds members is the same on all its members,
//     so all of them decide alike. Such a message is lost (counted in
//     Stats.Cut) even though its sender stayed: the alternative, delivering
//     it on the old members only, would break virtual synchrony.
package pg

import (
	"encoding/binary"
	"errors"
	"fmt"

	"ringmaster/totem"
)

// Version is the frame format version, the first byte of every frame.
const Version = 1

// Record kinds. Numbers are part of the wire protocol: append only.
const (
	kindWhole  = 0
	kindFirst  = 1
	kindMiddle = 2
	kindLast   = 3
)

const (
	maxWholeHeader = 1 + 2 + 2 + binary.MaxVarintLen32
	maxFirstHeader = 1 + 2 + 2 + 4 + 2*3 // total and chunk ≤ 2^21 fit 3 varint bytes
	maxContHeader  = 1 + 4 + 3
	// MinBudget is the smallest frame budget: room for a header and some
	// data, so that fragmenting always makes progress.
	MinBudget = 64
	// minChunk: below this much room a frame is closed rather than given a
	// tiny first fragment.
	minChunk = 32
)

// Errors.
var (
	ErrBudget    = errors.New("frame budget too small")
	ErrMalformed = errors.New("malformed pg frame")
)

// Frame is one packed srp payload and the guarantee to send it with.
type Frame struct {
	Data      []byte
	Guarantee totem.Guarantee
	// Msgs counts the messages that end in this frame (whole ones and
	// last fragments): a sender's queue accounting drops them when the
	// frame is sent.
	Msgs int
}

// Packer turns application messages into frames. It is not safe for
// concurrent use (the ring driver's Run loop owns it).
type Packer struct {
	budget int
	cur    []byte
	curG   totem.Guarantee
	curN   int     // messages ending in cur
	ready  []Frame // closed frames, oldest first
	head   int     // ready[head:] are pending
	seq    uint32  // next fragmented-message number
	free   [][]byte
	// Messages counts the messages added.
	Messages uint64
}

// NewPacker returns a Packer whose frames are at most budget bytes.
func NewPacker(budget int) (*Packer, error) {
	if budget < MinBudget {
		return nil, fmt.Errorf("%w: %d bytes (minimum %d)", ErrBudget, budget, MinBudget)
	}
	return &Packer{budget: budget}, nil
}

// Budget is the largest frame the Packer makes.
func (p *Packer) Budget() int { return p.budget }

// Add packs one message. It copies payload. Frames become available through
// Next as they fill; call Flush to close the last, partly filled one.
func (p *Packer) Add(service, id uint16, g totem.Guarantee, payload []byte) error {
	if len(payload) > totem.MaxMessageSize {
		return fmt.Errorf("%w: %d bytes", totem.ErrTooLarge, len(payload))
	}
	p.Messages++
	if p.cur != nil && p.curG != g {
		p.Flush()
	}
	// Whole, in the current frame or a fresh one.
	if len(payload)+maxWholeHeader <= p.budget {
		if p.cur == nil || p.room() < len(payload)+maxWholeHeader {
			p.Flush()
			p.open(g)
		}
		p.cur = append(p.cur, kindWhole)
		p.cur = binary.BigEndian.AppendUint16(p.cur, service)
		p.cur = binary.BigEndian.AppendUint16(p.cur, id)
		p.cur = binary.AppendUvarint(p.cur, uint64(len(payload)))
		p.cur = append(p.cur, payload...)
		p.curN++
		return nil
	}
	// Fragmented: the first fragment may share the current frame.
	if p.cur == nil || p.room() < maxFirstHeader+minChunk {
		p.Flush()
		p.open(g)
	}
	seq := p.seq
	p.seq++
	chunk := p.room() - maxFirstHeader
	p.cur = append(p.cur, kindFirst)
	p.cur = binary.BigEndian.AppendUint16(p.cur, service)
	p.cur = binary.BigEndian.AppendUint16(p.cur, id)
	p.cur = binary.BigEndian.AppendUint32(p.cur, seq)
	p.cur = binary.AppendUvarint(p.cur, uint64(len(payload)))
	p.cur = binary.AppendUvarint(p.cur, uint64(chunk))
	p.cur = append(p.cur, payload[:chunk]...)
	rest := payload[chunk:]
	for len(rest) > 0 {
		p.Flush()
		p.open(g)
		chunk = min(len(rest), p.room()-maxContHeader)
		kind := byte(kindMiddle)
		if chunk == len(rest) {
			kind = kindLast
		}
		p.cur = append(p.cur, kind)
		p.cur = binary.BigEndian.AppendUint32(p.cur, seq)
		p.cur = binary.AppendUvarint(p.cur, uint64(chunk))
		p.cur = append(p.cur, rest[:chunk]...)
		rest = rest[chunk:]
	}
	// The last fragment's frame stays open: small messages may follow.
	p.curN++
	return nil
}

func (p *Packer) room() int { return p.budget - len(p.cur) }

func (p *Packer) open(g totem.Guarantee) {
	if n := len(p.free); n > 0 {
		p.cur = p.free[n-1][:1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
	} else {
		p.cur = make([]byte, 1, p.budget)
	}
	p.cur[0] = Version
	p.curG = g
}

// Flush closes the current frame, if any, making it available to Next.
func (p *Packer) Flush() {
	if p.cur == nil {
		return
	}
	if p.head > 0 && p.head == len(p.ready) {
		clear(p.ready) // drop references to sent frames
		p.ready, p.head = p.ready[:0], 0
	}
	p.ready = append(p.ready, Frame{Data: p.cur, Guarantee: p.curG, Msgs: p.curN})
	p.cur, p.curN = nil, 0
}

// Pending is the number of closed frames not yet taken.
func (p *Packer) Pending() int { return len(p.ready) - p.head }

// Open reports whether a partly filled frame is waiting for Flush.
func (p *Packer) Open() bool { return p.cur != nil }

// Peek returns the oldest closed frame without taking it (ok false when
// there is none), so a driver whose ring is full can try again later.
func (p *Packer) Peek() (Frame, bool) {
	if p.head == len(p.ready) {
		return Frame{}, false
	}
	return p.ready[p.head], true
}

// Pop takes the oldest closed frame (the one Peek returned).
func (p *Packer) Pop() {
	if p.head < len(p.ready) {
		p.ready[p.head] = Frame{}
		p.head++
	}
}

// maxFree bounds the frames kept for reuse (a 1 MiB message makes ~750;
// keeping them all would pin a megabyte for a rare burst).
const maxFree = 64

// Release gives a frame's buffer back for reuse, once whoever took it is
// done with it (srp copies payloads in Send, so the driver releases a frame
// as soon as Send accepted it).
func (p *Packer) Release(frame []byte) {
	if cap(frame) == p.budget && len(p.free) < maxFree {
		p.free = append(p.free, frame[:0])
	}
}

// Stats counts what the Reassembler dropped.
type Stats struct {
	// Delivered messages.
	Delivered uint64
	// Malformed frames (the rest of the frame was skipped).
	Malformed uint64
	// Orphans: continuation fragments without the start they belong to
	// (normal after a cut: see the package documentation).
	Orphans uint64
	// Cut: partial messages dropped at a configuration change.
	Cut uint64
}

type partial struct {
	service, id uint16
	seq         uint32
	g           totem.Guarantee
	total       int
	buf         []byte
}

// Reassembler decodes frames in delivery order and rebuilds fragmented
// messages per sender. It is not safe for concurrent use.
type Reassembler struct {
	partials map[totem.NodeID]*partial
	stats    Stats
}

// NewReassembler returns an empty Reassembler.
func NewReassembler() *Reassembler {
	return &Reassembler{partials: map[totem.NodeID]*partial{}}
}

// Stats returns the counters.
func (r *Reassembler) Stats() Stats { return r.stats }

// Frame decodes one delivered frame from sender and calls deliver for every
// message it completes, in order. Payloads of whole messages alias frame
// (which therefore must not be modified afterwards); reassembled ones are
// fresh. A malformed record stops decoding of the frame (counted, and
// returned as an error wrapping ErrMalformed); the records before it were
// delivered. Every node decodes the same frames the same way, so even then
// all nodes deliver the same messages.
func (r *Reassembler) Frame(sender totem.NodeID, g totem.Guarantee, frame []byte, deliver func(totem.Message)) error {
	err := r.frame(sender, g, frame, deliver)
	if err != nil {
		r.stats.Malformed++
	}
	return err
}

func (r *Reassembler) frame(sender totem.NodeID, g totem.Guarantee, b []byte, deliver func(totem.Message)) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	if b[0] != Version {
		return fmt.Errorf("%w: version %d", ErrMalformed, b[0])
	}
	d := decoder{b: b[1:]}
	for len(d.b) > 0 {
		kind := d.u8()
		switch kind {
		case kindWhole:
			svc, id := d.u16(), d.u16()
			data := d.bytes(d.uvarint(totem.MaxMessageSize))
			if d.err != nil {
				return d.fail(kind)
			}
			r.stats.Delivered++
			deliver(totem.Message{Sender: sender, Service: svc, ID: id, Guarantee: g, Payload: data[:len(data):len(data)]})
		case kindFirst:
			svc, id, seq := d.u16(), d.u16(), d.u32()
			total := d.uvarint(totem.MaxMessageSize)
			data := d.bytes(d.uvarint(totem.MaxMessageSize))
			if d.err == nil && len(data) >= total {
				d.err = errors.New("first fragment holds the whole message")
			}
			if d.err != nil {
				return d.fail(kind)
			}
			if _, ok := r.partials[sender]; ok {
				r.stats.Cut++ // a new start replaces an unfinished message
			}
			p := &partial{service: svc, id: id, seq: seq, g: g, total: total, buf: make([]byte, 0, total)}
			p.buf = append(p.buf, data...)
			r.partials[sender] = p
		case kindMiddle, kindLast:
			seq := d.u32()
			data := d.bytes(d.uvarint(totem.MaxMessageSize))
			if d.err != nil {
				return d.fail(kind)
			}
			p := r.partials[sender]
			if p == nil || p.seq != seq {
				r.stats.Orphans++
				continue
			}
			if p.g != g || len(p.buf)+len(data) > p.total || (kind == kindLast) != (len(p.buf)+len(data) == p.total) {
				delete(r.partials, sender)
				r.stats.Cut++
				return fmt.Errorf("%w: fragment %d of node %d does not fit its message", ErrMalformed, seq, sender)
			}
			p.buf = append(p.buf, data...)
			if kind == kindLast {
				delete(r.partials, sender)
				r.stats.Delivered++
				deliver(totem.Message{Sender: sender, Service: p.service, ID: p.id, Guarantee: g, Payload: p.buf})
			}
		default:
			return fmt.Errorf("%w: record kind %d", ErrMalformed, kind)
		}
	}
	return nil
}

// ConfChange drops the partial messages that can no longer complete
// consistently (see the package documentation).
func (r *Reassembler) ConfChange(c totem.ConfChange) {
	for s := range r.partials {
		if !contains(c.Members, s) || (c.Kind == totem.Regular && len(c.Joined) > 0) {
			delete(r.partials, s)
			r.stats.Cut++
		}
	}
}

// Partial reports whether sender has a message half reassembled.
func (r *Reassembler) Partial(sender totem.NodeID) bool { return r.partials[sender] != nil }

func contains(s []totem.NodeID, n totem.NodeID) bool {
	for _, v := range s {
		if v == n {
			return true
		}
	}
	return false
}

// decoder reads big-endian fields; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) need(n int) bool {
	if d.err != nil {
		return false
	}
	if len(d.b) < n {
		d.err = fmt.Errorf("truncated: need %d bytes, have %d", n, len(d.b))
		return false
	}
	return true
}

func (d *decoder) u8() byte {
	if !d.need(1) {
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) u16() uint16 {
	if !d.need(2) {
		return 0
	}
	v := binary.BigEndian.Uint16(d.b)
	d.b = d.b[2:]
	return v
}

func (d *decoder) u32() uint32 {
	if !d.need(4) {
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) uvarint(max int) int {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errors.New("bad varint")
		return 0
	}
	if v > uint64(max) {
		d.err = fmt.Errorf("length %d above %d", v, max)
		return 0
	}
	d.b = d.b[n:]
	return int(v)
}

func (d *decoder) bytes(n int) []byte {
	if !d.need(n) {
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) fail(kind byte) error {
	return fmt.Errorf("%w: record kind %d: %v", ErrMalformed, kind, d.err)
}
