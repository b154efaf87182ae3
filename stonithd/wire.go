package stonithd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// History on the ring. The ringd wiring multicasts the entries a node
// records (Driver's OnHistory) and, after a membership change, each node's
// whole history, so a joining node catches up; receivers MergeHistory.
// Merge is order-independent, so no other coordination is needed.
//
// Wire format, version 1 (big-endian):
//
//	version u8 = 1 | type u8 | count u16 | count × entry
//	entry: id, target, action, device, result, origin, executioner,
//	       client, reason: each a u16 length and bytes;
//	       time, started: int64 Unix nanoseconds
//
// Message types are numbered constants, only ever appended.
const WireVersion = 1

// MsgType is a stonithd ring message type.
type MsgType uint8

// Message types.
const (
	// MsgHistory carries history entries to merge.
	MsgHistory MsgType = 1
)

// Wire limits: a message holds at most two full histories, and each
// field is bounded so a corrupt length cannot make us allocate much.
const (
	maxWireEntries = 2 * DefaultHistoryMax
	maxWireField   = 4096
)

// ErrWire is wrapped by every decoding error.
var ErrWire = errors.New("stonithd: malformed message")

// EncodeHistory encodes entries as a MsgHistory message. Over-long
// fields are refused rather than cut, since a cut ID would not merge.
func EncodeHistory(entries []Entry) ([]byte, error) {
	if len(entries) > maxWireEntries {
		return nil, fmt.Errorf("%w: %d entries, at most %d", ErrWire, len(entries), maxWireEntries)
	}
	b := []byte{WireVersion, byte(MsgHistory)}
	b = binary.BigEndian.AppendUint16(b, uint16(len(entries)))
	for _, e := range entries {
		for _, s := range e.fields() {
			if len(s) > maxWireField {
				return nil, fmt.Errorf("%w: entry %q: field of %d bytes", ErrWire, e.ID, len(s))
			}
			b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
			b = append(b, s...)
		}
		b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixNano()))
		b = binary.BigEndian.AppendUint64(b, uint64(e.Started.UnixNano()))
	}
	return b, nil
}

func (e *Entry) fields() []string {
	return []string{e.ID, e.Target, e.Action, e.Device, e.Result, e.Origin, e.Executioner, e.Client, e.Reason}
}

// DecodeHistory decodes a MsgHistory message. It rejects, never panics
// on, bad input: unknown version or type, truncation, trailing bytes,
// an entry without ID or target, or a result other than success/failed.
func DecodeHistory(b []byte) ([]Entry, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: %d bytes", ErrWire, len(b))
	}
	if b[0] != WireVersion {
		return nil, fmt.Errorf("%w: version %d", ErrWire, b[0])
	}
	if MsgType(b[1]) != MsgHistory {
		return nil, fmt.Errorf("%w: type %d", ErrWire, b[1])
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n > maxWireEntries {
		return nil, fmt.Errorf("%w: %d entries", ErrWire, n)
	}
	p := b[4:]
	out := make([]Entry, 0, min(n, len(p)/34+1))
	for i := 0; i < n; i++ {
		var e Entry
		dst := []*string{&e.ID, &e.Target, &e.Action, &e.Device, &e.Result, &e.Origin, &e.Executioner, &e.Client, &e.Reason}
		for _, d := range dst {
			if len(p) < 2 {
				return nil, fmt.Errorf("%w: entry %d truncated", ErrWire, i)
			}
			l := int(binary.BigEndian.Uint16(p))
			if l > maxWireField || len(p) < 2+l {
				return nil, fmt.Errorf("%w: entry %d: field length %d", ErrWire, i, l)
			}
			*d = string(p[2 : 2+l])
			p = p[2+l:]
		}
		if len(p) < 16 {
			return nil, fmt.Errorf("%w: entry %d: times truncated", ErrWire, i)
		}
		e.Time = time.Unix(0, int64(binary.BigEndian.Uint64(p))).UTC()
		e.Started = time.Unix(0, int64(binary.BigEndian.Uint64(p[8:]))).UTC()
		p = p[16:]
		if e.ID == "" || e.Target == "" {
			return nil, fmt.Errorf("%w: entry %d without id or target", ErrWire, i)
		}
		if e.Result != ResultSuccess && e.Result != ResultFailed {
			return nil, fmt.Errorf("%w: entry %d: result %q", ErrWire, i, e.Result)
		}
		out = append(out, e)
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrWire, len(p))
	}
	return out, nil
}
