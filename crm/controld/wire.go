package controld

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"

	"ringmaster/totem"
)

// Message IDs of the crm service on the ring. Numbers are part of the
// protocol: append only, never reuse.
const (
	// MsgSync carries a member's state after a membership change that
	// added members (see the package doc, "Sync").
	MsgSync uint16 = 1
	// MsgConfig replaces the configuration section, conditionally on the
	// version it was based on.
	MsgConfig uint16 = 2
	// MsgAction asks one node to run an operation (sent by the DC, safe).
	MsgAction uint16 = 3
	// MsgOpResult is the result of an operation a node ran; it is recorded
	// in the sender's operation history on every node.
	MsgOpResult uint16 = 4
	// MsgFenceResult is the outcome of a fencing request made by the DC.
	MsgFenceResult uint16 = 5
	// MsgAttr sets or deletes one of the sender's transient attributes.
	MsgAttr uint16 = 6
	// MsgCleanup forgets a resource's history and fail counts on one node
	// or all nodes (ringctl crm resource cleanup; the DC's clear_failcount).
	MsgCleanup uint16 = 7
)

// wireVersion is the first byte of every crm message.
const wireVersion = 1

// ErrMalformed wraps every decoding error.
var ErrMalformed = errors.New("controld: malformed message")

// maxField bounds one length-prefixed field (the ring carries messages of
// at most 1 MiB anyway).
const maxField = 16 << 20

type encoder struct{ b []byte }

func newEncoder() *encoder { return &encoder{b: []byte{wireVersion}} }

func (e *encoder) u64(v uint64)   { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) i64(v int64)    { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string)   { e.u64(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bytes(p []byte) { e.u64(uint64(len(p))); e.b = append(e.b, p...) }
func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}
func (e *encoder) ring(r totem.RingID) { e.u64(uint64(r.Rep)); e.u64(r.Seq) }
func (e *encoder) version(v Version) {
	e.i64(v.AdminEpoch)
	e.i64(v.Epoch)
	e.i64(v.NumUpdates)
}

// strMap is written sorted by key so that the bytes are deterministic.
func (e *encoder) strMap(m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	e.u64(uint64(len(keys)))
	for _, k := range keys {
		e.str(k)
		e.str(m[k])
	}
}

type decoder struct {
	b   []byte
	err error
}

func newDecoder(p []byte) *decoder {
	d := &decoder{b: p}
	if len(p) == 0 {
		d.err = fmt.Errorf("%w: empty", ErrMalformed)
		return d
	}
	if p[0] != wireVersion {
		d.err = fmt.Errorf("%w: version %d", ErrMalformed, p[0])
		return d
	}
	d.b = p[1:]
	return d
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrMalformed, what)
	}
}

func (d *decoder) u64() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) i64() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int {
	v := d.i64()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail("integer out of range")
		return 0
	}
	return int(v)
}

func (d *decoder) bytes() []byte {
	n := d.u64()
	if d.err != nil {
		return nil
	}
	if n > maxField || n > uint64(len(d.b)) {
		d.fail("field length beyond the message")
		return nil
	}
	p := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return p
}

func (d *decoder) str() string { return string(d.bytes()) }

func (d *decoder) bool() bool {
	if d.err != nil {
		return false
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return false
	}
	v := d.b[0]
	d.b = d.b[1:]
	if v > 1 {
		d.fail("bad boolean")
	}
	return v == 1
}

func (d *decoder) ring() totem.RingID {
	rep := d.u64()
	seq := d.u64()
	if rep > math.MaxUint32 {
		d.fail("node id out of range")
	}
	return totem.RingID{Rep: totem.NodeID(rep), Seq: seq}
}

func (d *decoder) version() Version {
	return Version{AdminEpoch: d.i64(), Epoch: d.i64(), NumUpdates: d.i64()}
}

func (d *decoder) strMap() map[string]string {
	n := d.u64()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("map count beyond the message")
		return nil
	}
	m := make(map[string]string, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		k := d.str()
		m[k] = d.str()
	}
	return m
}

func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return d.err
}

// syncMsg is MsgSync.
type syncMsg struct {
	Ring    totem.RingID
	Version Version
	// Digest identifies the configuration (sha256 of its XML); it breaks
	// ties between equal versions.
	Digest []byte
	// Config is the CIB (configuration only) when the sender speaks for
	// its old ring (the lowest member of its transitional configuration).
	Config []byte
	// Own is the sender's own node_state (a <status> with one node).
	Own []byte
	// Others are the states of the nodes outside the new membership, with
	// their generation, when the sender speaks for its old ring.
	Others []nodeGen
}

type nodeGen struct {
	Node  totem.NodeID
	Gen   uint64
	State []byte // <status> with one node_state
}

func (m *syncMsg) encode() []byte {
	e := newEncoder()
	e.ring(m.Ring)
	e.version(m.Version)
	e.bytes(m.Digest)
	e.bytes(m.Config)
	e.bytes(m.Own)
	e.u64(uint64(len(m.Others)))
	for _, o := range m.Others {
		e.u64(uint64(o.Node))
		e.u64(o.Gen)
		e.bytes(o.State)
	}
	return e.b
}

func decodeSync(p []byte) (*syncMsg, error) {
	d := newDecoder(p)
	m := &syncMsg{Ring: d.ring(), Version: d.version(), Digest: d.bytes(), Config: d.bytes(), Own: d.bytes()}
	n := d.u64()
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail("count beyond the message")
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		id := d.u64()
		if id > math.MaxUint32 {
			d.fail("node id out of range")
		}
		m.Others = append(m.Others, nodeGen{Node: totem.NodeID(id), Gen: d.u64(), State: d.bytes()})
	}
	return m, d.done()
}

// configMsg is MsgConfig.
type configMsg struct {
	// Req identifies the request at its sender (for the reply).
	Req uint64
	// Base is the (admin_epoch, epoch) the change was computed from;
	// Unconditional replaces whatever is there.
	Base          Version
	Unconditional bool
	CIB           []byte // a <cib> whose configuration replaces ours
}

func (m *configMsg) encode() []byte {
	e := newEncoder()
	e.u64(m.Req)
	e.version(m.Base)
	e.bool(m.Unconditional)
	e.bytes(m.CIB)
	return e.b
}

func decodeConfig(p []byte) (*configMsg, error) {
	d := newDecoder(p)
	m := &configMsg{Req: d.u64(), Base: d.version(), Unconditional: d.bool(), CIB: d.bytes()}
	return m, d.done()
}

// actionMsg is MsgAction: one graph action for its target node.
type actionMsg struct {
	Ring totem.RingID
	// Key is the transition key "action:transition:target_rc:uuid".
	Key        string
	Target     totem.NodeID
	Task       string
	OpKey      string
	Resource   string
	Class      string
	Provider   string
	Type       string
	Node       string // uname of the target
	IntervalMS int
	Meta       map[string]string
	Params     map[string]string
}

func (m *actionMsg) encode() []byte {
	e := newEncoder()
	e.ring(m.Ring)
	e.str(m.Key)
	e.u64(uint64(m.Target))
	for _, s := range []string{m.Task, m.OpKey, m.Resource, m.Class, m.Provider, m.Type, m.Node} {
		e.str(s)
	}
	e.i64(int64(m.IntervalMS))
	e.strMap(m.Meta)
	e.strMap(m.Params)
	return e.b
}

func decodeAction(p []byte) (*actionMsg, error) {
	d := newDecoder(p)
	m := &actionMsg{Ring: d.ring(), Key: d.str()}
	t := d.u64()
	if t > math.MaxUint32 {
		d.fail("node id out of range")
	}
	m.Target = totem.NodeID(t)
	m.Task, m.OpKey, m.Resource, m.Class, m.Provider, m.Type, m.Node = d.str(), d.str(), d.str(), d.str(), d.str(), d.str(), d.str()
	m.IntervalMS = d.int()
	m.Meta = d.strMap()
	m.Params = d.strMap()
	return m, d.done()
}

// resultMsg is MsgOpResult.
type resultMsg struct {
	Resource   string
	Class      string
	Provider   string
	Type       string
	Task       string
	IntervalMS int
	RC         int
	OpStatus   int
	CallID     int
	TargetRC   int
	Digest     string
	Key        string // transition key
	Time       int64  // unix seconds at the sender (last-rc-change)
	ExecMS     int64
	Reason     string
	// Cancelled: the recurring operation was cancelled; its history entry
	// is removed rather than recorded.
	Cancelled bool
}

func (m *resultMsg) encode() []byte {
	e := newEncoder()
	for _, s := range []string{m.Resource, m.Class, m.Provider, m.Type, m.Task} {
		e.str(s)
	}
	for _, v := range []int{m.IntervalMS, m.RC, m.OpStatus, m.CallID, m.TargetRC} {
		e.i64(int64(v))
	}
	e.str(m.Digest)
	e.str(m.Key)
	e.i64(m.Time)
	e.i64(m.ExecMS)
	e.str(m.Reason)
	e.bool(m.Cancelled)
	return e.b
}

func decodeResult(p []byte) (*resultMsg, error) {
	d := newDecoder(p)
	m := &resultMsg{Resource: d.str(), Class: d.str(), Provider: d.str(), Type: d.str(), Task: d.str()}
	m.IntervalMS, m.RC, m.OpStatus, m.CallID, m.TargetRC = d.int(), d.int(), d.int(), d.int(), d.int()
	m.Digest, m.Key = d.str(), d.str()
	m.Time, m.ExecMS = d.i64(), d.i64()
	m.Reason = d.str()
	m.Cancelled = d.bool()
	return m, d.done()
}

// fenceMsg is MsgFenceResult.
type fenceMsg struct {
	Key    string // transition key of the fencing action
	Target totem.NodeID
	Uname  string
	Action string // reboot, off, on
	OK     bool
	Reason string
	Time   int64
}

func (m *fenceMsg) encode() []byte {
	e := newEncoder()
	e.str(m.Key)
	e.u64(uint64(m.Target))
	e.str(m.Uname)
	e.str(m.Action)
	e.bool(m.OK)
	e.str(m.Reason)
	e.i64(m.Time)
	return e.b
}

func decodeFence(p []byte) (*fenceMsg, error) {
	d := newDecoder(p)
	m := &fenceMsg{Key: d.str()}
	t := d.u64()
	if t > math.MaxUint32 {
		d.fail("node id out of range")
	}
	m.Target = totem.NodeID(t)
	m.Uname, m.Action, m.OK, m.Reason, m.Time = d.str(), d.str(), d.bool(), d.str(), d.i64()
	return m, d.done()
}

// attrMsg is MsgAttr.
type attrMsg struct {
	Name   string
	Value  string
	Delete bool
}

func (m *attrMsg) encode() []byte {
	e := newEncoder()
	e.str(m.Name)
	e.str(m.Value)
	e.bool(m.Delete)
	return e.b
}

func decodeAttr(p []byte) (*attrMsg, error) {
	d := newDecoder(p)
	m := &attrMsg{Name: d.str(), Value: d.str(), Delete: d.bool()}
	return m, d.done()
}

// cleanupMsg is MsgCleanup.
type cleanupMsg struct {
	Resource string
	// Node limits the cleanup to one node (0: every node).
	Node totem.NodeID
	// FailcountOnly keeps the history (the DC's clear_failcount).
	FailcountOnly bool
}

func (m *cleanupMsg) encode() []byte {
	e := newEncoder()
	e.str(m.Resource)
	e.u64(uint64(m.Node))
	e.bool(m.FailcountOnly)
	return e.b
}

func decodeCleanup(p []byte) (*cleanupMsg, error) {
	d := newDecoder(p)
	m := &cleanupMsg{Resource: d.str()}
	n := d.u64()
	if n > math.MaxUint32 {
		d.fail("node id out of range")
	}
	m.Node = totem.NodeID(n)
	m.FailcountOnly = d.bool()
	return m, d.done()
}
