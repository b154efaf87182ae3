// Package sim runs the controller core (crm/controld) on N simulated nodes
// in one goroutine, from one seed: an ordered-delivery ring with virtual
// synchrony (or, with Options.OnTotem, totem/sim's real srp processors),
// a simulated lrmd and a simulated fence device, a virtual clock, and
// faults (crashes, restarts, partitions and heals, operation
// failures, resources dying, fencing failures). Invariants are checked
// after every step.
//
// The ring model. Each partition of live nodes has one ring; a message
// sent on a ring is delivered to every member, in one total order, after
// a latency. A fault freezes the rings it touches (the token is lost: no
// delivery) and, after the token timeout, the membership changes. An old
// ring ends as extended virtual synchrony allows: each transitional set
// (its members that move on together) gets a prefix of its queued
// messages, its transitional configuration, then the later messages its
// own members sent, and the regular configuration; different sets may get
// different prefixes. Messages a node sends while its ring is frozen go
// out first on its next ring, as Totem does. After the regular
// configuration the sim runs the executive's sync barrier: each member's
// sync messages, then a barrier per member; SyncDone when all barriers
// were delivered.
//
// Invariants:
//  1. safety (stonith-enabled, and no-quorum-policy other than ignore,
//     which by definition lets every partition run everything): no resource is active (in the simulated
//     lrmd) on two nodes that are in different network partitions (fence
//     devices excepted: each side needs one to fence the other);
//  2. convergence: once the faults stop and the network heals, within a
//     bounded virtual time: one ring of all nodes, synchronised, every
//     node holds the same CIB, the DC is idle, the scheduler has nothing
//     left to do, and every resource runs exactly where the CIB says it
//     does (at most one node); a resource the configuration no longer
//     has (configChange removes and adds back top-level resources) runs
//     nowhere and has no history left in any node's status.
package sim

import (
	"bytes"
	"container/heap"
	"crypto/sha256"
	"fmt"
	"math/rand"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"ringmaster/crm/cib"
	"ringmaster/crm/controld"
	"ringmaster/crm/pengine"
	"ringmaster/totem"
	tsim "ringmaster/totem/sim"
)

// Options describe one run.
type Options struct {
	Seed  int64
	Nodes int
	// Stonith enables fencing (stonith-enabled) and the safety check.
	Stonith bool
	// NoQuorumPolicy: stop, freeze, ignore or suicide.
	NoQuorumPolicy string
	Primitives     int // standalone primitives
	Groups         int // groups of three
	Stickiness     int
	// Chaos is how long faults are injected; Settle bounds convergence.
	Chaos, Settle time.Duration
	// Faults per second of chaos (on average).
	FaultRate float64
	// OpFail is the probability that a start fails (a stop fails with
	// half of it, when fencing is on); FenceFail that a fencing attempt
	// fails.
	OpFail, FenceFail float64
	Token             time.Duration
	Trace             int // events kept for the failure report

	// OnTotem runs the controllers over totem/sim's real srp processors
	// (virtual clock, the Totem protocol's own membership, recovery and
	// extended virtual synchrony) instead of the ordered-delivery model.
	OnTotem bool

	// brokenFencing makes the fence device report success without
	// fencing (tests prove the safety check catches the split brain).
	brokenFencing bool
	// fenceFails makes every fencing attempt fail (outside chaos too).
	fenceFails bool
}

// RandomOptions picks a run's shape from its seed.
func RandomOptions(seed int64) Options {
	r := rand.New(rand.NewSource(seed))
	pol := []string{"stop", "stop", "stop", "freeze", "ignore", "suicide"}[r.Intn(6)]
	return Options{
		Seed:           seed,
		Nodes:          []int{2, 3, 3, 4, 5, 7}[r.Intn(6)],
		Stonith:        r.Intn(5) != 0,
		NoQuorumPolicy: pol,
		Primitives:     1 + r.Intn(5),
		Groups:         r.Intn(3),
		Stickiness:     []int{0, 0, 100, 1000000}[r.Intn(4)],
		Chaos:          time.Duration(2+r.Intn(8)) * time.Second,
		Settle:         60 * time.Second,
		FaultRate:      0.5 + 2*r.Float64(),
		OpFail:         []float64{0, 0.02, 0.1}[r.Intn(3)],
		FenceFail:      []float64{0, 0.1, 0.5}[r.Intn(3)],
		Token:          []time.Duration{200 * time.Millisecond, 1000 * time.Millisecond}[r.Intn(2)],
		Trace:          400,
	}
}

// Failure is a violated invariant with the events that led to it.
type Failure struct {
	Seed  int64
	What  string
	Trace []string
	Opts  Options
}

func (f *Failure) Error() string {
	return fmt.Sprintf("seed %d: %s\n  options: %+v\n  last events:\n    %s", f.Seed, f.What, f.Opts, strings.Join(f.Trace, "\n    "))
}

type evKind int

const (
	evRing evKind = iota
	evReconfigure
	evTick
	evOpDone
	evFence
	evFault
	evReadd // an operator adds a resource back (event.rsc)
	evRestart
	evMonitorFail
)

type event struct {
	at   time.Time
	seq  uint64
	kind evKind
	node *node
	ring *ring
	op   uint64
	gen  uint64 // node incarnation the event belongs to
	fr   controld.FenceRequest
	rsc  string
}

type eventQ []*event

func (q eventQ) Len() int { return len(q) }
func (q eventQ) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQ) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQ) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQ) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type msg struct {
	from  totem.NodeID
	m     controld.Outgoing
	bar   bool // an executive sync barrier
	ringB totem.RingID
}

type ring struct {
	id      totem.RingID
	members []totem.NodeID
	queue   []msg
	frozen  bool
	dead    bool
	sched   bool
}

type simOp struct {
	op    controld.Op
	gen   uint64
	first bool
}

type node struct {
	id        totem.NodeID
	up        bool
	gen       uint64 // incarnation
	ctl       *controld.Controller
	persisted *cib.CIB
	ring      *ring
	outbox    []msg
	label     int // network partition
	running   map[string]bool
	recurring map[uint64]*simOp
	barriers  map[totem.NodeID]bool
	syncing   bool
	timerAt   time.Time
	// shutdownOK: the DC allowed this node to leave.
	shutdownOK bool
	// unordered counts (totem mode) the messages this incarnation sent
	// that the ring has not delivered back to it yet.
	unordered int
}

// Cluster is one simulation.
type Cluster struct {
	o       Options
	rng     *rand.Rand
	now     time.Time
	q       eventQ
	seq     uint64
	nodes   []*node
	ringSeq uint64
	trace   []string
	fail    *Failure
	reconf  bool // a reconfiguration is scheduled
	chaos   bool
	rscs    []string
	tops    []string
	// defs holds the definition of each top-level resource (configChange
	// adds a removed one back as it was).
	defs map[string]*cib.Element
	// totem mode (Options.OnTotem)
	tc       *tsim.Cluster
	base     time.Time
	tpending []tev // top-level resources (constraints name them)
	ops      map[opKey]controld.Op
	// Stats.
	Fencings, FenceAttempts, Transitions, Faults, ConfChanges, ConfigApplied int
	// RscRemovals and RscReadds count configChange's submissions (applied
	// or not); Unconfigured, the resources absent from the configuration
	// the cluster converged on.
	RscRemovals, RscReadds, Unconfigured int
}

// New builds a cluster with all nodes up in one ring.
func New(o Options) *Cluster {
	if o.Trace == 0 {
		o.Trace = 400
	}
	c := &Cluster{o: o, rng: rand.New(rand.NewSource(o.Seed)), now: time.Unix(1_700_000_000, 0)}
	cfg := c.config()
	for i := 1; i <= o.Nodes; i++ {
		n := &node{id: totem.NodeID(i), persisted: cfg}
		c.nodes = append(c.nodes, n)
	}
	if o.OnTotem {
		c.newTotem()
	}
	for _, n := range c.nodes {
		c.boot(n)
	}
	if c.tc == nil {
		c.reconfigure()
	}
	return c
}

func (c *Cluster) node(id totem.NodeID) *node { return c.nodes[id-1] }

func (c *Cluster) config() *cib.CIB {
	var b strings.Builder
	fmt.Fprintf(&b, `<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.7" admin_epoch="0" epoch="1" num_updates="0"><configuration><crm_config><cluster_property_set id="opts">`)
	fmt.Fprintf(&b, `<nvpair id="o1" name="stonith-enabled" value="%v"/><nvpair id="o2" name="no-quorum-policy" value="%s"/>`, c.o.Stonith, c.o.NoQuorumPolicy)
	b.WriteString(`</cluster_property_set></crm_config><nodes>`)
	for i := 1; i <= c.o.Nodes; i++ {
		fmt.Fprintf(&b, `<node id="%d" uname="node%d"/>`, i, i)
	}
	b.WriteString(`</nodes><resources>`)
	prim := func(id string) {
		if !strings.HasPrefix(id, "g") {
			c.tops = append(c.tops, id)
		}
		c.rscs = append(c.rscs, id)
		fmt.Fprintf(&b, `<primitive id="%s" class="ocf" provider="heartbeat" type="Dummy"><operations><op id="%s-mon" name="monitor" interval="10s"/></operations></primitive>`, id, id)
	}
	if c.o.Stonith {
		c.rscs = append(c.rscs, "fence")
		b.WriteString(`<primitive id="fence" class="stonith" type="fence_sim"><operations><op id="fence-mon" name="monitor" interval="10s"/></operations></primitive>`)
	}
	for i := 0; i < c.o.Primitives; i++ {
		prim(fmt.Sprintf("r%d", i))
	}
	for g := 0; g < c.o.Groups; g++ {
		c.tops = append(c.tops, fmt.Sprintf("g%d", g))
		fmt.Fprintf(&b, `<group id="g%d">`, g)
		for m := 0; m < 3; m++ {
			prim(fmt.Sprintf("g%d-m%d", g, m))
		}
		b.WriteString(`</group>`)
	}
	b.WriteString(`</resources><constraints/>`)
	fmt.Fprintf(&b, `<rsc_defaults><meta_attributes id="rd"><nvpair id="rd1" name="resource-stickiness" value="%d"/><nvpair id="rd2" name="migration-threshold" value="3"/></meta_attributes></rsc_defaults>`, c.o.Stickiness)
	b.WriteString(`</configuration><status/></cib>`)
	x, err := cib.Parse(strings.NewReader(b.String()))
	if err != nil {
		panic(err)
	}
	c.defs = map[string]*cib.Element{}
	for _, e := range x.ConfigElement().Child("resources").Children {
		c.defs[e.ID()] = e
	}
	return x
}

func (c *Cluster) tracef(format string, args ...any) {
	line := fmt.Sprintf("%8.3f ", c.now.Sub(time.Unix(1_700_000_000, 0)).Seconds()) + fmt.Sprintf(format, args...)
	c.trace = append(c.trace, line)
	if len(c.trace) > c.o.Trace {
		c.trace = c.trace[len(c.trace)-c.o.Trace:]
	}
}

func (c *Cluster) failf(format string, args ...any) {
	if c.fail == nil {
		c.fail = &Failure{Seed: c.o.Seed, What: fmt.Sprintf(format, args...), Trace: slices.Clone(c.trace), Opts: c.o}
	}
}

func (c *Cluster) push(e *event) {
	c.seq++
	e.seq = c.seq
	heap.Push(&c.q, e)
}

func (c *Cluster) boot(n *node) {
	n.gen++
	n.up = true
	n.running = map[string]bool{}
	n.recurring = map[uint64]*simOp{}
	n.ring = nil
	n.outbox = nil
	n.syncing = false
	n.timerAt = time.Time{}
	n.shutdownOK = false
	n.unordered = 0
	ctl, err := controld.New(controld.Config{Node: n.id, CIB: n.persisted, MaxPEInputs: 10}, c.now)
	if err != nil {
		panic(err)
	}
	n.ctl = ctl
	c.process(n)
}

// process hands a node's Ready to the simulated environment.
func (c *Cluster) process(n *node) {
	for n.up && n.ctl.HasReady() {
		rd := n.ctl.Ready()
		if rd.CIB != nil {
			n.persisted = rd.CIB
		}
		for _, m := range rd.Messages {
			c.send(n, msg{from: n.id, m: m})
		}
		for _, op := range rd.Ops {
			c.lrmd(n, op)
		}
		for _, f := range rd.Fences {
			c.tracef("node%d requests fencing of node%d (%s)", n.id, f.Target, f.Action)
			c.push(&event{at: c.now.Add(time.Duration(10+c.rng.Intn(90)) * time.Millisecond), kind: evFence, node: n, gen: n.gen, fr: f})
		}
		for _, e := range rd.Events {
			switch e.Kind {
			case controld.EventTransition:
				if e.Actions > 0 {
					c.Transitions++
				}
				c.tracef("node%d %s", n.id, e.Text)
			case controld.EventSchedulerError:
				c.tracef("node%d scheduler error: %v", n.id, e.Err)
			case controld.EventShutdownAllowed:
				n.shutdownOK = true
				c.tracef("node%d may shut down", n.id)
			case controld.EventConfigApplied:
				c.ConfigApplied++
				c.tracef("node%d config request %d: %v", n.id, e.Req, e.Err)
			default:
				c.tracef("node%d event %d node%d %s %v", n.id, e.Kind, e.Node, e.Text, e.Err)
			}
		}
	}
	if !n.up {
		return
	}
	if d := n.ctl.Deadline(); !d.IsZero() && (n.timerAt.IsZero() || d.Before(n.timerAt) || !n.timerAt.After(c.now)) {
		if d.Before(c.now) {
			d = c.now
		}
		n.timerAt = d
		c.push(&event{at: d, kind: evTick, node: n, gen: n.gen})
	}
}

func (c *Cluster) send(n *node, m msg) {
	if c.tc != nil {
		c.totemSend(n, m)
		return
	}
	r := n.ring
	if r == nil || r.dead || r.frozen {
		n.outbox = append(n.outbox, m)
		return
	}
	r.queue = append(r.queue, m)
	c.schedRing(r)
}

func (c *Cluster) schedRing(r *ring) {
	if r.sched || r.frozen || r.dead || len(r.queue) == 0 {
		return
	}
	r.sched = true
	c.push(&event{at: c.now.Add(time.Duration(200+c.rng.Intn(800)) * time.Microsecond), kind: evRing, ring: r})
}

// deliverHead delivers the first queued message of r to its live members.
func (c *Cluster) deliverHead(r *ring) {
	m := r.queue[0]
	r.queue = r.queue[1:]
	for _, id := range r.members {
		n := c.node(id)
		if !n.up || n.ring != r {
			continue
		}
		if m.bar {
			c.barrier(n, m)
			continue
		}
		n.ctl.Deliver(c.now, controld.Message{Sender: m.from, ID: m.m.ID, Payload: m.m.Payload})
		c.process(n)
		c.check()
	}
}

func (c *Cluster) barrier(n *node, m msg) {
	if !n.syncing || m.ringB != n.ring.id {
		return
	}
	n.barriers[m.from] = true
	for _, id := range n.ring.members {
		if !n.barriers[id] {
			return
		}
	}
	n.syncing = false
	before := n.ctl.Version().String() + " " + cibHash(n.ctl.CIB())
	n.ctl.SyncDone(c.now)
	c.tracef("node%d sync done %v -> %v %s", n.id, before, n.ctl.Version(), cibHash(n.ctl.CIB()))
	c.process(n)
	c.check()
}

// scheduleReconfigure freezes the rings (the token is lost) and installs
// the new membership after the token timeout.
func (c *Cluster) scheduleReconfigure(after time.Duration) {
	if c.tc != nil {
		c.totemNetwork()
		return
	}
	for _, n := range c.nodes {
		if n.ring != nil {
			n.ring.frozen = true
		}
	}
	if c.reconf {
		return
	}
	c.reconf = true
	c.push(&event{at: c.now.Add(after), kind: evReconfigure})
}

// reconfigure installs one ring per partition of live nodes. The old
// rings end as extended virtual synchrony allows: each transitional set
// (the members of an old ring that move on together) gets a prefix of the
// old ring's messages (those some of its members had received), then its
// transitional configuration, then the later messages its own members
// sent (they hold them: Totem delivers them after the holes), then the
// regular configuration. Sets of one old ring may get different prefixes.
func (c *Cluster) reconfigure() {
	c.reconf = false
	c.ConfChanges++
	groups := map[int][]totem.NodeID{}
	for _, n := range c.nodes {
		if n.up {
			groups[n.label] = append(groups[n.label], n.id)
		}
	}
	labels := make([]int, 0, len(groups))
	for l := range groups {
		labels = append(labels, l)
	}
	sort.Ints(labels)
	oldRing := map[totem.NodeID]*ring{}
	for _, n := range c.nodes {
		if n.up && n.ring != nil && !n.ring.dead {
			oldRing[n.id] = n.ring
		}
	}
	trans := map[totem.NodeID][]totem.NodeID{}
	for id, or := range oldRing {
		for _, m := range or.members {
			if mn := c.node(m); mn.up && mn.label == c.node(id).label && oldRing[m] == or {
				trans[id] = append(trans[id], m)
			}
		}
	}
	old := map[*ring]bool{}
	for _, r := range oldRing {
		old[r] = true
	}
	rings := make([]*ring, 0, len(old))
	for r := range old {
		rings = append(rings, r)
	}
	sort.Slice(rings, func(i, j int) bool { return rings[i].id.Less(rings[j].id) })
	for _, r := range rings {
		r.dead = true // what members send now goes out on their next ring
		q := r.queue
		r.queue = nil
		var sets [][]totem.NodeID
		seen := map[totem.NodeID]bool{}
		for _, id := range r.members {
			if oldRing[id] == r && !seen[id] {
				for _, m := range trans[id] {
					seen[m] = true
				}
				sets = append(sets, trans[id])
			}
		}
		cuts := make([]int, len(sets))
		for i := range sets {
			cuts[i] = len(q)
			if c.rng.Intn(3) == 0 {
				cuts[i] = c.rng.Intn(len(q) + 1)
			}
		}
		for i, m := range q {
			for si, set := range sets {
				if i < cuts[si] {
					c.deliverTo(set, m)
				}
			}
		}
		for _, set := range sets {
			for _, id := range set {
				if n := c.node(id); n.up {
					var left []totem.NodeID
					for _, m := range r.members {
						if !slices.Contains(set, m) {
							left = append(left, m)
						}
					}
					n.ctl.ConfChange(c.now, totem.ConfChange{Kind: totem.Transitional, Ring: r.id, Members: set, Left: left})
					c.process(n)
				}
			}
		}
		for i, m := range q {
			for si, set := range sets {
				if i >= cuts[si] && slices.Contains(set, m.from) {
					c.deliverTo(set, m)
				}
			}
		}
	}
	for _, l := range labels {
		members := groups[l]
		c.ringSeq += 4
		r := &ring{id: totem.RingID{Rep: members[0], Seq: c.ringSeq}, members: members}
		c.tracef("ring %v members %v", r.id, members)
		quorate := 2*len(members) > c.o.Nodes
		for _, id := range members {
			n := c.node(id)
			var left, joined []totem.NodeID
			if or := oldRing[id]; or != nil {
				for _, m := range or.members {
					if !slices.Contains(members, m) {
						left = append(left, m)
					}
				}
			}
			for _, m := range members {
				if !slices.Contains(trans[id], m) {
					joined = append(joined, m)
				}
			}
			n.ring = r
			n.ctl.ConfChange(c.now, totem.ConfChange{Kind: totem.Regular, Ring: r.id, Members: members, Left: left, Joined: joined})
			n.ctl.SetQuorum(c.now, quorate)
			n.syncing = true
			n.barriers = map[totem.NodeID]bool{}
			out := n.outbox
			n.outbox = nil
			for _, m := range out {
				c.send(n, m)
			}
			c.process(n)
			c.send(n, msg{from: n.id, bar: true, ringB: r.id})
		}
	}
}

// deliverTo delivers an old ring's message to the live nodes of a
// transitional set.
func (c *Cluster) deliverTo(set []totem.NodeID, m msg) {
	for _, id := range set {
		n := c.node(id)
		if !n.up {
			continue
		}
		if m.bar {
			c.barrier(n, m)
			continue
		}
		n.ctl.Deliver(c.now, controld.Message{Sender: m.from, ID: m.m.ID, Payload: m.m.Payload})
		c.process(n)
		c.check()
	}
}

// ---- simulated lrmd ----

func (c *Cluster) lrmd(n *node, op controld.Op) {
	if op.Kind == controld.OpCancel {
		delete(n.recurring, op.ID)
		return
	}
	if op.Task == "stop" {
		for id, so := range n.recurring {
			if so.op.Rsc == op.Rsc {
				delete(n.recurring, id)
			}
		}
	}
	d := time.Duration(1+c.rng.Intn(50)) * time.Millisecond
	if op.IntervalMS > 0 {
		n.recurring[op.ID] = &simOp{op: op, gen: n.gen, first: true}
	}
	c.push(&event{at: c.now.Add(d), kind: evOpDone, node: n, gen: n.gen, op: op.ID})
	// Remember the op for its completion.
	c.pendingOps()[opKey{n.id, n.gen, op.ID}] = op
}

type opKey struct {
	node totem.NodeID
	gen  uint64
	id   uint64
}

func (c *Cluster) pendingOps() map[opKey]controld.Op {
	if c.ops == nil {
		c.ops = map[opKey]controld.Op{}
	}
	return c.ops
}

func (c *Cluster) opDone(n *node, id uint64) {
	k := opKey{n.id, n.gen, id}
	op, ok := c.ops[k]
	if !ok {
		return
	}
	delete(c.ops, k)
	if op.IntervalMS > 0 && n.recurring[id] == nil {
		return // cancelled
	}
	rc := 0
	switch op.Task {
	case "start":
		n.running[op.Rsc] = true
		if c.chaos && c.rng.Float64() < c.o.OpFail {
			rc = 1
		}
	case "stop":
		// A failed stop leaves the resource running; the scheduler fences
		// the node. (Without fencing it would block the resource until an
		// operator cleans it up: not something convergence can expect.)
		if c.o.Stonith && c.chaos && c.rng.Float64() < c.o.OpFail/2 {
			rc = 1
			break
		}
		n.running[op.Rsc] = false
	case "monitor":
		if !n.running[op.Rsc] {
			rc = 7
		}
	}
	c.tracef("node%d lrmd %s_%s_%d rc=%d", n.id, op.Rsc, op.Task, op.IntervalMS, rc)
	n.ctl.OpDone(c.now, controld.OpResult{ID: id, RC: rc})
	c.process(n)
	c.check()
}

// ---- faults ----

func (c *Cluster) crash(n *node, why string) {
	if !n.up {
		return
	}
	c.tracef("node%d crashes (%s)", n.id, why)
	n.up = false
	n.running = map[string]bool{}
	n.recurring = map[uint64]*simOp{}
	n.ctl = nil
	if c.tc != nil {
		c.tc.Crash(n.id)
	}
	c.scheduleReconfigure(c.o.Token)
}

func (c *Cluster) fault() {
	c.Faults++
	up := []*node{}
	for _, n := range c.nodes {
		if n.up {
			up = append(up, n)
		}
	}
	switch k := c.rng.Intn(12); {
	case k >= 10 && len(up) > 0:
		c.configChange(up[c.rng.Intn(len(up))])
	case k < 2 && len(up) > 0:
		n := up[c.rng.Intn(len(up))]
		c.crash(n, "fault")
		c.push(&event{at: c.now.Add(time.Duration(500+c.rng.Intn(3000)) * time.Millisecond), kind: evRestart, node: n, gen: n.gen})
	case k < 4:
		for _, n := range c.nodes {
			n.label = c.rng.Intn(3)
		}
		c.tracef("partition %v", c.labels())
		c.scheduleReconfigure(c.o.Token)
	case k < 6:
		for _, n := range c.nodes {
			n.label = 0
		}
		c.tracef("heal")
		c.scheduleReconfigure(c.o.Token / 2)
	default:
		// A resource dies where it runs; its monitor notices.
		var cands []struct {
			n *node
			r string
		}
		for _, n := range up {
			for _, id := range sortedOps(n.recurring) {
				so := n.recurring[id]
				if r := so.op.Rsc; n.running[r] {
					cands = append(cands, struct {
						n *node
						r string
					}{n, r})
				}
			}
		}
		if len(cands) == 0 {
			return
		}
		x := cands[c.rng.Intn(len(cands))]
		c.tracef("%s dies on node%d", x.r, x.n.id)
		x.n.running[x.r] = false
		for _, id := range sortedOps(x.n.recurring) {
			so := x.n.recurring[id]
			if so.op.Rsc == x.r {
				c.push(&event{at: c.now.Add(time.Duration(c.rng.Intn(so.op.IntervalMS+1)) * time.Millisecond), kind: evMonitorFail, node: x.n, gen: x.n.gen, op: id})
			}
		}
	}
}

// configChange makes a node submit a configuration change, conditional
// on its current version, or sometimes unconditional: partitions change
// their copies independently, and after a heal every node must hold the
// same one. The change is a location preference added or removed, or,
// as an operator would, a top-level resource (a standalone primitive or
// a whole group) removed from <resources> or added back (same id and
// definition, appended); a removal is often followed, a little later and
// on whichever node is up then, by adding the resource back. Constraints
// naming a removed resource stay (the scheduler ignores them).
func (c *Cluster) configChange(n *node) {
	if len(c.tops) == 0 {
		return
	}
	rsc := c.tops[c.rng.Intn(len(c.tops))]
	if c.rng.Intn(3) == 0 {
		c.resourceChange(n, rsc, false)
		return
	}
	cur := n.ctl.CIB()
	cfg := cur.ConfigElement()
	cons := cfg.Child("constraints")
	if cons == nil {
		return
	}
	id := "loc-" + rsc
	removed := false
	for i, e := range cons.Children {
		if e.ID() == id {
			cons.Children = append(cons.Children[:i], cons.Children[i+1:]...)
			removed = true
			break
		}
	}
	target := fmt.Sprintf("node%d", 1+c.rng.Intn(c.o.Nodes))
	if !removed {
		cons.Children = append(cons.Children, &cib.Element{Name: "rsc_location", Attrs: cib.Attrs{
			{Name: "id", Value: id}, {Name: "rsc", Value: rsc}, {Name: "node", Value: target}, {Name: "score", Value: "200"}}})
	}
	c.submit(n, cfg, fmt.Sprintf("%s %s, removed=%v", id, target, removed))
}

// resourceChange removes rsc from n's copy of the configuration, or adds
// it back when that copy lacks it (addOnly: only adds). Half the time, a
// change that is not forced on rsc adds back another resource the copy
// lacks instead.
func (c *Cluster) resourceChange(n *node, rsc string, addOnly bool) {
	cur := n.ctl.CIB()
	cfg := cur.ConfigElement()
	rscs := cfg.Child("resources")
	if rscs == nil {
		return
	}
	has := func(id string) int {
		return slices.IndexFunc(rscs.Children, func(e *cib.Element) bool { return e.ID() == id })
	}
	if !addOnly {
		var gone []string
		for _, t := range c.tops {
			if has(t) < 0 {
				gone = append(gone, t)
			}
		}
		if len(gone) > 0 && c.rng.Intn(2) == 0 {
			rsc = gone[c.rng.Intn(len(gone))]
		}
	}
	if i := has(rsc); i >= 0 {
		if addOnly {
			return
		}
		rscs.Children = slices.Delete(rscs.Children, i, i+1)
		c.RscRemovals++
		c.submit(n, cfg, "remove "+rsc)
		if c.rng.Intn(2) == 0 {
			c.push(&event{at: c.now.Add(time.Duration(100+c.rng.Intn(3000)) * time.Millisecond), kind: evReadd, rsc: rsc})
		}
		return
	}
	rscs.Children = append(rscs.Children, c.defs[rsc].Clone())
	c.RscReadds++
	c.submit(n, cfg, "add "+rsc)
}

// submit makes n submit cfg (its <configuration>), conditional on its
// current version, or sometimes unconditional.
func (c *Cluster) submit(n *node, cfg *cib.Element, what string) {
	cur := n.ctl.CIB()
	root := &cib.Element{Name: "cib", Attrs: cur.Attrs.Clone(), Children: []*cib.Element{cfg}}
	var b bytes.Buffer
	if err := root.Write(&b, 0); err != nil {
		panic(err)
	}
	v := n.ctl.Version()
	base := &v
	if c.rng.Intn(4) == 0 {
		base = nil
	}
	req, err := n.ctl.ReplaceConfig(c.now, b.Bytes(), base)
	c.tracef("node%d submits config change %d (%s, base %v): %v", n.id, req, what, base != nil, err)
	c.process(n)
}

func (c *Cluster) labels() []int {
	var l []int
	for _, n := range c.nodes {
		l = append(l, n.label)
	}
	return l
}

// ---- the loop ----

func (c *Cluster) step() bool {
	if c.tc != nil {
		if done, ok := c.stepTotem(); done {
			return ok
		}
	}
	if c.q.Len() == 0 {
		return false
	}
	e := heap.Pop(&c.q).(*event)
	if e.at.After(c.now) {
		c.now = e.at
	}
	switch e.kind {
	case evRing:
		e.ring.sched = false
		if e.ring.dead || e.ring.frozen || len(e.ring.queue) == 0 {
			return true
		}
		c.deliverHead(e.ring)
		c.schedRing(e.ring)
	case evReconfigure:
		c.reconfigure()
	case evTick:
		if e.node.up && e.node.gen == e.gen {
			e.node.timerAt = time.Time{}
			e.node.ctl.Tick(c.now)
			c.process(e.node)
		}
	case evOpDone:
		if e.node.up && e.node.gen == e.gen {
			c.opDone(e.node, e.op)
		}
	case evMonitorFail:
		n := e.node
		if n.up && n.gen == e.gen && n.recurring[e.op] != nil && !n.running[n.recurring[e.op].op.Rsc] {
			c.tracef("node%d lrmd monitor of %s fails", n.id, n.recurring[e.op].op.Rsc)
			n.ctl.OpDone(c.now, controld.OpResult{ID: e.op, RC: 7})
			c.process(n)
		}
	case evFence:
		n := e.node
		if !n.up || n.gen != e.gen {
			return true // the requester died: nobody fences
		}
		ok := !(c.chaos && c.rng.Float64() < c.o.FenceFail) && !c.o.fenceFails
		c.FenceAttempts++
		if ok {
			c.Fencings++
			t := c.node(e.fr.Target)
			c.tracef("fence device: node%d fenced", t.id)
			if t.up && !c.o.brokenFencing {
				c.crash(t, "fenced")
				c.push(&event{at: c.now.Add(time.Duration(1000+c.rng.Intn(2000)) * time.Millisecond), kind: evRestart, node: t, gen: t.gen})
			}
		} else {
			c.tracef("fence device: fencing node%d failed", e.fr.Target)
		}
		if n.up {
			n.ctl.FenceDone(c.now, controld.FenceResult{ID: e.fr.ID, OK: ok})
			c.process(n)
		}
	case evFault:
		if c.chaos {
			c.fault()
		}
	case evReadd:
		if c.chaos {
			var up []*node
			for _, n := range c.nodes {
				if n.up {
					up = append(up, n)
				}
			}
			if len(up) > 0 {
				c.resourceChange(up[c.rng.Intn(len(up))], e.rsc, true)
			}
		}
	case evRestart:
		n := e.node
		if !n.up && n.gen == e.gen {
			c.tracef("node%d restarts", n.id)
			c.restart(n)
		}
	}
	c.check()
	return true
}

// Run runs the simulation and returns the first violated invariant.
func (c *Cluster) Run() *Failure {
	end := c.now.Add(c.o.Chaos)
	c.chaos = true
	for t := c.now; t.Before(end); {
		t = t.Add(time.Duration(c.rng.ExpFloat64() / c.o.FaultRate * float64(time.Second)))
		if t.Before(end) {
			c.push(&event{at: t, kind: evFault})
		}
	}
	for c.fail == nil {
		if at, ok := c.nextAt(); !ok || !at.Before(end) {
			break
		}
		c.step()
	}
	if c.fail != nil {
		return c.fail
	}
	// Heal: everything up, one partition, no more injected failures.
	c.chaos = false
	c.tracef("--- faults stop; heal and restart everything ---")
	for _, n := range c.nodes {
		n.label = 0
	}
	for _, n := range c.nodes {
		if !n.up {
			c.restart(n)
		}
	}
	c.scheduleReconfigure(c.o.Token)
	deadline := c.now.Add(c.o.Settle)
	var checked time.Time
	for c.fail == nil && c.now.Before(deadline) {
		// Checking serialises every node's CIB: not after every step.
		if _, more := c.nextAt(); c.now.Sub(checked) >= 20*time.Millisecond || !more {
			checked = c.now
			if c.converged() == "" {
				conf := configured(c.nodes[0].ctl.CIB())
				for _, r := range c.rscs {
					if !conf[r] {
						c.Unconfigured++
					}
				}
				return nil
			}
		}
		if !c.step() {
			break
		}
	}
	if c.fail != nil {
		return c.fail
	}
	if why := c.converged(); why != "" {
		c.failf("no convergence within %v of the last fault: %s", c.o.Settle, why)
	}
	return c.fail
}

// runFor steps the simulation for d of virtual time (scripted tests).
func (c *Cluster) runFor(d time.Duration) *Failure {
	end := c.now.Add(d)
	for c.fail == nil {
		if at, ok := c.nextAt(); !ok || !at.Before(end) {
			break
		}
		c.step()
	}
	if c.now.Before(end) {
		c.now = end
	}
	return c.fail
}

// partition moves nodes into network partitions (one label per node).
func (c *Cluster) partition(labels ...int) {
	for i, n := range c.nodes {
		n.label = labels[i]
	}
	c.tracef("partition %v", c.labels())
	c.scheduleReconfigure(c.o.Token)
}

// check verifies the safety invariant.
func (c *Cluster) check() {
	if !c.o.Stonith || c.o.NoQuorumPolicy == "ignore" || c.fail != nil {
		return
	}
	for _, r := range c.rscs {
		if r == "fence" {
			// A fence device must run where fencing is requested:
			// Pacemaker does not order its start after the fencing of the
			// node it ran on, and running it twice harms nobody.
			continue
		}
		label := -1
		var where []totem.NodeID
		for _, n := range c.nodes {
			if !n.up || !n.running[r] {
				continue
			}
			where = append(where, n.id)
			if label >= 0 && n.label != label {
				c.failf("%s is active on nodes %v in different partitions %v", r, where, c.labels())
				return
			}
			label = n.label
		}
	}
}

// converged returns why the cluster has not converged ("" when it has).
func (c *Cluster) converged() string {
	var dc *node
	var ref []byte
	for _, n := range c.nodes {
		if !n.up {
			return fmt.Sprintf("node%d is down", n.id)
		}
		if n.ring == nil || len(n.ring.members) != len(c.nodes) || n.syncing || n.ring.frozen {
			return fmt.Sprintf("node%d is not in a synced ring of all nodes", n.id)
		}
		st := n.ctl.Status()
		if st.DC == n.id {
			dc = n
		}
		var b bytes.Buffer
		if _, err := n.ctl.CIB().WriteTo(&b); err != nil {
			return err.Error()
		}
		if ref == nil {
			ref = b.Bytes()
		} else if !bytes.Equal(ref, b.Bytes()) {
			return fmt.Sprintf("node%d holds a different CIB (%s vs %s)", n.id, n.ctl.Version(), c.nodes[0].ctl.Version())
		}
	}
	if dc == nil {
		return "no DC"
	}
	if c.tc != nil && !c.tc.Converged() {
		return "the ring has not converged"
	}
	if len(c.ops) > 0 {
		for k, op := range c.ops {
			if op.IntervalMS == 0 && c.node(k.node).gen == k.gen {
				return "operations in flight"
			}
		}
	}
	if len(dc.ring.queue) > 0 {
		return "messages in flight"
	}
	for _, n := range c.nodes {
		// Totem: a message the ring has not ordered yet (a configuration
		// change just submitted) may still change everything.
		if n.unordered > 0 {
			return fmt.Sprintf("node%d has %d messages in flight", n.id, n.unordered)
		}
	}
	if !dc.ctl.Idle() {
		return fmt.Sprintf("the DC is not idle (running %v)", dc.ctl.PendingActions())
	}
	res, err := pengine.Schedule(dc.ctl.SchedulerInput(c.now), c.now, pengine.Options{})
	if err != nil {
		return err.Error()
	}
	for _, a := range res.Graph.Actions {
		if a.Unsettled() {
			return fmt.Sprintf("the scheduler still wants %s on %s", a.Key, a.Node)
		}
	}
	// The lrmd agrees with the CIB; a resource no longer configured runs
	// nowhere and its history is gone from every node's status.
	x := dc.ctl.CIB()
	active, conf, hist := activeFromCIB(x), configured(x), histories(x)
	for _, r := range c.rscs {
		var sim []string
		for _, n := range c.nodes {
			if n.running[r] {
				sim = append(sim, fmt.Sprintf("node%d", n.id))
			}
		}
		if len(sim) > 1 {
			return fmt.Sprintf("%s active on %v", r, sim)
		}
		if !conf[r] && len(sim) > 0 {
			return fmt.Sprintf("%s is not configured but active on %v", r, sim)
		}
		if !conf[r] && len(hist[r]) > 0 {
			return fmt.Sprintf("%s is not configured but has a history on %v", r, hist[r])
		}
		if strings.Join(sim, ",") != strings.Join(active[r], ",") {
			return fmt.Sprintf("%s active on %v but the CIB says %v", r, sim, active[r])
		}
	}
	return ""
}

// activeFromCIB derives where each resource runs from the last completed
// operation of each history.
func activeFromCIB(x *cib.CIB) map[string][]string {
	out := map[string][]string{}
	for _, ns := range x.Status.Nodes {
		for _, lr := range ns.Resources {
			var last *cib.LRMOp
			for _, op := range lr.Ops {
				if op.CallID() < 0 {
					continue
				}
				if last == nil || op.CallID() > last.CallID() {
					last = op
				}
			}
			if last == nil {
				continue
			}
			running := last.RC() == 0 || last.RC() == 8
			if last.Task() == "stop" {
				running = last.RC() != 0
			}
			if running {
				out[lr.ID()] = append(out[lr.ID()], ns.Uname())
			}
		}
	}
	for k := range out {
		sort.Strings(out[k])
	}
	return out
}

// configured lists the primitives of x's configuration.
func configured(x *cib.CIB) map[string]bool {
	out := map[string]bool{}
	var walk func(rs []*cib.Resource)
	walk = func(rs []*cib.Resource) {
		for _, r := range rs {
			if len(r.Children) == 0 {
				out[r.ID] = true
			}
			walk(r.Children)
		}
	}
	walk(x.Config.Resources)
	return out
}

// histories lists, for each resource, the nodes whose status holds a
// history (an lrm_resource) of it.
func histories(x *cib.CIB) map[string][]string {
	out := map[string][]string{}
	for _, ns := range x.Status.Nodes {
		for _, lr := range ns.Resources {
			out[lr.ID()] = append(out[lr.ID()], ns.Uname())
		}
	}
	return out
}

func cibHash(x *cib.CIB) string {
	var b bytes.Buffer
	x.WriteTo(&b)
	h := sha256.Sum256(b.Bytes())
	if d := os.Getenv("SIMDUMP"); d != "" {
		os.WriteFile(fmt.Sprintf("%s/%x.xml", d, h[:4]), b.Bytes(), 0o644)
	}
	return fmt.Sprintf("%x", h[:4])
}

// sortedOps lists operation IDs in order: map order must never reach the
// random source, or a seed would not replay.
func sortedOps(m map[uint64]*simOp) []uint64 {
	ids := make([]uint64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
