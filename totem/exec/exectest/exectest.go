// Package exectest runs a cluster of executives in one process, joined by
// an ideal total-order sequencer instead of the Totem ring, so services
// (cpg, quorum, ...) can be tested on several nodes before and apart from
// the real ring.
//
// The sequencer keeps, per node, a FIFO of messages sent and not yet
// ordered. A step picks one node with pending messages (with a random
// source seeded by Options.Seed) and delivers a few of its messages, in
// order, to every live member of that node's partition, one after the
// other, before the next step. That is agreed order and also safe order
// (every member holds a message when it is delivered), and a sender's
// messages stay FIFO.
//
// Faults change the partitions and deliver what extended virtual synchrony
// promises, synchronously, between two steps: every node of a new
// partition gets a transitional configuration (the members of its old
// partition that came along) and then a regular one (Left and Joined
// relative to its previous regular configuration). Because a step delivers
// to all members before the next, survivors always share the messages
// delivered before a configuration. Messages a node had queued but not
// yet ordered stay queued and go out in its new partition, as Totem sends
// its unsent queue in the new ring; a crashed node's are lost.
//
// Concurrency: Send (from services, under an executive's lock) only queues;
// steps and faults are serialised by one mutex and call into executives
// without holding the queue lock, so services may send from any callback.
// Steps run from the caller's goroutine (Step, Drain) or a background pump
// (Run); Freeze stops ordering without stopping Send, which makes "sync in
// progress" and "queue full" reproducible.
package exectest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"

	"go.uber.org/zap"

	"ringmaster/ipc"
	"ringmaster/totem"
	"ringmaster/totem/exec"
)

// Options configure a Cluster.
type Options struct {
	// Nodes is the number of nodes; their IDs are 1..Nodes.
	Nodes int
	// Seed drives which node's messages are ordered next and how many.
	Seed uint64
	// QueueLimit is the number of messages a node may have queued
	// before Send answers ErrTryAgain (default 1024).
	QueueLimit int
	// Services returns the services of node id, freshly made (it is
	// called again for a restarted node). Services are instances: never
	// share one between nodes.
	Services func(id totem.NodeID) []exec.Service
	// Log is the executives' logger (default: none).
	Log *zap.Logger
}

// Cluster is N executives on an ideal sequencer.
type Cluster struct {
	opt Options

	step sync.Mutex // one step or fault at a time

	mu      sync.Mutex // guards what follows
	rng     *rand.Rand
	nodes   map[totem.NodeID]*Node
	seq     uint64 // last ring sequence handed out
	frozen  bool
	wake    chan struct{} // a message was queued or the cluster thawed
	changed chan struct{} // closed and replaced after every step or fault
	closed  bool
}

// Node is one executive of the cluster. It implements exec.Ring for its
// executive.
type Node struct {
	ID       totem.NodeID
	Exec     *exec.Executive
	Services []exec.Service

	c      *Cluster
	alive  bool
	part   []totem.NodeID // members of its partition (sorted), itself included
	ring   totem.ConfChange
	queue  []totem.Message
	limit  int
	server *ipc.Server
}

// ErrClosed is returned by Wait on a closed cluster.
var ErrClosed = errors.New("exectest: cluster closed")

// New builds the cluster, starts every executive and installs the first
// regular configuration with every node (the sync then runs as the
// cluster steps).
func New(o Options) (*Cluster, error) {
	if o.Nodes < 1 {
		return nil, fmt.Errorf("exectest: need at least one node, got %d", o.Nodes)
	}
	if o.QueueLimit <= 0 {
		o.QueueLimit = 1024
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	c := &Cluster{
		opt:     o,
		rng:     rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
		nodes:   map[totem.NodeID]*Node{},
		wake:    make(chan struct{}, 1),
		changed: make(chan struct{}),
	}
	var all []totem.NodeID
	for i := 1; i <= o.Nodes; i++ {
		all = append(all, totem.NodeID(i))
	}
	c.step.Lock()
	defer c.step.Unlock()
	for _, id := range all {
		if _, err := c.newNode(id); err != nil {
			return nil, err
		}
	}
	c.reconfigure([][]totem.NodeID{all})
	return c, nil
}

func (c *Cluster) newNode(id totem.NodeID) (*Node, error) {
	n := &Node{ID: id, c: c, alive: true, limit: c.opt.QueueLimit}
	n.Exec = exec.New(id, n, c.opt.Log.With(zap.Uint32("node", uint32(id))))
	if c.opt.Services != nil {
		n.Services = c.opt.Services(id)
	}
	for _, s := range n.Services {
		if err := n.Exec.Register(s); err != nil {
			return nil, err
		}
	}
	if err := n.Exec.Start(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.nodes[id] = n
	c.mu.Unlock()
	return n, nil
}

// Node returns node id (nil if it never existed).
func (c *Cluster) Node(id totem.NodeID) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

// Alive lists the live nodes in ID order.
func (c *Cluster) Alive() []totem.NodeID {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []totem.NodeID
	for id, n := range c.nodes {
		if n.alive {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// --- exec.Ring ---

// Send implements exec.Ring: queue, or ErrTryAgain when the node's queue
// is full. A crashed node's sends vanish, like its process.
func (n *Node) Send(service, id uint16, g totem.Guarantee, payload []byte) error {
	if len(payload) > totem.MaxMessageSize {
		return totem.ErrTooLarge
	}
	c := n.c
	c.mu.Lock()
	if !n.alive {
		c.mu.Unlock()
		return nil
	}
	if len(n.queue) >= n.limit {
		c.mu.Unlock()
		return totem.ErrTryAgain
	}
	n.queue = append(n.queue, totem.Message{Sender: n.ID, Service: service, ID: id, Guarantee: g, Payload: slices.Clone(payload)})
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

// Status implements exec.Ring.
func (n *Node) Status() totem.Status {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return totem.Status{Node: n.ID, Ring: n.ring.Ring, State: totem.StateOperational, Members: slices.Clone(n.ring.Members)}
}

// SetQueueLimit changes how many messages the node may have queued.
func (n *Node) SetQueueLimit(limit int) {
	n.c.mu.Lock()
	n.limit = limit
	n.c.mu.Unlock()
}

// Queued is the number of the node's messages not yet ordered.
func (n *Node) Queued() int {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return len(n.queue)
}

// Listen serves the node's executive on a Unix socket, so real clients
// can talk to it; a crash closes the socket (clients see the node die).
func (n *Node) Listen(path string, opt ipc.Options) (*ipc.Server, error) {
	if opt.Log == nil {
		opt.Log = n.c.opt.Log
	}
	if opt.Hello == nil {
		id := n.ID
		opt.Hello = func() []byte { return fmt.Appendf(nil, `{"node_id":%d,"version":"exectest"}`, id) }
	}
	srv, err := ipc.Listen(path, n.Exec, opt)
	if err != nil {
		return nil, err
	}
	n.c.mu.Lock()
	n.server = srv
	n.c.mu.Unlock()
	go func() { _ = srv.Serve() }()
	return srv, nil
}

// --- ordering ---

// Step orders and delivers the next few messages of one node. It reports
// false when nothing was pending (or the cluster is frozen).
func (c *Cluster) Step() bool {
	c.step.Lock()
	defer c.step.Unlock()
	c.mu.Lock()
	if c.frozen || c.closed {
		c.mu.Unlock()
		return false
	}
	var ready []*Node
	for _, n := range c.nodes {
		if n.alive && len(n.queue) > 0 {
			ready = append(ready, n)
		}
	}
	if len(ready) == 0 {
		c.mu.Unlock()
		return false
	}
	// Map order is random: sort so the seed alone decides.
	slices.SortFunc(ready, func(a, b *Node) int { return int(a.ID) - int(b.ID) })
	src := ready[c.rng.IntN(len(ready))]
	k := 1 + c.rng.IntN(min(len(src.queue), 16))
	c.orderLocked(src, k) // unlocks c.mu
	return true
}

// StepFrom orders and delivers up to k of node id's pending messages,
// even while frozen (to script an exact interleaving); it returns how many.
func (c *Cluster) StepFrom(id totem.NodeID, k int) int {
	c.step.Lock()
	defer c.step.Unlock()
	c.mu.Lock()
	n := c.nodes[id]
	if n == nil || !n.alive || c.closed {
		c.mu.Unlock()
		return 0
	}
	k = min(k, len(n.queue))
	c.orderLocked(n, k)
	return k
}

// orderLocked delivers src's first k messages to its partition. Called
// with c.step and c.mu held; it releases c.mu before calling executives.
func (c *Cluster) orderLocked(src *Node, k int) {
	msgs := slices.Clone(src.queue[:k])
	src.queue = slices.Delete(src.queue, 0, k)
	var dst []*Node
	for _, id := range src.part {
		if d := c.nodes[id]; d != nil && d.alive {
			dst = append(dst, d)
		}
	}
	c.mu.Unlock()
	for _, m := range msgs {
		for _, d := range dst {
			d.Exec.Deliver(m)
		}
	}
	c.notify()
}

// Drain steps until no message is pending, or max steps were taken
// (services that answer every message with another never drain); it
// returns the number of steps.
func (c *Cluster) Drain(max int) int {
	n := 0
	for n < max && c.Step() {
		n++
	}
	return n
}

// Run steps in the background whenever messages are pending, until the
// returned stop function is called (stop waits for the pump to end).
func (c *Cluster) Run() (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if c.Step() {
				select {
				case <-quit:
					return
				default:
				}
				continue
			}
			select {
			case <-quit:
				return
			case <-c.wake:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}
}

// Freeze stops ordering: Send still queues (up to the limit) but nothing
// is delivered until Thaw.
func (c *Cluster) Freeze() {
	c.mu.Lock()
	c.frozen = true
	c.mu.Unlock()
}

// Thaw resumes ordering.
func (c *Cluster) Thaw() {
	c.mu.Lock()
	c.frozen = false
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Cluster) notify() {
	c.mu.Lock()
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// Wait blocks until cond (called without any cluster lock held, after
// every step and fault) is true, ctx ends, or the cluster is closed.
func (c *Cluster) Wait(ctx context.Context, cond func() bool) error {
	for {
		c.mu.Lock()
		ch, closed := c.changed, c.closed
		c.mu.Unlock()
		if cond() {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("exectest: condition not met: %w", ctx.Err())
		}
	}
}

// Synced reports whether every live node has finished the sync of its
// current configuration.
func (c *Cluster) Synced() bool {
	for _, id := range c.Alive() {
		if !c.Node(id).Exec.Synced() {
			return false
		}
	}
	return true
}

// WaitSynced is Wait(ctx, c.Synced).
func (c *Cluster) WaitSynced(ctx context.Context) error { return c.Wait(ctx, c.Synced) }

// --- faults ---

// Crash stops node id: its queue is lost, its socket closed, and the rest
// of its partition installs a configuration without it.
func (c *Cluster) Crash(id totem.NodeID) {
	c.step.Lock()
	defer c.step.Unlock()
	c.mu.Lock()
	n := c.nodes[id]
	if n == nil || !n.alive {
		c.mu.Unlock()
		return
	}
	n.alive = false
	n.queue = nil
	srv := n.server
	n.server = nil
	rest := slices.DeleteFunc(slices.Clone(n.part), func(x totem.NodeID) bool { return x == id })
	parts := c.partsLocked()
	c.mu.Unlock()
	if srv != nil {
		go func() { _ = srv.Close() }() // its clients see the node die
	}
	parts = slices.DeleteFunc(parts, func(p []totem.NodeID) bool { return slices.Equal(p, n.part) || slices.Contains(p, id) })
	if len(rest) > 0 {
		parts = append(parts, rest)
	}
	c.reconfigure(parts)
}

// Restart brings a crashed node back as a new process (fresh services) in
// a partition of its own; Heal merges it.
func (c *Cluster) Restart(id totem.NodeID) (*Node, error) {
	c.step.Lock()
	defer c.step.Unlock()
	c.mu.Lock()
	old := c.nodes[id]
	if old != nil && old.alive {
		c.mu.Unlock()
		return nil, fmt.Errorf("exectest: node %d is running", id)
	}
	parts := c.partsLocked()
	c.mu.Unlock()
	n, err := c.newNode(id)
	if err != nil {
		return nil, err
	}
	c.reconfigure(append(parts, []totem.NodeID{id}))
	return n, nil
}

// Partition splits the live nodes into the given groups (every live node
// in exactly one).
func (c *Cluster) Partition(groups ...[]totem.NodeID) error {
	c.step.Lock()
	defer c.step.Unlock()
	alive := c.Alive()
	var seen []totem.NodeID
	for _, g := range groups {
		seen = append(seen, g...)
	}
	slices.Sort(seen)
	if !slices.Equal(seen, alive) {
		return fmt.Errorf("exectest: partition %v must hold every live node %v exactly once", groups, alive)
	}
	c.reconfigure(groups)
	return nil
}

// Heal merges every live node into one partition.
func (c *Cluster) Heal() {
	c.step.Lock()
	defer c.step.Unlock()
	c.reconfigure([][]totem.NodeID{c.Alive()})
}

// partsLocked lists the current partitions of live nodes.
func (c *Cluster) partsLocked() [][]totem.NodeID {
	var parts [][]totem.NodeID
	for _, n := range c.nodes {
		if !n.alive {
			continue
		}
		if !slices.ContainsFunc(parts, func(p []totem.NodeID) bool { return slices.Equal(p, n.part) }) && len(n.part) > 0 {
			parts = append(parts, slices.Clone(n.part))
		}
	}
	return parts
}

// reconfigure installs groups as the partitions. A partition whose
// membership is unchanged keeps its ring; every other node gets a
// transitional then a regular configuration. Called with c.step held.
func (c *Cluster) reconfigure(groups [][]totem.NodeID) {
	type install struct {
		n            *Node
		trans, regul totem.ConfChange
	}
	var todo []install
	c.mu.Lock()
	for _, g := range groups {
		g = slices.Clone(g)
		slices.Sort(g)
		same := true
		for _, id := range g {
			n := c.nodes[id]
			if !slices.Equal(n.part, g) || len(n.ring.Members) == 0 {
				same = false
			}
		}
		if same {
			continue
		}
		c.seq += 4
		ring := totem.RingID{Rep: g[0], Seq: c.seq}
		for _, id := range g {
			n := c.nodes[id]
			prev := n.ring.Members
			trans := intersect(n.part, g)
			in := install{n: n}
			if len(prev) > 0 {
				in.trans = totem.ConfChange{Kind: totem.Transitional, Ring: n.ring.Ring, Members: trans, Left: minus(prev, trans)}
			}
			in.regul = totem.ConfChange{Kind: totem.Regular, Ring: ring, Members: g, Left: minus(prev, g), Joined: minus(g, prev)}
			n.part = g
			n.ring = in.regul
			todo = append(todo, in)
		}
	}
	c.mu.Unlock()
	// Each node's pair is delivered before the next node's: nodes of a
	// partition need not install at the same instant, only before any
	// message of the new ring is ordered (the step lock is held).
	for _, in := range todo {
		if in.trans.Members != nil {
			in.n.Exec.ConfChange(in.trans)
		}
		in.n.Exec.ConfChange(in.regul)
	}
	c.notify()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func intersect(a, b []totem.NodeID) []totem.NodeID {
	out := []totem.NodeID{}
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func minus(a, b []totem.NodeID) []totem.NodeID {
	var out []totem.NodeID
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// Close stops every node's socket; Wait returns ErrClosed from now on.
func (c *Cluster) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	var srvs []*ipc.Server
	for _, n := range c.nodes {
		if n.server != nil {
			srvs = append(srvs, n.server)
			n.server = nil
		}
	}
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	for _, s := range srvs {
		_ = s.Close()
	}
}
