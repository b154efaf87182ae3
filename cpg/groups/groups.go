// Package groups is cpg's state machine: the replicated member lists of
// the closed process groups, the state of each local connection, and the
// sync after a membership change, as corosync's cpg.c has them. It is
// pure, as totem/srp is to totem/ring and confdb/store to confdb: no IPC,
// no logging, no goroutines, no clock. Its inputs are the ordered stream
// (Deliver, ConfChange, SyncStart, SyncDone) and local requests (Join,
// Leave, CheckMcast, Disconnect); what it sends and reports goes through
// Env, which the cpg package implements over the executive and ipc. Tests
// drive it with a fake Env.
//
// # Replicated state
//
// Every node keeps the member list of every group: (nodeid, pid) pairs.
// It changes only at points of the ordered stream (ring messages and the
// sync barrier), by the same code on every node, so nodes that see the
// same stream hold the same lists. Client requests never change it
// directly: a join or leave is multicast (MsgProcJoin, MsgProcLeave) and
// takes effect when delivered.
//
// Group membership of one process, per node (replicated):
//
//	member \ event | PROCJOIN  | PROCLEAVE(r)  | MCAST from it | regular conf, node not  | sync done:    | sync done:
//	               |           |               |               | in transitional conf    | in join lists | in none
//	---------------+-----------+---------------+---------------+-------------------------+---------------+--------------
//	absent         | add; JOIN | ignore        | deliver (1)   | -                       | add; NODEUP   | -
//	present        | ignore    | remove; r     | deliver       | remove; NODEDOWN        | -             | remove; NODEDOWN
//
// (1) A sender is always a member by FIFO order (its join precedes its
// messages) except across a merge whose sync was cut short by another
// configuration change; the message is delivered, not dropped.
//
// # Local connections
//
// One client connection is in at most one group at a time (like a
// cpg_handle_t). Its state, as in corosync's cpg.c:
//
//	state \ event  | lib join        | lib leave        | lib mcast   | own PROCJOIN delivered | own PROCLEAVE delivered | disconnect
//	---------------+-----------------+------------------+-------------+------------------------+-------------------------+--------------
//	UNJOINED       | send; → JOINING | NOT_FOUND        | NOT_FOUND   | XXX                    | XXX                     | -
//	JOINING        | EXISTS          | TRY_AGAIN (busy) | send        | → JOINED; events begin | XXX                     | send PROCDOWN
//	JOINED         | EXISTS          | send; → LEAVING  | send        | XXX                    | XXX (2)                 | send PROCDOWN
//	LEAVING        | TRY_AGAIN(busy) | NOT_FOUND        | NOT_FOUND   | XXX                    | confchg; → UNJOINED     | - (3)
//
// XXX: impossible. (2) a JOINED process leaves only through lib leave or
// disconnect. (3) the leave in flight removes it. JOINED and LEAVING
// connections receive the group's messages and confchg events. Any lib
// join, leave or mcast while a sync is running, or when the ring's send
// queue is full, answers TRY_AGAIN (CodeTryAgain, or the ring's own totem.ErrTryAgain)
// and changes nothing.
//
// # Sync after a membership change
//
// On every regular configuration the executive runs its sync barrier
// (exec.Syncer). CPG's part:
//
//  0. At the regular configuration itself, members on nodes that are not
//     in the transitional configuration (they did not come along from
//     the old ring) leave with NODEDOWN. Nodes from one old ring agree on
//     this without messages, and it happens before anything of the new
//     ring is delivered.
//  1. SyncStart: each node multicasts a join list (MsgJoinList), tagged
//     with the ring ID, of the members on its own node in its replicated
//     state. Its own processes are the one thing a node knows for sure.
//  2. Join lists of the current ring are collected; stale ones (from a
//     sync that a later configuration cut short) are ignored.
//  3. Other CPG messages delivered while the sync runs (joins, leaves and
//     mcasts sent before the change and carried into the new ring) are
//     held, in order.
//  4. SyncDone (at the same point of the stream on every node): every
//     group's member list becomes the union of the join lists, which is
//     the same on every node. Each node reports the difference to its
//     local members, per group: members it had not seen (from nodes that
//     merged in) joined with NODEUP, and members no join list names left
//     with NODEDOWN (a node that restarted too fast to be missed); then
//     the totem configuration event; then the held messages are applied
//     in order. From here new client requests are accepted.
//  5. If another regular configuration arrives before SyncDone, the held
//     messages are applied first (they belong to the configuration they
//     were delivered in, whose view excluded the departed already), then
//     step 0 runs for the new one and the sync starts over.
//
// Between step 0 and SyncDone nothing reaches the clients, so a group's
// events and messages arrive in the same order on every node that goes
// through the same configurations, which is virtual synchrony at the
// level of groups.
//
// Concurrency: a Core is not safe for concurrent use; the cpg service
// calls it under the executive's lock, and it calls Env back synchronously
// from inside those calls.
package groups

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"ringmaster/cpg/wire"
	"ringmaster/totem"
)

// Env is what the core needs from its driver. Every method is called from
// inside a Core method, synchronously.
type Env interface {
	// Local is this node's ID.
	Local() totem.NodeID
	// Synced reports whether the sync after the last regular
	// configuration is complete (exec.Host.Synced).
	Synced() bool
	// Ring is the last regular configuration.
	Ring() totem.ConfChange
	// Send multicasts a cpg message on the ring; it may refuse
	// (totem.ErrTryAgain), and then nothing changed.
	Send(id uint16, g totem.Guarantee, payload []byte) error
	// SendReliable multicasts a message that must go out (queued by the
	// driver when the ring is full).
	SendReliable(id uint16, g totem.Guarantee, payload []byte)
	// Event pushes an event (wire.EvDeliver, EvConfChg, EvTotemConf) to a
	// local connection. It must not call back into the Core.
	Event(c *Conn, id uint16, payload []byte)
	// Changed reports a membership change of a group, for the node's
	// event log (every node reports every group's changes).
	Changed(group string, left, joined []wire.Address)
	// Malformed reports a ring message that was dropped.
	Malformed(m totem.Message, err error)
}

// Code classifies the errors the core answers local requests with; the
// driver maps them to its IPC codes.
type Code uint8

// Codes of Error.
const (
	CodeInvalid Code = iota + 1
	CodeTooLarge
	CodeExists
	CodeNotFound
	CodeTryAgain
)

// Error is a refused local request.
type Error struct {
	Code Code
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// ErrBusy is answered (as try-again) while a join or leave of the same
// connection is still in flight.
var ErrBusy = errors.New("cpg: a join or leave is in progress")

// State is a local connection's state (see the package comment).
type State uint8

// Connection states.
const (
	Unjoined State = iota
	Joining
	Joined
	Leaving
)

func (s State) String() string {
	return [...]string{"unjoined", "joining", "joined", "leaving"}[s]
}

// member is a process in a group.
type member struct {
	node totem.NodeID
	pid  uint32
}

func cmpMember(a, b member) int {
	if c := cmp.Compare(a.node, b.node); c != 0 {
		return c
	}
	return cmp.Compare(a.pid, b.pid)
}

// group is one named group: its replicated member list (sorted by node,
// then pid, like corosync) and the local connections attached to it.
type group struct {
	name    string
	members []member
	local   []*Conn // JOINING, JOINED or LEAVING on this node
}

func (g *group) index(m member) (int, bool) {
	return slices.BinarySearchFunc(g.members, m, cmpMember)
}

// Conn is a local connection that has used the service (one per client
// connection; the driver keeps the mapping).
type Conn struct {
	state State
	group *group // nil when UNJOINED
	pid   uint32
}

// State is the connection's state.
func (c *Conn) State() State { return c.state }

// Receives reports whether the connection gets its group's messages and
// events.
func (c *Conn) Receives() bool { return c.state == Joined || c.state == Leaving }

// Counters are the core's share of the service's statistics.
type Counters struct {
	Delivered uint64 // mcasts handed to local connections (per connection)
	Held      uint64 // messages held during sync
	Mcasts    uint64 // group messages delivered by the ring (local members or not)
}

// Core is the state of the cpg service on one node.
type Core struct {
	env   Env
	local totem.NodeID

	groups map[string]*group
	conns  []*Conn // every connection, for the totem configuration event

	// sync state
	prev      []totem.NodeID // members of the last regular configuration
	trans     []totem.NodeID // members of the transitional configuration, if one came after prev
	transSeen bool
	joinLists map[totem.NodeID][]wire.JoinEntry
	held      []totem.Message

	counters Counters
}

// New returns the core of a node (env.Local).
func New(env Env) *Core {
	return &Core{env: env, local: env.Local(), groups: map[string]*group{}}
}

// Counters returns the counters.
func (s *Core) Counters() Counters { return s.counters }

// NewConn registers a local connection (UNJOINED).
func (s *Core) NewConn() *Conn {
	c := &Conn{}
	s.conns = append(s.conns, c)
	return c
}

// Groups returns every group with its members, sorted by name.
func (s *Core) Groups() []wire.Group {
	out := make([]wire.Group, 0, len(s.groups))
	for _, g := range s.groups {
		if len(g.members) == 0 {
			continue
		}
		out = append(out, wire.Group{Name: g.name, Members: addrs(g.members, 0)})
	}
	slices.SortFunc(out, func(a, b wire.Group) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Members returns the members of group name (none when it does not exist).
func (s *Core) Members(name string) []wire.Address {
	if g := s.groups[name]; g != nil {
		return addrs(g.members, 0)
	}
	return nil
}

func addrs(ms []member, r wire.Reason) []wire.Address {
	out := make([]wire.Address, len(ms))
	for i, m := range ms {
		out[i] = wire.Address{NodeID: m.node, PID: m.pid, Reason: r}
	}
	return out
}

func (s *Core) groupFor(name string) *group {
	g := s.groups[name]
	if g == nil {
		g = &group{name: name}
		s.groups[name] = g
	}
	return g
}

// gc forgets a group nobody is in and no local connection refers to.
func (s *Core) gc(g *group) {
	if len(g.members) == 0 && len(g.local) == 0 {
		delete(s.groups, g.name)
	}
}

// --- ring side ---

// Deliver handles a cpg message of the ordered stream.
func (s *Core) Deliver(m totem.Message) {
	if m.ID == wire.MsgJoinList {
		s.deliverJoinList(m)
		return
	}
	if !s.env.Synced() {
		// The ring may carry messages sent before the change into
		// the new ring; they wait until every node agrees on the
		// groups (package comment, sync step 3).
		m.Payload = slices.Clone(m.Payload)
		s.held = append(s.held, m)
		s.counters.Held++
		return
	}
	s.apply(m)
}

func (s *Core) apply(m totem.Message) {
	switch m.ID {
	case wire.MsgMcast:
		s.deliverMcast(m)
	case wire.MsgProcJoin:
		pm, err := wire.ParseProcMsg(m.Payload)
		if err != nil {
			s.env.Malformed(m, err)
			return
		}
		s.procJoin(member{m.Sender, pm.PID}, pm.Name)
	case wire.MsgProcLeave:
		pm, err := wire.ParseProcMsg(m.Payload)
		if err != nil {
			s.env.Malformed(m, err)
			return
		}
		s.procLeave(member{m.Sender, pm.PID}, pm.Name, pm.Reason)
	default:
		s.env.Malformed(m, errors.New("unknown message id"))
	}
}

// deliverMcast is the hot path: the ring payload is the delivery event,
// passed to each local member as is.
func (s *Core) deliverMcast(m totem.Message) {
	r, err := wire.ParseRecord(m.Payload)
	if err != nil {
		s.env.Malformed(m, err)
		return
	}
	if r.NodeID != m.Sender {
		s.env.Malformed(m, errors.New("record names another sender node"))
		return
	}
	s.counters.Mcasts++
	g := s.groups[string(r.Name)]
	if g == nil {
		return
	}
	for _, c := range g.local {
		if !c.Receives() {
			continue
		}
		s.env.Event(c, wire.EvDeliver, m.Payload)
		s.counters.Delivered++
	}
}

// confchg reports a change of the group, then tells its local receivers.
func (s *Core) confchg(g *group, left, joinedList []wire.Address) {
	s.env.Changed(g.name, left, joinedList)
	var buf []byte
	for _, c := range g.local {
		if !c.Receives() {
			continue
		}
		if buf == nil {
			buf = wire.AppendConfChg(nil, wire.ConfChg{Name: g.name, Members: addrs(g.members, 0), Left: left, Joined: joinedList})
		}
		s.env.Event(c, wire.EvConfChg, buf)
	}
}

// TotemConf is the totem configuration event and reply (ReqTotemConf):
// the last regular configuration.
func (s *Core) TotemConf() []byte {
	r := s.env.Ring()
	return wire.AppendTotemConf(nil, wire.TotemConf{Ring: r.Ring, Members: r.Members})
}

func (s *Core) procJoin(m member, name string) {
	g := s.groupFor(name)
	i, found := g.index(m)
	if found {
		return
	}
	g.members = slices.Insert(g.members, i, m)
	var first *Conn
	if m.node == s.local {
		for _, c := range g.local {
			if c.state == Joining && c.pid == m.pid {
				c.state = Joined
				first = c
				break
			}
		}
	}
	s.confchg(g, nil, []wire.Address{{NodeID: m.node, PID: m.pid, Reason: wire.ReasonJoin}})
	if first != nil {
		// corosync's CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF: a new
		// member learns the ring it is in right after its join.
		s.env.Event(first, wire.EvTotemConf, s.TotemConf())
	}
}

func (s *Core) procLeave(m member, name string, reason wire.Reason) {
	g := s.groups[name]
	if g == nil {
		return
	}
	i, found := g.index(m)
	if !found {
		return
	}
	g.members = slices.Delete(g.members, i, i+1)
	s.confchg(g, []wire.Address{{NodeID: m.node, PID: m.pid, Reason: reason}}, nil)
	if m.node == s.local {
		g.local = slices.DeleteFunc(g.local, func(c *Conn) bool {
			if c.state == Leaving && c.pid == m.pid {
				c.state, c.group = Unjoined, nil
				return true
			}
			return false
		})
	}
	s.gc(g)
}

// ConfChange handles a configuration change. At a regular configuration
// the members on nodes that did not come along from the previous one
// leave with NODEDOWN at once: every node that came from the same old
// ring holds the same lists and the same transitional configuration, so
// they agree without waiting for the sync, and no later message is
// delivered in a view that still shows the departed.
func (s *Core) ConfChange(c totem.ConfChange) {
	if c.Kind == totem.Transitional {
		s.trans = slices.Clone(c.Members)
		s.transSeen = true
		return
	}
	// A sync cut short: what was held belongs to the configuration it
	// was delivered in (package comment, sync step 5).
	s.flushHeld()
	survivors := s.trans
	if !s.transSeen {
		// No transitional configuration (a ring that never reports
		// one): whoever is in both the old and the new ring came along.
		survivors = intersect(s.prev, c.Members)
	}
	s.nodeDown(func(n totem.NodeID) bool { return !slices.Contains(survivors, n) })
	s.prev = slices.Clone(c.Members)
	s.trans, s.transSeen = nil, false
	s.joinLists = map[totem.NodeID][]wire.JoinEntry{}
}

func intersect(a, b []totem.NodeID) []totem.NodeID {
	var out []totem.NodeID
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// nodeDown removes the members on nodes for which gone is true, reporting
// NODEDOWN group by group in name order.
func (s *Core) nodeDown(gone func(totem.NodeID) bool) {
	for _, name := range s.sortedGroupNames() {
		g := s.groups[name]
		var left []wire.Address
		g.members = slices.DeleteFunc(g.members, func(m member) bool {
			if m.node != s.local && gone(m.node) {
				left = append(left, wire.Address{NodeID: m.node, PID: m.pid, Reason: wire.ReasonNodeDown})
				return true
			}
			return false
		})
		if len(left) > 0 {
			s.confchg(g, left, nil)
		}
		s.gc(g)
	}
}

func (s *Core) sortedGroupNames() []string {
	names := make([]string, 0, len(s.groups))
	for n := range s.groups {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (s *Core) flushHeld() {
	held := s.held
	s.held = nil
	for _, m := range held {
		s.apply(m)
	}
}

// SyncStart multicasts the members on this node (exec.Syncer).
func (s *Core) SyncStart(c totem.ConfChange) {
	jl := wire.JoinList{Ring: c.Ring}
	for _, g := range s.groups {
		for _, m := range g.members {
			if m.node == s.local {
				jl.Entries = append(jl.Entries, wire.JoinEntry{Name: g.name, PID: m.pid})
			}
		}
	}
	// Sorted so the message is the same whatever the map order.
	slices.SortFunc(jl.Entries, func(a, b wire.JoinEntry) int {
		if c := cmp.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return cmp.Compare(a.PID, b.PID)
	})
	s.env.SendReliable(wire.MsgJoinList, totem.Agreed, wire.AppendJoinList(nil, jl))
}

func (s *Core) deliverJoinList(m totem.Message) {
	jl, err := wire.ParseJoinList(m.Payload)
	if err != nil {
		s.env.Malformed(m, err)
		return
	}
	conf := s.env.Ring()
	if s.env.Synced() || jl.Ring != conf.Ring || !slices.Contains(conf.Members, m.Sender) {
		return // from a sync that a later configuration cut short
	}
	s.joinLists[m.Sender] = jl.Entries
}

// SyncDone installs the agreed member lists, reports the differences,
// then applies what was held (exec.Syncer).
func (s *Core) SyncDone() {
	want := map[string][]member{}
	for node, entries := range s.joinLists {
		for _, e := range entries {
			want[e.Name] = append(want[e.Name], member{node, e.PID})
		}
	}
	s.joinLists = nil
	names := make([]string, 0, len(s.groups)+len(want))
	for n := range s.groups {
		names = append(names, n)
	}
	for n := range want {
		if s.groups[n] == nil {
			names = append(names, n)
		}
	}
	// Events go out group by group in name order on every node.
	slices.Sort(names)
	for _, name := range names {
		g := s.groupFor(name)
		next := want[name]
		slices.SortFunc(next, cmpMember)
		next = slices.CompactFunc(next, func(a, b member) bool { return a == b })
		var left, added []wire.Address
		for _, m := range g.members {
			if _, ok := slices.BinarySearchFunc(next, m, cmpMember); !ok {
				left = append(left, wire.Address{NodeID: m.node, PID: m.pid, Reason: wire.ReasonNodeDown})
			}
		}
		for _, m := range next {
			if _, ok := g.index(m); !ok {
				added = append(added, wire.Address{NodeID: m.node, PID: m.pid, Reason: wire.ReasonNodeUp})
			}
		}
		g.members = next
		if len(left) > 0 || len(added) > 0 {
			s.confchg(g, left, added)
		}
		s.gc(g)
	}
	tc := s.TotemConf()
	for _, c := range s.conns {
		if c.Receives() {
			s.env.Event(c, wire.EvTotemConf, tc)
		}
	}
	s.flushHeld()
}

// --- local connections ---

// Ready refuses ring-changing requests until CPG agrees on the groups.
func (s *Core) Ready() error {
	if !s.env.Synced() || len(s.env.Ring().Members) == 0 {
		return errorf(CodeTryAgain, "cpg: membership sync in progress")
	}
	return nil
}

// Join asks for c to join group name as process pid: it multicasts the
// join, which takes effect when delivered.
func (s *Core) Join(c *Conn, name string, pid uint32) error {
	switch c.state {
	case Joining, Joined:
		return errorf(CodeExists, "cpg join: this connection is already in group %q", c.group.name)
	case Leaving:
		return errorf(CodeTryAgain, "%v", ErrBusy)
	}
	if err := s.Ready(); err != nil {
		return err
	}
	g := s.groups[name]
	if g != nil {
		for _, o := range g.local {
			if o.pid == pid && o.state != Leaving {
				return errorf(CodeExists, "cpg join: pid %d is already in group %q", pid, name)
			}
		}
		if _, found := g.index(member{s.local, pid}); found {
			// A leave or disconnect of the same pid is still in flight.
			return errorf(CodeTryAgain, "cpg join: pid %d is still leaving group %q", pid, name)
		}
	}
	if err := s.env.Send(wire.MsgProcJoin, totem.Agreed, wire.AppendProcMsg(nil, wire.ProcMsg{Reason: wire.ReasonJoin, Name: name, PID: pid})); err != nil {
		return err
	}
	g = s.groupFor(name)
	c.state, c.group, c.pid = Joining, g, pid
	g.local = append(g.local, c)
	return nil
}

// Leave asks for c to leave its group.
func (s *Core) Leave(c *Conn) error {
	switch c.state {
	case Unjoined, Leaving:
		return errorf(CodeNotFound, "cpg leave: not in a group")
	case Joining:
		return errorf(CodeTryAgain, "%v", ErrBusy)
	}
	if err := s.Ready(); err != nil {
		return err
	}
	if err := s.env.Send(wire.MsgProcLeave, totem.Agreed, wire.AppendProcMsg(nil, wire.ProcMsg{Reason: wire.ReasonLeave, Name: c.group.name, PID: c.pid})); err != nil {
		return err
	}
	c.state = Leaving
	return nil
}

// CheckMcast validates one record from c and stamps the sender into it;
// the driver then multicasts it as wire.MsgMcast with the guarantee
// returned.
func (s *Core) CheckMcast(c *Conn, rec []byte) (totem.Guarantee, error) {
	if c.state != Joining && c.state != Joined {
		return 0, errorf(CodeNotFound, "cpg mcast: not in a group")
	}
	r, err := wire.ParseRecord(rec)
	if err != nil {
		if errors.Is(err, wire.ErrTooLarge) {
			return 0, errorf(CodeTooLarge, "cpg mcast: %v", err)
		}
		return 0, errorf(CodeInvalid, "cpg mcast: %v", err)
	}
	if string(r.Name) != c.group.name {
		return 0, errorf(CodeInvalid, "cpg mcast: the record names group %q, the connection is in %q", r.Name, c.group.name)
	}
	wire.StampRecord(rec, s.local, c.pid)
	return r.Guarantee, nil
}

// Disconnect forgets c: a process that goes away without leaving leaves
// with PROCDOWN. It is sent reliably: losing it would leave a ghost
// member.
func (s *Core) Disconnect(c *Conn) {
	s.conns = slices.DeleteFunc(s.conns, func(o *Conn) bool { return o == c })
	g := c.group
	if g == nil {
		return
	}
	g.local = slices.DeleteFunc(g.local, func(o *Conn) bool { return o == c })
	if c.state == Joining || c.state == Joined {
		s.env.SendReliable(wire.MsgProcLeave, totem.Agreed, wire.AppendProcMsg(nil, wire.ProcMsg{Reason: wire.ReasonProcDown, Name: g.name, PID: c.pid}))
	}
	s.gc(g)
}
