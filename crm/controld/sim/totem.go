package sim

import (
	"encoding/binary"
	"slices"
	"time"

	"ringmaster/crm/controld"
	"ringmaster/totem"
	tsim "ringmaster/totem/sim"
	"ringmaster/totem/srp"
)

// Totem mode: the controllers run over totem/sim, whose nodes are real
// srp processors on a simulated network; the membership, its timing, the
// recovery of old messages and the configuration changes are the
// protocol's own. Payloads on the ring: [0, msg id (2 bytes), crm payload]
// or, for the executive's sync barrier, [1, ring rep (4), ring seq (8)].

type tev struct {
	id totem.NodeID
	ev srp.Event
}

func (c *Cluster) newTotem() {
	ids := make([]totem.NodeID, 0, len(c.nodes))
	for _, n := range c.nodes {
		ids = append(ids, n.id)
	}
	c.base = c.now
	c.tc = tsim.New(tsim.Config{
		Nodes:   ids,
		Seed:    uint64(c.o.Seed),
		Timings: srp.DefaultTimings(c.o.Token),
		Net:     tsim.Net{Latency: 200 * time.Microsecond, Jitter: 300 * time.Microsecond, FIFO: true},
		NoCheck: true,
	})
	c.tc.OnEvent = func(n *tsim.Node, ev srp.Event) {
		c.tpending = append(c.tpending, tev{n.ID, ev})
	}
}

// restart boots a crashed node (a fresh controller from its persisted CIB).
func (c *Cluster) restart(n *node) {
	c.boot(n)
	if c.tc != nil {
		c.tc.Restart(n.id)
		c.drainTotem()
		return
	}
	c.scheduleReconfigure(50 * time.Millisecond)
}

// totemNetwork applies the nodes' partition labels to the network.
func (c *Cluster) totemNetwork() {
	groups := map[int][]totem.NodeID{}
	for _, n := range c.nodes {
		groups[n.label] = append(groups[n.label], n.id)
	}
	if len(groups) == 1 {
		c.tc.Heal()
		return
	}
	labels := make([]int, 0, len(groups))
	for l := range groups {
		labels = append(labels, l)
	}
	slices.Sort(labels)
	var gs [][]totem.NodeID
	for _, l := range labels {
		gs = append(gs, groups[l])
	}
	c.tc.Partition(gs...)
}

func (c *Cluster) totemSend(n *node, m msg) {
	if !n.up {
		return
	}
	var p []byte
	if m.bar {
		p = []byte{1}
		p = binary.BigEndian.AppendUint32(p, uint32(m.ringB.Rep))
		p = binary.BigEndian.AppendUint64(p, m.ringB.Seq)
	} else {
		p = binary.BigEndian.AppendUint16([]byte{0}, m.m.ID)
		p = append(p, m.m.Payload...)
	}
	n.unordered++
	if len(n.outbox) > 0 || c.tc.SendPayload(n.id, p, m.m.Guarantee) != nil {
		// Queue full: kept in order and retried (exec's SendReliable).
		n.outbox = append(n.outbox, msg{from: n.id, m: controld.Outgoing{ID: 0xffff, Guarantee: m.m.Guarantee, Payload: p}})
	}
}

func (c *Cluster) flushOutboxes() {
	for _, n := range c.nodes {
		for n.up && len(n.outbox) > 0 {
			if c.tc.SendPayload(n.id, n.outbox[0].m.Payload, n.outbox[0].m.Guarantee) != nil {
				break
			}
			n.outbox = n.outbox[1:]
		}
	}
}

// nextAt is when the next event of either queue happens.
func (c *Cluster) nextAt() (time.Time, bool) {
	var at time.Time
	ok := false
	if c.q.Len() > 0 {
		at, ok = c.q[0].at, true
	}
	if c.tc != nil {
		if d := c.tc.Next(); d != 0 {
			if t := c.base.Add(d); !ok || t.Before(at) {
				at, ok = t, true
			}
		}
	}
	return at, ok
}

// stepTotem runs the ring up to its next event when that comes first
// (done); otherwise it brings the ring's clock to the next simulator
// event and lets step handle that one.
func (c *Cluster) stepTotem() (done, ok bool) {
	c.flushOutboxes()
	d := c.tc.Next()
	if d != 0 && (c.q.Len() == 0 || !c.base.Add(d).After(c.q[0].at)) {
		if err := c.tc.RunUntil(d); err != nil {
			c.failf("ring: %v", err)
		}
		if t := c.base.Add(d); t.After(c.now) {
			c.now = t
		}
		c.drainTotem()
		c.check()
		return true, true
	}
	if c.q.Len() == 0 {
		return true, false
	}
	if d := c.q[0].at.Sub(c.base); d > c.tc.Now {
		if err := c.tc.RunUntil(d); err != nil {
			c.failf("ring: %v", err)
		}
		c.drainTotem()
	}
	return false, true
}

// drainTotem hands the ring's events to the controllers, in order.
func (c *Cluster) drainTotem() {
	for len(c.tpending) > 0 {
		e := c.tpending[0]
		c.tpending = c.tpending[1:]
		n := c.node(e.id)
		if !n.up || n.ctl == nil {
			continue
		}
		switch e.ev.Kind {
		case srp.EventConfChange:
			conf := e.ev.Conf
			n.ctl.ConfChange(c.now, conf)
			if conf.Kind != totem.Regular {
				c.process(n)
				continue
			}
			c.ConfChanges++
			members := slices.Clone(conf.Members)
			slices.Sort(members)
			n.ring = &ring{id: conf.Ring, members: members}
			c.tracef("node%d ring %v members %v joined %v", n.id, conf.Ring, members, conf.Joined)
			n.ctl.SetQuorum(c.now, 2*len(members) > c.o.Nodes)
			n.syncing = true
			n.barriers = map[totem.NodeID]bool{}
			c.process(n)
			c.send(n, msg{from: n.id, bar: true, ringB: conf.Ring})
		case srp.EventDeliver:
			if e.ev.Sender == n.id && n.unordered > 0 {
				n.unordered--
			}
			p := e.ev.Payload
			switch {
			case len(p) == 13 && p[0] == 1:
				r := totem.RingID{Rep: totem.NodeID(binary.BigEndian.Uint32(p[1:5])), Seq: binary.BigEndian.Uint64(p[5:13])}
				if n.ring != nil && slices.Contains(n.ring.members, e.ev.Sender) {
					c.barrier(n, msg{from: e.ev.Sender, bar: true, ringB: r})
				}
			case len(p) >= 3 && p[0] == 0:
				n.ctl.Deliver(c.now, controld.Message{Sender: e.ev.Sender, ID: binary.BigEndian.Uint16(p[1:3]), Payload: p[3:]})
				c.process(n)
				c.check()
			}
		}
	}
}
