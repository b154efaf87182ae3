// Package wire is the CPG wire format, shared by the cpg service in ringd
// and the clients/cpg library: IPC request and event payloads and the
// service's messages on the ring. It has no logic beyond encoding, and every
// decoder rejects (never panics on) bad input; see the fuzz tests.
//
// Every payload starts with a version byte (Version). Integers are big
// endian. A group name is 1..MaxGroupName bytes, written as a u8 length
// then the bytes (corosync's CPG_MAX_NAME_LENGTH is 128).
//
// The multicast record is one layout used three times, so a message crosses
// the daemon without being re-encoded: the client sends it (ReqMcast), the
// daemon stamps the node ID and pid into it in place and multicasts it
// unchanged (MsgMcast), and every receiving daemon passes the same bytes to
// its local members as the delivery event (EvDeliver).
//
//	0  version    u8
//	1  guarantee  u8   totem.Guarantee (0 agreed, 1 safe)
//	2  name len   u8   1..MaxGroupName
//	3  flags      u8   0
//	4  nodeid     u32  sender's node (stamped by its daemon)
//	8  pid        u32  sender's pid (stamped by its daemon)
//	12 name, then the application payload (at most MaxData bytes)
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"ringmaster/totem"
)

// Version of every CPG payload.
const Version = 1

// MaxGroupName is the longest group name in bytes (corosync: 128).
const MaxGroupName = 128

// RecordHeaderSize is the fixed part of a multicast record.
const RecordHeaderSize = 12

// MaxData is the largest application payload of one CPG message: the
// largest ring message less the record header and the longest name, so any
// group can send it atomically.
const MaxData = totem.MaxMessageSize - RecordHeaderSize - MaxGroupName

// Reason says why a process joined or left a group. Numbers are corosync's
// (cpg.h CPG_REASON_*): applications and tools compare them.
type Reason uint32

// Confchg reasons.
const (
	ReasonJoin     Reason = 1 // the process joined (cpg_join)
	ReasonLeave    Reason = 2 // the process left (cpg_leave)
	ReasonNodeDown Reason = 3 // its node left the ring
	ReasonNodeUp   Reason = 4 // its node joined the ring with the process already in the group
	ReasonProcDown Reason = 5 // the process disconnected or died without leaving
)

func (r Reason) String() string {
	switch r {
	case ReasonJoin:
		return "join"
	case ReasonLeave:
		return "leave"
	case ReasonNodeDown:
		return "nodedown"
	case ReasonNodeUp:
		return "nodeup"
	case ReasonProcDown:
		return "procdown"
	case 0:
		return ""
	}
	return fmt.Sprintf("reason(%d)", uint32(r))
}

// IPC requests (client to daemon, service exec.ServiceCPG). Numbers are
// part of the protocol: append only.
const (
	ReqJoin        uint16 = 1 // JoinReq → empty
	ReqLeave       uint16 = 2 // empty → empty
	ReqMcast       uint16 = 3 // record → empty
	ReqMcastBatch  uint16 = 4 // batch of records → BatchReply
	ReqMembers     uint16 = 5 // name → address list
	ReqLocalNodeID uint16 = 6 // empty → u32
	ReqGroups      uint16 = 7 // empty → group list
	ReqTotemConf   uint16 = 8 // empty → TotemConf
)

// IPC events (daemon to client). Append only.
const (
	EvDeliver   uint16 = 1 // record
	EvConfChg   uint16 = 2 // ConfChg
	EvTotemConf uint16 = 3 // TotemConf
)

// Ring messages of the cpg service. Append only.
const (
	MsgProcJoin  uint16 = 1 // ProcMsg: a local process joined a group
	MsgProcLeave uint16 = 2 // ProcMsg: it left (LEAVE) or disconnected (PROCDOWN)
	MsgJoinList  uint16 = 3 // JoinList: sync, the sender's processes
	MsgMcast     uint16 = 4 // record
)

// Errors of decoding.
var (
	ErrVersion   = errors.New("cpg wire: unsupported version")
	ErrTruncated = errors.New("cpg wire: truncated payload")
	ErrName      = errors.New("cpg wire: invalid group name")
	ErrGuarantee = errors.New("cpg wire: unknown guarantee")
	ErrTrailing  = errors.New("cpg wire: trailing bytes")
	ErrTooLarge  = errors.New("cpg wire: message too large")
)

// CheckName validates a group name.
func CheckName(name []byte) error {
	if len(name) == 0 || len(name) > MaxGroupName {
		return fmt.Errorf("%w: %d bytes (1..%d)", ErrName, len(name), MaxGroupName)
	}
	return nil
}

// Address is one process in a group, as corosync's struct cpg_address.
type Address struct {
	NodeID totem.NodeID
	PID    uint32
	Reason Reason // 0 in member lists
}

// --- multicast record ---

// Record is a decoded multicast record; Name and Data alias the input.
type Record struct {
	Guarantee totem.Guarantee
	NodeID    totem.NodeID
	PID       uint32
	Name      []byte
	Data      []byte
}

// RecordSize is the encoded size of a record for a name and data length.
func RecordSize(nameLen, dataLen int) int { return RecordHeaderSize + nameLen + dataLen }

// AppendRecord appends an encoded record. The caller checks name and size.
func AppendRecord(b []byte, g totem.Guarantee, node totem.NodeID, pid uint32, name, data []byte) []byte {
	b = append(b, Version, byte(g), byte(len(name)), 0)
	b = binary.BigEndian.AppendUint32(b, uint32(node))
	b = binary.BigEndian.AppendUint32(b, pid)
	b = append(b, name...)
	return append(b, data...)
}

// ParseRecord decodes a record without copying.
func ParseRecord(b []byte) (Record, error) {
	if len(b) < RecordHeaderSize {
		return Record{}, ErrTruncated
	}
	if b[0] != Version {
		return Record{}, fmt.Errorf("%w: %d", ErrVersion, b[0])
	}
	g := totem.Guarantee(b[1])
	if g != totem.Agreed && g != totem.Safe {
		return Record{}, fmt.Errorf("%w: %d", ErrGuarantee, b[1])
	}
	n := int(b[2])
	if n == 0 || n > MaxGroupName {
		return Record{}, fmt.Errorf("%w: %d bytes", ErrName, n)
	}
	if len(b) < RecordHeaderSize+n {
		return Record{}, ErrTruncated
	}
	data := b[RecordHeaderSize+n:]
	if len(data) > MaxData {
		return Record{}, fmt.Errorf("%w: %d bytes (max %d)", ErrTooLarge, len(data), MaxData)
	}
	return Record{
		Guarantee: g,
		NodeID:    totem.NodeID(binary.BigEndian.Uint32(b[4:])),
		PID:       binary.BigEndian.Uint32(b[8:]),
		Name:      b[RecordHeaderSize : RecordHeaderSize+n],
		Data:      data,
	}, nil
}

// StampRecord writes the sender's node and pid into an encoded record in
// place (the daemon does it, so a client cannot claim another identity).
func StampRecord(b []byte, node totem.NodeID, pid uint32) {
	binary.BigEndian.PutUint32(b[4:], uint32(node))
	binary.BigEndian.PutUint32(b[8:], pid)
}

// --- batch of records (ReqMcastBatch) ---
//
//	0 version u8, 1..3 zero, 4 count u32, then count × (len u32, record)

// BatchHeaderSize is the fixed part of a batch.
const BatchHeaderSize = 8

// AppendBatchHeader starts a batch of count records.
func AppendBatchHeader(b []byte, count int) []byte {
	b = append(b, Version, 0, 0, 0)
	return binary.BigEndian.AppendUint32(b, uint32(count))
}

// AppendBatchRecord appends one length-prefixed record to a batch.
func AppendBatchRecord(b []byte, g totem.Guarantee, node totem.NodeID, pid uint32, name, data []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(RecordSize(len(name), len(data))))
	return AppendRecord(b, g, node, pid, name, data)
}

// BatchIter walks the records of a batch without copying.
type BatchIter struct {
	rest  []byte
	count uint32
	err   error
}

// NewBatchIter checks a batch header.
func NewBatchIter(b []byte) (*BatchIter, error) {
	if len(b) < BatchHeaderSize {
		return nil, ErrTruncated
	}
	if b[0] != Version {
		return nil, fmt.Errorf("%w: %d", ErrVersion, b[0])
	}
	return &BatchIter{rest: b[BatchHeaderSize:], count: binary.BigEndian.Uint32(b[4:])}, nil
}

// Len is the number of records the header announces.
func (it *BatchIter) Len() int { return int(it.count) }

// Next returns the next raw record (still to be parsed), or ok false at
// the end or on a framing error (see Err).
func (it *BatchIter) Next() (rec []byte, ok bool) {
	if it.err != nil || it.count == 0 {
		if it.err == nil && len(it.rest) != 0 {
			it.err = ErrTrailing
		}
		return nil, false
	}
	if len(it.rest) < 4 {
		it.err = ErrTruncated
		return nil, false
	}
	n := binary.BigEndian.Uint32(it.rest)
	if uint64(n) > uint64(len(it.rest)-4) {
		it.err = ErrTruncated
		return nil, false
	}
	rec = it.rest[4 : 4+n]
	it.rest = it.rest[4+n:]
	it.count--
	return rec, true
}

// Err is the framing error that stopped Next, if any.
func (it *BatchIter) Err() error { return it.err }

// BatchReply answers ReqMcastBatch: how many records were multicast, and
// why the rest were not (nil when all were).
//
//	0 sent u32, then (only when sent < count) code u16 and message (ipc error)
type BatchReply struct {
	Sent int
	Code uint16
	Msg  string
}

// AppendBatchReply encodes a batch reply.
func AppendBatchReply(b []byte, r BatchReply) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(r.Sent))
	if r.Code != 0 {
		b = binary.BigEndian.AppendUint16(b, r.Code)
		b = append(b, r.Msg...)
	}
	return b
}

// ParseBatchReply decodes a batch reply.
func ParseBatchReply(b []byte) (BatchReply, error) {
	if len(b) < 4 {
		return BatchReply{}, ErrTruncated
	}
	r := BatchReply{Sent: int(binary.BigEndian.Uint32(b))}
	if len(b) > 4 {
		if len(b) < 6 {
			return BatchReply{}, ErrTruncated
		}
		r.Code = binary.BigEndian.Uint16(b[4:])
		r.Msg = string(b[6:])
	}
	return r, nil
}

// --- small messages ---

// decoder reads fields and remembers the first error, so decoders read
// straight through and check once.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *decoder) u8() uint8 {
	if len(d.b) < 1 {
		d.fail(ErrTruncated)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) u32() uint32 {
	if len(d.b) < 4 {
		d.fail(ErrTruncated)
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) u64() uint64 {
	if len(d.b) < 8 {
		d.fail(ErrTruncated)
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) version() {
	if v := d.u8(); d.err == nil && v != Version {
		d.fail(fmt.Errorf("%w: %d", ErrVersion, v))
	}
}

func (d *decoder) name() string {
	n := int(d.u8())
	if d.err != nil {
		return ""
	}
	if n == 0 || n > MaxGroupName {
		d.fail(fmt.Errorf("%w: %d bytes", ErrName, n))
		return ""
	}
	if len(d.b) < n {
		d.fail(ErrTruncated)
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// count reads a list length and checks that at least min bytes per entry
// remain, so a forged count cannot make a decoder allocate gigabytes.
func (d *decoder) count(min int) int {
	n := d.u32()
	if d.err != nil {
		return 0
	}
	if uint64(n)*uint64(min) > uint64(len(d.b)) {
		d.fail(ErrTruncated)
		return 0
	}
	return int(n)
}

func (d *decoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = ErrTrailing
	}
	return d.err
}

func appendName(b []byte, name string) []byte {
	b = append(b, byte(len(name)))
	return append(b, name...)
}

func appendAddrs(b []byte, as []Address) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(as)))
	for _, a := range as {
		b = binary.BigEndian.AppendUint32(b, uint32(a.NodeID))
		b = binary.BigEndian.AppendUint32(b, a.PID)
		b = binary.BigEndian.AppendUint32(b, uint32(a.Reason))
	}
	return b
}

func (d *decoder) addrs() []Address {
	n := d.count(12)
	if n == 0 {
		return nil
	}
	as := make([]Address, n)
	for i := range as {
		as[i] = Address{NodeID: totem.NodeID(d.u32()), PID: d.u32(), Reason: Reason(d.u32())}
	}
	return as
}

// JoinReq is ReqJoin: the group, and the pid to present (0: the daemon
// uses the peer's pid from SO_PEERCRED).
type JoinReq struct {
	Name string
	PID  uint32
}

// AppendJoinReq encodes a join request.
func AppendJoinReq(b []byte, r JoinReq) []byte {
	b = append(b, Version)
	b = appendName(b, r.Name)
	return binary.BigEndian.AppendUint32(b, r.PID)
}

// ParseJoinReq decodes a join request.
func ParseJoinReq(b []byte) (JoinReq, error) {
	d := decoder{b: b}
	d.version()
	r := JoinReq{Name: d.name(), PID: d.u32()}
	return r, d.end()
}

// AppendName encodes a request that carries only a group name (ReqMembers).
func AppendName(b []byte, name string) []byte {
	return appendName(append(b, Version), name)
}

// ParseName decodes a request that carries only a group name.
func ParseName(b []byte) (string, error) {
	d := decoder{b: b}
	d.version()
	n := d.name()
	return n, d.end()
}

// AppendAddrList encodes a member list (reply to ReqMembers).
func AppendAddrList(b []byte, as []Address) []byte {
	return appendAddrs(append(b, Version), as)
}

// ParseAddrList decodes a member list.
func ParseAddrList(b []byte) ([]Address, error) {
	d := decoder{b: b}
	d.version()
	as := d.addrs()
	return as, d.end()
}

// ProcMsg is MsgProcJoin and MsgProcLeave on the ring: the sender's
// process pid joined or left group Name, for Reason.
type ProcMsg struct {
	Reason Reason
	Name   string
	PID    uint32
}

// AppendProcMsg encodes a join or leave message.
func AppendProcMsg(b []byte, m ProcMsg) []byte {
	b = append(b, Version, byte(m.Reason))
	b = appendName(b, m.Name)
	return binary.BigEndian.AppendUint32(b, m.PID)
}

// ParseProcMsg decodes a join or leave message.
func ParseProcMsg(b []byte) (ProcMsg, error) {
	d := decoder{b: b}
	d.version()
	m := ProcMsg{Reason: Reason(d.u8()), Name: d.name(), PID: d.u32()}
	return m, d.end()
}

// JoinEntry is one process of a join list.
type JoinEntry struct {
	Name string
	PID  uint32
}

// JoinList is MsgJoinList: during sync of ring Ring, every process of the
// sender's node with the group it is in.
type JoinList struct {
	Ring    totem.RingID
	Entries []JoinEntry
}

// AppendJoinList encodes a join list.
func AppendJoinList(b []byte, j JoinList) []byte {
	b = append(b, Version)
	b = binary.BigEndian.AppendUint32(b, uint32(j.Ring.Rep))
	b = binary.BigEndian.AppendUint64(b, j.Ring.Seq)
	b = binary.BigEndian.AppendUint32(b, uint32(len(j.Entries)))
	for _, e := range j.Entries {
		b = appendName(b, e.Name)
		b = binary.BigEndian.AppendUint32(b, e.PID)
	}
	return b
}

// ParseJoinList decodes a join list.
func ParseJoinList(b []byte) (JoinList, error) {
	d := decoder{b: b}
	d.version()
	j := JoinList{Ring: totem.RingID{Rep: totem.NodeID(d.u32()), Seq: d.u64()}}
	n := d.count(6)
	for i := 0; i < n && d.err == nil; i++ {
		j.Entries = append(j.Entries, JoinEntry{Name: d.name(), PID: d.u32()})
	}
	return j, d.end()
}

// ConfChg is EvConfChg: group Name changed; Members is the new
// membership, Left and Joined the difference, each with its reason
// (corosync's cpg_confchg_fn_t).
type ConfChg struct {
	Name    string
	Members []Address
	Left    []Address
	Joined  []Address
}

// AppendConfChg encodes a confchg event.
func AppendConfChg(b []byte, c ConfChg) []byte {
	b = append(b, Version)
	b = appendName(b, c.Name)
	b = appendAddrs(b, c.Members)
	b = appendAddrs(b, c.Left)
	return appendAddrs(b, c.Joined)
}

// ParseConfChg decodes a confchg event.
func ParseConfChg(b []byte) (ConfChg, error) {
	d := decoder{b: b}
	d.version()
	c := ConfChg{Name: d.name()}
	c.Members = d.addrs()
	c.Left = d.addrs()
	c.Joined = d.addrs()
	return c, d.end()
}

// TotemConf is EvTotemConf and the reply to ReqTotemConf: the ring a node
// is in once CPG has synchronised on it (corosync's model-v1
// cpg_totem_confchg_fn_t).
type TotemConf struct {
	Ring    totem.RingID
	Members []totem.NodeID
}

// AppendTotemConf encodes a totem configuration.
func AppendTotemConf(b []byte, t TotemConf) []byte {
	b = append(b, Version)
	b = binary.BigEndian.AppendUint32(b, uint32(t.Ring.Rep))
	b = binary.BigEndian.AppendUint64(b, t.Ring.Seq)
	b = binary.BigEndian.AppendUint32(b, uint32(len(t.Members)))
	for _, n := range t.Members {
		b = binary.BigEndian.AppendUint32(b, uint32(n))
	}
	return b
}

// ParseTotemConf decodes a totem configuration.
func ParseTotemConf(b []byte) (TotemConf, error) {
	d := decoder{b: b}
	d.version()
	t := TotemConf{Ring: totem.RingID{Rep: totem.NodeID(d.u32()), Seq: d.u64()}}
	n := d.count(4)
	for i := 0; i < n && d.err == nil; i++ {
		t.Members = append(t.Members, totem.NodeID(d.u32()))
	}
	return t, d.end()
}

// Group is one entry of the reply to ReqGroups.
type Group struct {
	Name    string
	Members []Address
}

// AppendGroups encodes the group list.
func AppendGroups(b []byte, gs []Group) []byte {
	b = append(b, Version)
	b = binary.BigEndian.AppendUint32(b, uint32(len(gs)))
	for _, g := range gs {
		b = appendName(b, g.Name)
		b = appendAddrs(b, g.Members)
	}
	return b
}

// ParseGroups decodes the group list.
func ParseGroups(b []byte) ([]Group, error) {
	d := decoder{b: b}
	d.version()
	n := d.count(6)
	var gs []Group
	for i := 0; i < n && d.err == nil; i++ {
		gs = append(gs, Group{Name: d.name(), Members: d.addrs()})
	}
	return gs, d.end()
}

// AppendU32 encodes a bare u32 reply (ReqLocalNodeID).
func AppendU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }

// ParseU32 decodes a bare u32 reply.
func ParseU32(b []byte) (uint32, error) {
	if len(b) != 4 {
		return 0, ErrTruncated
	}
	return binary.BigEndian.Uint32(b), nil
}
