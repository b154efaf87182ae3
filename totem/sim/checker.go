package sim

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"ringmaster/totem"
	"ringmaster/totem/srp"
	"ringmaster/totem/wire"
)

// Checker verifies TOTEM.md's invariants incrementally, as events happen:
//
//  1. agreed order: any two processes deliver their common messages in the
//     same order;
//  2. integrity: a message is delivered at most once per process, only if
//     it was sent, unaltered (sender, guarantee, payload);
//  3. FIFO per sender (checked here) and self delivery (checked by
//     CheckSelfDelivery at the end of a run);
//  4. virtual synchrony: processes that install the same two consecutive
//     configurations deliver the same set of messages between them;
//  5. configuration agreement: a regular ring ID always comes with the same
//     member list;
//  6. safe delivery: a message delivered as safe in configuration C was
//     held (received, or sent) by every member of C;
//  7. liveness is checked by the scenario (Converged, then probes);
//  8. regular ring IDs grow on every node, across restarts.
//
// A "process" is one incarnation of a node: a restarted node starts a new
// delivery history.
type Checker struct {
	c     *Cluster
	procs []*proc
	cur   map[totem.NodeID]*proc // live incarnation of each node
	msgs  map[uint64]*msgRec
	rings map[totem.RingID][]totem.NodeID
	segs  map[segKey]segVal
	first map[string]time.Duration // configuration → first install time
	// lastRing is the highest regular ring installed by each node (any
	// incarnation).
	lastRing map[totem.NodeID]totem.RingID
	decode   wire.Mcast
}

type proc struct {
	idx       int
	node      totem.NodeID
	inc       int
	start     time.Duration
	alive     bool
	delivered int                 // number of deliveries (positions)
	maxPos    []int32             // maxPos[y]: highest position in y's order of a message both delivered
	fifo      map[int]uint32      // sender process → last send index delivered
	held      map[uint64]struct{} // messages received or sent
	sent      []uint64
	conf      *confRec // last configuration installed
	seg       segVal   // messages delivered since conf
}

type msgRec struct {
	sender  int // process index
	sendIdx uint32
	g       totem.Guarantee
	pos     map[int]int32 // process index → delivery position
}

type confRec struct {
	id      string
	kind    totem.ConfKind
	ring    totem.RingID
	members []totem.NodeID
}

type segKey struct{ from, to string }

// segVal identifies a set of messages: count and sum of mixed IDs.
type segVal struct {
	n   int
	sum uint64
}

func newChecker(c *Cluster) *Checker {
	return &Checker{
		c:        c,
		cur:      map[totem.NodeID]*proc{},
		msgs:     map[uint64]*msgRec{},
		rings:    map[totem.RingID][]totem.NodeID{},
		segs:     map[segKey]segVal{},
		first:    map[string]time.Duration{},
		lastRing: map[totem.NodeID]totem.RingID{},
	}
}

func (k *Checker) fail(format string, args ...any) { k.c.fail(format, args...) }

func (k *Checker) start(n *Node) {
	p := &proc{idx: len(k.procs), node: n.ID, inc: n.Inc, start: k.c.Now, alive: true,
		fifo: map[int]uint32{}, held: map[uint64]struct{}{}}
	k.procs = append(k.procs, p)
	k.cur[n.ID] = p
}

func (k *Checker) stop(n *Node) {
	if p := k.cur[n.ID]; p != nil {
		p.alive = false
		delete(k.cur, n.ID)
	}
}

func (k *Checker) sent(n *Node, id uint64, g totem.Guarantee) {
	p := k.cur[n.ID]
	p.sent = append(p.sent, id)
	p.held[id] = struct{}{}
	k.msgs[id] = &msgRec{sender: p.idx, sendIdx: uint32(len(p.sent)), g: g, pos: map[int]int32{}}
}

// received records that a node got a regular message (for invariant 6).
func (k *Checker) received(n *Node, data []byte) {
	if len(data) < wire.HeaderLen || wire.Type(data[1]) != wire.TypeMcast {
		return
	}
	if _, err := wire.DecodeMcast(data, &k.decode); err != nil {
		return
	}
	if p := k.cur[n.ID]; p != nil {
		p.held[MsgID(k.decode.Payload)] = struct{}{}
	}
}

func (k *Checker) event(n *Node, ev srp.Event) {
	p := k.cur[n.ID]
	if p == nil {
		return
	}
	if ev.Kind == srp.EventConfChange {
		k.install(p, ev.Conf)
		return
	}
	k.deliver(p, ev)
}

func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	return x ^ x>>33
}

func (k *Checker) deliver(p *proc, ev srp.Event) {
	id := MsgID(ev.Payload)
	m := k.msgs[id]
	// 2. integrity.
	if m == nil {
		k.fail("integrity: n%d delivered unknown message %d", p.node, id)
		return
	}
	snd := k.procs[m.sender]
	if ev.Sender != snd.node || ev.Guarantee != m.g || !validPayload(ev.Payload) {
		k.fail("integrity: n%d delivered msg %d as from n%d %v, sent by n%d %v", p.node, id, ev.Sender, ev.Guarantee, snd.node, m.g)
		return
	}
	if _, dup := m.pos[p.idx]; dup {
		k.fail("integrity: n%d delivered msg %d twice", p.node, id)
		return
	}
	// 3. FIFO per sender.
	if last := p.fifo[m.sender]; m.sendIdx <= last {
		k.fail("fifo: n%d delivered msg %d (send #%d of n%d) after send #%d", p.node, id, m.sendIdx, snd.node, last)
		return
	}
	p.fifo[m.sender] = m.sendIdx
	// 1. agreed order. For every process q that delivered m too, no
	// message both delivered may come after m in q's order while p has
	// it before m (p's are all before m: m is p's latest).
	pos := int32(p.delivered)
	for qi, qpos := range m.pos {
		if k.maxPos(p, qi) >= qpos {
			q := k.procs[qi]
			k.fail("agreed order: n%d(inc %d) and n%d(inc %d) deliver msg %d in different orders", p.node, p.inc, q.node, q.inc, id)
			return
		}
		k.setMaxPos(p, qi, qpos)
		k.setMaxPos(k.procs[qi], p.idx, pos)
	}
	m.pos[p.idx] = pos
	p.delivered++
	// 6. safe delivery.
	if m.g == totem.Safe {
		if p.conf == nil {
			k.fail("safe: n%d delivered safe msg %d before any configuration", p.node, id)
			return
		}
		for _, member := range p.conf.members {
			if !k.heldBy(member, id, k.first[p.conf.id]) {
				k.fail("safe: n%d delivered safe msg %d in %s but member n%d never held it", p.node, id, p.conf.id, member)
				return
			}
		}
	}
	// 4. the set delivered in the current configuration.
	p.seg.n++
	p.seg.sum += mix(id)
}

func validPayload(b []byte) bool {
	id := MsgID(b)
	if len(b) != 8+int(id%24) {
		return false
	}
	for _, c := range b[8:] {
		if c != byte(id) {
			return false
		}
	}
	return true
}

func (k *Checker) maxPos(p *proc, q int) int32 {
	if q < len(p.maxPos) {
		return p.maxPos[q]
	}
	return -1
}

func (k *Checker) setMaxPos(p *proc, q int, v int32) {
	for len(p.maxPos) <= q {
		p.maxPos = append(p.maxPos, -1)
	}
	p.maxPos[q] = v
}

// heldBy: some incarnation of node that existed when the configuration was
// first installed held the message.
func (k *Checker) heldBy(node totem.NodeID, id uint64, since time.Duration) bool {
	for _, q := range k.procs {
		if q.node != node || q.start > since {
			continue
		}
		if _, ok := q.held[id]; ok {
			return true
		}
	}
	return false
}

func confID(c totem.ConfChange) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v %v %v", c.Kind, c.Ring, c.Members)
	return b.String()
}

func (k *Checker) install(p *proc, c totem.ConfChange) {
	if !slices.IsSorted(c.Members) || !slices.Contains(c.Members, p.node) {
		k.fail("configuration: n%d installed %s: members unsorted or without itself", p.node, confID(c))
		return
	}
	id := confID(c)
	if c.Kind == totem.Regular {
		// 5. configuration agreement.
		if m, ok := k.rings[c.Ring]; ok && !slices.Equal(m, c.Members) {
			k.fail("configuration agreement: ring %v installed with %v and with %v", c.Ring, m, c.Members)
			return
		}
		k.rings[c.Ring] = slices.Clone(c.Members)
		// 8. monotonic ring IDs per node.
		if last, ok := k.lastRing[p.node]; ok && c.Ring.Seq <= last.Seq {
			k.fail("monotonic ring IDs: n%d installed %v after %v", p.node, c.Ring, last)
			return
		}
		k.lastRing[p.node] = c.Ring
	} else if p.conf != nil {
		if p.conf.kind != totem.Regular || !setSub(c.Members, p.conf.members) {
			k.fail("transitional %s does not follow a regular configuration containing it (previous %s)", id, p.conf.id)
			return
		}
	}
	// 4. virtual synchrony.
	if p.conf != nil {
		key := segKey{p.conf.id, id}
		if v, ok := k.segs[key]; ok && v != p.seg {
			k.fail("virtual synchrony: n%d delivered %d messages between [%s] and [%s], another process %d (different set)", p.node, p.seg.n, p.conf.id, id, v.n)
			return
		} else if !ok {
			k.segs[key] = p.seg
		}
	}
	if _, ok := k.first[id]; !ok {
		k.first[id] = k.c.Now
	}
	p.conf = &confRec{id: id, kind: c.Kind, ring: c.Ring, members: slices.Clone(c.Members)}
	p.seg = segVal{}
}

func setSub(a, b []totem.NodeID) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// CheckSelfDelivery verifies invariant 3's first half for processes still
// alive: every message they sent was delivered to them. Call it once the
// cluster has converged and delivered everything.
func (k *Checker) CheckSelfDelivery() {
	for _, p := range k.procs {
		if !p.alive {
			continue
		}
		for _, id := range p.sent {
			if _, ok := k.msgs[id].pos[p.idx]; !ok {
				k.fail("self delivery: n%d (inc %d) never delivered its own msg %d", p.node, p.inc, id)
				return
			}
		}
	}
}

// DeliveredBy reports whether the live incarnation of node delivered msg.
func (k *Checker) DeliveredBy(node totem.NodeID, id uint64) bool {
	p := k.cur[node]
	m := k.msgs[id]
	if p == nil || m == nil {
		return false
	}
	_, ok := m.pos[p.idx]
	return ok
}
