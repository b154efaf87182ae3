// Package sim runs several totem/srp processors in one goroutine over an
// in-memory network with a virtual clock, all randomness drawn from one
// seed, so that any run can be replayed exactly. The network can lose,
// duplicate, delay and reorder datagrams, partition and heal; processors
// can crash and restart (with their persisted ring sequence) or leave.
//
// A Checker verifies the invariants of shared/design/TOTEM.md after every
// step (every datagram delivered and every timer fired); the first
// violation stops the run and is reported with the seed and a trace of the
// last events.
package sim

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"ringmaster/totem"
	"ringmaster/totem/srp"
	"ringmaster/totem/wire"
)

// Net describes the network's misbehaviour.
type Net struct {
	Latency time.Duration // one-way delay of every datagram
	Jitter  time.Duration // uniform extra delay: reorders datagrams
	Loss    float64       // probability a datagram is dropped (per receiver)
	Dup     float64       // probability a datagram is delivered twice
	// SlowProb is the probability a datagram is held back by up to Slow
	// more: late datagrams from old rings and gathers.
	SlowProb float64
	Slow     time.Duration
	// FIFO keeps the order of the datagrams between two nodes (as
	// loopback and a LAN without loss do): jitter only spreads them.
	FIFO bool
}

// Config configures a Cluster.
type Config struct {
	Nodes   []totem.NodeID
	Seed    uint64
	Timings srp.Timings
	Net     Net
	// MaxQueue is each processor's send queue (srp.Config.MaxQueue).
	MaxQueue int
	// TraceLen is how many events the trace keeps (default 400).
	TraceLen int
	// NoCheck disables the invariant checker (benchmarks).
	NoCheck bool
	// Down lists nodes that are configured but not started (Restart
	// starts them, as a first boot).
	Down []totem.NodeID
	// ReuseDatagrams runs the processors as the ring driver does
	// (srp.Config.ReuseDatagrams): the network copies every datagram it
	// carries, so a processor that wrote over bytes still in use would
	// corrupt them visibly.
	ReuseDatagrams bool
	// FlowScale is srp.Config.FlowScale (the driver's frame-size scaling
	// of the window).
	FlowScale int
}

// Node is one simulated processor.
type Node struct {
	ID        totem.NodeID
	P         *srp.Processor // nil while down
	Up        bool
	Persisted uint64 // what the driver stored from Ready.PersistSeq
	Inc       int    // incarnation: grows at every restart
	deadline  time.Duration
	// pausedUntil stalls the processor (a descheduled process, a long GC
	// pause): datagrams wait in its socket (backlog) and timers fire
	// late; see resume.
	pausedUntil time.Duration
	stalled     bool
	backlog     []*inflight
	state       totem.State
	ring        totem.RingID
}

// Cluster is the simulated network and its processors.
type Cluster struct {
	cfg   Config
	Now   time.Duration
	rng   *rand.Rand
	Nodes []*Node
	net   Net
	group map[totem.NodeID]int // partition group (0 when whole)
	queue eventQueue
	qseq  uint64
	msgID uint64
	// burst, while set, gives every datagram to one receiver the same
	// delay: they were sent in one batch (resume).
	burst map[totem.NodeID]time.Duration
	// lastAt is when the last datagram between two nodes arrives (Net.FIFO).
	lastAt map[[2]totem.NodeID]time.Duration

	Check *Checker
	Trace *Trace
	Stats Stats

	// OnEvent, if set, sees every ordered event (scripted tests print them).
	OnEvent func(n *Node, ev srp.Event)
	// OnState, if set, sees every change of a processor's state or ring.
	OnState func(n *Node)
	// Observe, if set, sees every datagram delivered to a node (fuzz
	// seeds are recorded with it).
	Observe func(to totem.NodeID, data []byte)

	err error
}

// Stats summarises a run.
type Stats struct {
	Steps, Datagrams, Dropped, Sent, TryAgain, Delivered uint64
}

// New builds a cluster and starts every processor at time 0.
func New(cfg Config) *Cluster {
	if cfg.TraceLen == 0 {
		cfg.TraceLen = 400
	}
	c := &Cluster{
		cfg:    cfg,
		rng:    rand.New(rand.NewPCG(cfg.Seed, 0x7e7e)),
		net:    cfg.Net,
		group:  map[totem.NodeID]int{},
		lastAt: map[[2]totem.NodeID]time.Duration{},
		Trace:  newTrace(cfg.TraceLen),
	}
	if !cfg.NoCheck {
		c.Check = newChecker(c)
	}
	ids := slices.Clone(cfg.Nodes)
	slices.Sort(ids)
	for _, id := range ids {
		n := &Node{ID: id}
		c.Nodes = append(c.Nodes, n)
	}
	for _, n := range c.Nodes {
		if !slices.Contains(cfg.Down, n.ID) {
			c.start(n)
		}
	}
	return c
}

// Node returns the node with that ID, or nil.
func (c *Cluster) Node(id totem.NodeID) *Node {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// Err is the first invariant violation (nil if none).
func (c *Cluster) Err() error { return c.err }

func (c *Cluster) fail(format string, args ...any) {
	if c.err == nil {
		c.err = &Violation{Seed: c.cfg.Seed, At: c.Now, Msg: fmt.Sprintf(format, args...), Trace: c.Trace.String()}
	}
}

// Violation is an invariant violation with what is needed to replay it.
type Violation struct {
	Seed  uint64
	At    time.Duration
	Msg   string
	Trace string
}

func (v *Violation) Error() string {
	return fmt.Sprintf("seed %d: at %v: %s\n(replay: RINGMASTER_SIM_SEED=%d go test ./totem/sim -run TestSeeds -v)\nlast events:\n%s",
		v.Seed, v.At, v.Msg, v.Seed, v.Trace)
}

func (c *Cluster) start(n *Node) {
	n.Inc++
	n.Up = true
	n.P = srp.New(srp.Config{
		Node:       n.ID,
		Timings:    c.cfg.Timings,
		InitialSeq: n.Persisted,
		Rand:       rand.New(rand.NewPCG(c.rng.Uint64(), uint64(n.ID))),
		MaxQueue:   c.cfg.MaxQueue,
		// The network below copies what it carries in this mode.
		ReuseDatagrams: c.cfg.ReuseDatagrams,
		FlowScale:      c.cfg.FlowScale,
	}, c.Now)
	c.Trace.add(rec{at: c.Now, kind: recStart, node: n.ID, inc: n.Inc, seq: n.Persisted})
	if c.Check != nil {
		c.Check.start(n)
	}
	c.collect(n)
}

// Crash stops a processor abruptly (kill -9): its state is lost except the
// persisted ring sequence.
func (c *Cluster) Crash(id totem.NodeID) {
	n := c.Node(id)
	if n == nil || !n.Up {
		return
	}
	n.Up, n.P = false, nil
	n.deadline, n.pausedUntil = 0, 0
	n.stalled, n.backlog = false, nil
	c.Trace.add(rec{at: c.Now, kind: recCrash, node: id})
	if c.Check != nil {
		c.Check.stop(n)
	}
}

// Restart starts a crashed processor again with its persisted sequence.
func (c *Cluster) Restart(id totem.NodeID) {
	n := c.Node(id)
	if n == nil || n.Up {
		return
	}
	c.start(n)
}

// Leave makes a processor leave gracefully; it is down afterwards.
func (c *Cluster) Leave(id totem.NodeID) {
	n := c.Node(id)
	if n == nil || !n.Up {
		return
	}
	c.Trace.add(rec{at: c.Now, kind: recLeave, node: id})
	n.P.Leave(c.Now)
	c.collect(n)
	n.Up, n.P = false, nil
	n.deadline = 0
	n.stalled, n.pausedUntil, n.backlog = false, 0, nil
	if c.Check != nil {
		c.Check.stop(n)
	}
}

// Pause stalls a processor for d, as a busy machine that does not schedule
// it (or kill -STOP) would: nothing it receives is processed and none of
// its timers fire until then. It then runs as the driver (totem/ring)
// does after a stall: it steps the whole backlog of its socket in one go,
// fires its overdue timers, and only then sends what all of that
// produced, in one batch (see resume).
func (c *Cluster) Pause(id totem.NodeID, d time.Duration) {
	n := c.Node(id)
	if n == nil || !n.Up {
		return
	}
	n.pausedUntil = max(n.pausedUntil, c.Now+d)
	n.stalled = true
	c.Trace.add(rec{at: c.Now, kind: recNote, note: fmt.Sprintf("n%d stalled for %v", id, d)})
}

// StalledUntil is when the last stalled processor runs again (0: none).
func (c *Cluster) StalledUntil() time.Duration {
	var t time.Duration
	for _, n := range c.Nodes {
		if n.Up && n.pausedUntil > c.Now {
			t = max(t, n.pausedUntil)
		}
	}
	return t
}

// Partition splits the network into the given groups; nodes not named form
// one more group. Datagrams between groups are dropped (also in flight).
func (c *Cluster) Partition(groups ...[]totem.NodeID) {
	clear(c.group)
	for _, n := range c.Nodes {
		c.group[n.ID] = len(groups) + 1
	}
	for i, g := range groups {
		for _, id := range g {
			c.group[id] = i + 1
		}
	}
	c.Trace.add(rec{at: c.Now, kind: recNote, note: fmt.Sprintf("partition %v", groups)})
}

// Heal reconnects every node.
func (c *Cluster) Heal() {
	clear(c.group)
	c.Trace.add(rec{at: c.Now, kind: recNote, note: "heal"})
}

// SetNet changes the network's behaviour from now on.
func (c *Cluster) SetNet(n Net) {
	c.net = n
	c.Trace.add(rec{at: c.Now, kind: recNote, note: fmt.Sprintf("net %+v", n)})
}

// Net returns the current network behaviour.
func (c *Cluster) Net() Net { return c.net }

func (c *Cluster) connected(a, b totem.NodeID) bool { return c.group[a] == c.group[b] }

// Send makes node id send one test message; it returns the message's ID
// (0 if the node is down or its queue is full).
func (c *Cluster) Send(id totem.NodeID, g totem.Guarantee) uint64 {
	n := c.Node(id)
	if n == nil || !n.Up {
		return 0
	}
	c.msgID++
	payload := make([]byte, 8, 8+int(c.msgID%24))
	binary.BigEndian.PutUint64(payload, c.msgID)
	for len(payload) < cap(payload) {
		payload = append(payload, byte(c.msgID))
	}
	if err := n.P.Send(payload, g); err != nil {
		c.Stats.TryAgain++
		return 0
	}
	c.Stats.Sent++
	c.Trace.add(rec{at: c.Now, kind: recSend, node: id, msg: c.msgID, g: g})
	if c.Check != nil {
		c.Check.sent(n, c.msgID, g)
	}
	c.collect(n)
	return c.msgID
}

// MsgID extracts a test message's ID from a delivered payload.
func MsgID(payload []byte) uint64 {
	if len(payload) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(payload)
}

// collect takes a processor's output: persist, events, datagrams, deadline.
func (c *Cluster) collect(n *Node) {
	if n.P == nil || !n.P.HasReady() {
		c.noteState(n)
		return
	}
	rd := n.P.Ready()
	if rd.PersistSeq > n.Persisted {
		n.Persisted = rd.PersistSeq
	}
	for _, ev := range rd.Events {
		c.Trace.add(rec{at: c.Now, kind: recEvent, node: n.ID, ev: ev})
		if ev.Kind == srp.EventDeliver {
			c.Stats.Delivered++
		}
		if c.Check != nil {
			c.Check.event(n, ev)
		}
		if c.OnEvent != nil {
			c.OnEvent(n, ev)
		}
	}
	for _, d := range rd.Datagrams {
		c.transmit(n.ID, d)
	}
	n.deadline = rd.Deadline
	c.noteState(n)
}

func (c *Cluster) noteState(n *Node) {
	if n.P == nil {
		return
	}
	st := n.P.Status()
	if st.State != n.state || st.Ring != n.ring {
		n.state, n.ring = st.State, st.Ring
		c.Trace.add(rec{at: c.Now, kind: recState, node: n.ID, state: st.State, ring: st.Ring})
		if c.OnState != nil {
			c.OnState(n)
		}
	}
}

func (c *Cluster) transmit(from totem.NodeID, d srp.Datagram) {
	if c.cfg.ReuseDatagrams {
		d.Data = slices.Clone(d.Data)
	}
	if d.To != 0 {
		c.route(from, d.To, d.Data)
		return
	}
	for _, n := range c.Nodes {
		if n.ID != from {
			c.route(from, n.ID, d.Data)
		}
	}
}

func (c *Cluster) route(from, to totem.NodeID, data []byte) {
	c.Stats.Datagrams++
	if len(c.queue) > maxInflight {
		c.fail("datagram storm: more than %d datagrams in flight", maxInflight)
		return
	}
	if !c.connected(from, to) || c.rng.Float64() < c.net.Loss {
		c.Stats.Dropped++
		c.Trace.add(rec{at: c.Now, kind: recDrop, node: to, peer: from, data: data})
		return
	}
	copies := 1
	if c.net.Dup > 0 && c.rng.Float64() < c.net.Dup {
		copies = 2
	}
	for range copies {
		delay, ok := c.burst[to]
		if !ok {
			delay = c.delay()
			if c.burst != nil {
				c.burst[to] = delay
			}
		}
		at := c.Now + delay
		if c.net.FIFO {
			// Never before an earlier datagram between the same pair.
			k := [2]totem.NodeID{from, to}
			at = max(at, c.lastAt[k])
			c.lastAt[k] = at
		}
		c.qseq++
		heap.Push(&c.queue, &inflight{at: at, seq: c.qseq, from: from, to: to, data: data})
	}
}

// delay draws one datagram's time on the wire.
func (c *Cluster) delay() time.Duration {
	delay := c.net.Latency
	if c.net.Jitter > 0 {
		delay += time.Duration(c.rng.Int64N(int64(c.net.Jitter)))
	}
	if c.net.SlowProb > 0 && c.net.Slow > 0 && c.rng.Float64() < c.net.SlowProb {
		delay += time.Duration(c.rng.Int64N(int64(c.net.Slow)))
	}
	return delay
}

// Next returns the time of the next event (0 if none).
func (c *Cluster) Next() time.Duration {
	var t time.Duration
	if len(c.queue) > 0 {
		t = c.queue[0].at
	}
	for _, n := range c.Nodes {
		if d := n.due(); n.Up && d != 0 && (t == 0 || d < t) {
			t = d
		}
		if n.Up && n.stalled && (t == 0 || n.pausedUntil < t) {
			t = n.pausedUntil
		}
	}
	return t
}

// due is when the node's next timer fires (late if it is stalled).
func (n *Node) due() time.Duration {
	if n.deadline == 0 {
		return 0
	}
	return max(n.deadline, n.pausedUntil)
}

// RunUntil processes every event up to time t (stopping early on a
// violation) and leaves the clock at t.
func (c *Cluster) RunUntil(t time.Duration) error {
	for c.err == nil {
		next := c.Next()
		if next == 0 || next > t {
			break
		}
		c.stepAt(next)
	}
	if c.err == nil && t > c.Now {
		c.Now = t
	}
	return c.err
}

// RunFor runs for d of virtual time.
func (c *Cluster) RunFor(d time.Duration) error { return c.RunUntil(c.Now + d) }

// stepAt advances the clock and processes one datagram or the due timers.
func (c *Cluster) stepAt(t time.Duration) {
	if t > c.Now {
		c.Now = t
	}
	c.Stats.Steps++
	for _, n := range c.Nodes {
		if n.Up && n.stalled && n.pausedUntil <= c.Now {
			c.resume(n)
			return
		}
	}
	if len(c.queue) > 0 && c.queue[0].at <= c.Now {
		f := heap.Pop(&c.queue).(*inflight)
		n := c.Node(f.to)
		if n == nil || !n.Up || !c.connected(f.from, f.to) {
			c.Stats.Dropped++
			return
		}
		if n.stalled {
			// Waits in the socket, in arrival order.
			n.backlog = append(n.backlog, f)
			return
		}
		c.Trace.add(rec{at: c.Now, kind: recRecv, node: f.to, peer: f.from, data: f.data})
		if c.Check != nil {
			c.Check.received(n, f.data)
		}
		if c.Observe != nil {
			c.Observe(f.to, f.data)
		}
		if err := n.P.Step(c.Now, f.data); err != nil {
			c.fail("node %d rejected a datagram from node %d: %v", f.to, f.from, err)
			return
		}
		c.collect(n)
		return
	}
	for _, n := range c.Nodes {
		if d := n.due(); n.Up && d != 0 && d <= c.Now {
			c.Trace.add(rec{at: c.Now, kind: recTick, node: n.ID})
			n.P.Tick(c.Now)
			c.collect(n)
		}
	}
}

// resume runs a stalled processor again as the driver does: every
// datagram that waited in its socket is stepped at once (the driver steps
// all received batches before it looks at timers), then the overdue
// timers fire, and everything that produced leaves in one batch: one
// sendmmsg, which a receiver gets in order (a burst), not spread over
// time by jitter as separate sends would be.
func (c *Cluster) resume(n *Node) {
	n.stalled = false
	backlog := n.backlog
	n.backlog = nil
	c.Trace.add(rec{at: c.Now, kind: recNote, note: fmt.Sprintf("n%d resumes with %d datagrams waiting", n.ID, len(backlog))})
	for _, f := range backlog {
		if !c.connected(f.from, f.to) {
			c.Stats.Dropped++
			continue
		}
		c.Trace.add(rec{at: c.Now, kind: recRecv, node: f.to, peer: f.from, data: f.data})
		if c.Check != nil {
			c.Check.received(n, f.data)
		}
		if c.Observe != nil {
			c.Observe(f.to, f.data)
		}
		if err := n.P.Step(c.Now, f.data); err != nil {
			c.fail("node %d rejected a datagram from node %d: %v", f.to, f.from, err)
			return
		}
	}
	if n.deadline != 0 && n.deadline <= c.Now {
		c.Trace.add(rec{at: c.Now, kind: recTick, node: n.ID})
		n.P.Tick(c.Now)
	}
	c.burst = map[totem.NodeID]time.Duration{}
	c.collect(n)
	c.burst = nil
}

// Converged reports whether every up node is operational in one ring whose
// members are exactly the up nodes (within each partition group when
// partitioned: use after Heal for the whole cluster).
func (c *Cluster) Converged() bool {
	var ring totem.RingID
	var up []totem.NodeID
	for _, n := range c.Nodes {
		if n.Up {
			up = append(up, n.ID)
		}
	}
	for _, n := range c.Nodes {
		if !n.Up {
			continue
		}
		st := n.P.Status()
		if st.State != totem.StateOperational || !slices.Equal(st.Members, up) {
			return false
		}
		if ring == (totem.RingID{}) {
			ring = st.Ring
		} else if st.Ring != ring {
			return false
		}
	}
	return true
}

// maxInflight bounds the datagrams in flight: more means the protocol
// multiplies messages (a storm), which is a bug even if it converges.
const maxInflight = 20000

// inflight is a datagram on the wire.
type inflight struct {
	at       time.Duration
	seq      uint64
	from, to totem.NodeID
	data     []byte
}

type eventQueue []*inflight

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*inflight)) }
func (q *eventQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return x
}

// describe renders a datagram for the trace.
func describe(data []byte) string {
	h, err := wire.DecodeHeader(data)
	if err != nil {
		return fmt.Sprintf("garbage(%v)", err)
	}
	switch h.Type {
	case wire.TypeToken:
		var t wire.Token
		if _, err := wire.DecodeToken(data, &t); err != nil {
			return err.Error()
		}
		return fmt.Sprintf("token ring=%v tseq=%d seq=%d aru=%d/%d rtr=%v fcc=%d busy=%d flags=%d", t.Ring, t.TokenSeq, t.Seq, t.Aru, t.AruID, t.Rtr, t.FCC, t.Busy, t.Flags)
	case wire.TypeMcast:
		var m wire.Mcast
		if _, err := wire.DecodeMcast(data, &m); err != nil {
			return err.Error()
		}
		s := fmt.Sprintf("mcast ring=%v seq=%d sender=%d %v msg=%d", m.Ring, m.Seq, m.Sender, m.Guarantee, MsgID(m.Payload))
		if m.Flags&wire.McastRecovery != 0 {
			s += fmt.Sprintf(" (recovery of %v/%d)", m.OrigRing, m.OrigSeq)
		}
		return s
	case wire.TypeJoin:
		var j wire.Join
		if _, err := wire.DecodeJoin(data, &j); err != nil {
			return err.Error()
		}
		return fmt.Sprintf("join ring=%v maxseq=%d proc=%v fail=%v", j.Ring, j.MaxSeq, j.Proc, j.Fail)
	case wire.TypeCommit:
		var cm wire.Commit
		if _, err := wire.DecodeCommit(data, &cm); err != nil {
			return err.Error()
		}
		return fmt.Sprintf("commit ring=%v round=%d members=%v entries=%+v", cm.Ring, cm.Round, cm.Members, cm.Entries)
	case wire.TypeMergeDetect:
		var m wire.MergeDetect
		if _, err := wire.DecodeMergeDetect(data, &m); err != nil {
			return err.Error()
		}
		return fmt.Sprintf("merge-detect ring=%v maxseq=%d", m.Ring, m.MaxSeq)
	case wire.TypeLeave:
		var l wire.Leave
		if _, err := wire.DecodeLeave(data, &l); err != nil {
			return err.Error()
		}
		return fmt.Sprintf("leave ring=%v maxseq=%d", l.Ring, l.MaxSeq)
	case wire.TypeHoldCancel:
		var hc wire.HoldCancel
		if _, err := wire.DecodeHoldCancel(data, &hc); err != nil {
			return err.Error()
		}
		return fmt.Sprintf("hold-cancel ring=%v", hc.Ring)
	}
	return h.Type.String()
}
