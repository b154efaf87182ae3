// Package cpg is the closed process group service (corosync's CPG) on the
// executive: local processes join named groups, multicast to them in total
// order, and learn of every membership change of their groups in the same
// order, relative to the messages, on every node.
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
// queue is full, answers TRY_AGAIN (ipc.ErrTryAgain) and changes nothing.
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
// # Memory
//
// Deliveries go to clients through exec.Client.Event, which never blocks: a
// client that stops reading is cut off by ipc once its output budget is
// spent (ipc.ErrSlowClient) and then leaves its group with PROCDOWN, so a
// reader that falls behind never grows ringd without bound.
package cpg

import (
	"cmp"
	"errors"
	"slices"

	"go.uber.org/zap"

	"ringmaster/cpg/wire"
	"ringmaster/internal/events"
	"ringmaster/ipc"
	"ringmaster/totem"
	"ringmaster/totem/exec"
)

// ErrBusy is answered (as try-again) while a join or leave of the same
// connection is still in flight.
var ErrBusy = errors.New("cpg: a join or leave is in progress")

// clientState is a local connection's state (see the package comment).
type clientState uint8

const (
	unjoined clientState = iota
	joining
	joined
	leaving
)

func (s clientState) String() string {
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
	local   []*client // JOINING, JOINED or LEAVING on this node
}

func (g *group) index(m member) (int, bool) {
	return slices.BinarySearchFunc(g.members, m, cmpMember)
}

// client is a local connection that has used the service.
type client struct {
	conn  exec.Client
	state clientState
	group *group // nil when UNJOINED
	pid   uint32
}

// receives reports whether the client gets the group's messages and
// events.
func (c *client) receives() bool { return c.state == joined || c.state == leaving }

// Stats are the service's counters.
type Stats struct {
	Delivered  uint64 // mcasts handed to local clients (per client)
	Held       uint64 // messages held during sync
	Malformed  uint64 // ring messages that did not decode
	SlowClient uint64 // clients cut off because they did not read
	Mcasts     uint64 // group messages delivered by the ring (local members or not)
	TryAgain   uint64 // client requests answered TRY_AGAIN (ring busy, sync in progress)
}

// Service is the cpg service. Create it with New and register it with the
// executive; every method is called under the executive's lock.
type Service struct {
	host  exec.Host
	log   *zap.Logger
	local totem.NodeID

	groups  map[string]*group
	clients map[exec.Client]*client

	// sync state
	prev      []totem.NodeID // members of the last regular configuration
	trans     []totem.NodeID // members of the transitional configuration, if one came after prev
	transSeen bool
	joinLists map[totem.NodeID][]wire.JoinEntry
	held      []totem.Message

	stats Stats
}

// New returns a cpg service.
func New() *Service {
	return &Service{groups: map[string]*group{}, clients: map[exec.Client]*client{}}
}

// The service answers local clients.
var _ exec.ClientHandler = (*Service)(nil)

// ID implements exec.Service.
func (s *Service) ID() exec.ServiceID { return exec.ServiceCPG }

// Name implements exec.Service.
func (s *Service) Name() string { return "cpg" }

// Init implements exec.Service.
func (s *Service) Init(h exec.Host) error {
	s.host = h
	s.log = h.Log()
	s.local = h.Local()
	return nil
}

// Stats returns the counters (under the executive's lock, e.g. exec.Do).
func (s *Service) Stats() Stats { return s.stats }

// Groups returns every group with its members, sorted by name (under the
// executive's lock).
func (s *Service) Groups() []wire.Group {
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

func addrs(ms []member, r wire.Reason) []wire.Address {
	out := make([]wire.Address, len(ms))
	for i, m := range ms {
		out[i] = wire.Address{NodeID: m.node, PID: m.pid, Reason: r}
	}
	return out
}

func (s *Service) groupFor(name string) *group {
	g := s.groups[name]
	if g == nil {
		g = &group{name: name}
		s.groups[name] = g
	}
	return g
}

// gc forgets a group nobody is in and no local connection refers to.
func (s *Service) gc(g *group) {
	if len(g.members) == 0 && len(g.local) == 0 {
		delete(s.groups, g.name)
	}
}

// --- ring side ---

// Deliver implements exec.Service.
func (s *Service) Deliver(m totem.Message) {
	if m.ID == wire.MsgJoinList {
		s.deliverJoinList(m)
		return
	}
	if !s.host.Synced() {
		// The ring may carry messages sent before the change into
		// the new ring; they wait until every node agrees on the
		// groups (package comment, sync step 3).
		m.Payload = slices.Clone(m.Payload)
		s.held = append(s.held, m)
		s.stats.Held++
		return
	}
	s.apply(m)
}

func (s *Service) apply(m totem.Message) {
	switch m.ID {
	case wire.MsgMcast:
		s.deliverMcast(m)
	case wire.MsgProcJoin:
		pm, err := wire.ParseProcMsg(m.Payload)
		if err != nil {
			s.malformed(m, err)
			return
		}
		s.procJoin(member{m.Sender, pm.PID}, pm.Name)
	case wire.MsgProcLeave:
		pm, err := wire.ParseProcMsg(m.Payload)
		if err != nil {
			s.malformed(m, err)
			return
		}
		s.procLeave(member{m.Sender, pm.PID}, pm.Name, pm.Reason)
	default:
		s.malformed(m, errors.New("unknown message id"))
	}
}

func (s *Service) malformed(m totem.Message, err error) {
	s.stats.Malformed++
	s.log.Warn("dropping a malformed cpg message", zap.Uint16("msg", m.ID), zap.Uint32("from", uint32(m.Sender)), zap.Error(err))
}

// deliverMcast is the hot path: the ring payload is the delivery event,
// passed to each local member as is.
func (s *Service) deliverMcast(m totem.Message) {
	r, err := wire.ParseRecord(m.Payload)
	if err != nil {
		s.malformed(m, err)
		return
	}
	if r.NodeID != m.Sender {
		s.malformed(m, errors.New("record names another sender node"))
		return
	}
	s.stats.Mcasts++
	g := s.groups[string(r.Name)]
	if g == nil {
		return
	}
	for _, c := range g.local {
		if !c.receives() {
			continue
		}
		s.event(c, wire.EvDeliver, m.Payload)
		s.stats.Delivered++
	}
}

// event sends an event; a client cut off for not reading leaves its group
// when ipc reports it closed (Disconnected).
func (s *Service) event(c *client, id uint16, p []byte) {
	if err := c.conn.Event(uint16(exec.ServiceCPG), id, p); errors.Is(err, ipc.ErrSlowClient) {
		s.stats.SlowClient++
		s.log.Warn("cpg client cut off: it does not read its events", zap.Uint64("conn", c.conn.ConnID()), zap.Int32("pid", c.conn.PeerCred().PID))
	}
}

// confchg tells the group's local receivers about a change, and records
// it in the node's event log (every node records every group's changes).
func (s *Service) confchg(g *group, left, joinedList []wire.Address) {
	for _, a := range joinedList {
		s.host.Events().Record(events.CPGJoin, "cpg group joined", events.Fields{
			"group": g.name, "member_node": uint32(a.NodeID), "pid": a.PID, "reason": a.Reason.String()})
	}
	for _, a := range left {
		s.host.Events().Record(events.CPGLeave, "cpg group left", events.Fields{
			"group": g.name, "member_node": uint32(a.NodeID), "pid": a.PID, "reason": a.Reason.String()})
	}
	var buf []byte
	for _, c := range g.local {
		if !c.receives() {
			continue
		}
		if buf == nil {
			buf = wire.AppendConfChg(nil, wire.ConfChg{Name: g.name, Members: addrs(g.members, 0), Left: left, Joined: joinedList})
		}
		s.event(c, wire.EvConfChg, buf)
	}
}

func (s *Service) totemConf() []byte {
	r := s.host.Ring()
	return wire.AppendTotemConf(nil, wire.TotemConf{Ring: r.Ring, Members: r.Members})
}

func (s *Service) procJoin(m member, name string) {
	g := s.groupFor(name)
	i, found := g.index(m)
	if found {
		return
	}
	g.members = slices.Insert(g.members, i, m)
	var first *client
	if m.node == s.local {
		for _, c := range g.local {
			if c.state == joining && c.pid == m.pid {
				c.state = joined
				first = c
				break
			}
		}
	}
	s.confchg(g, nil, []wire.Address{{NodeID: m.node, PID: m.pid, Reason: wire.ReasonJoin}})
	if first != nil {
		// corosync's CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF: a new
		// member learns the ring it is in right after its join.
		s.event(first, wire.EvTotemConf, s.totemConf())
	}
}

func (s *Service) procLeave(m member, name string, reason wire.Reason) {
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
		g.local = slices.DeleteFunc(g.local, func(c *client) bool {
			if c.state == leaving && c.pid == m.pid {
				c.state, c.group = unjoined, nil
				return true
			}
			return false
		})
	}
	s.gc(g)
}

// ConfChange implements exec.Service. At a regular configuration the
// members on nodes that did not come along from the previous one leave
// with NODEDOWN at once: every node that came from the same old ring holds
// the same lists and the same transitional configuration, so they agree
// without waiting for the sync, and no later message is delivered in a view
// that still shows the departed.
func (s *Service) ConfChange(c totem.ConfChange) {
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
func (s *Service) nodeDown(gone func(totem.NodeID) bool) {
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

func (s *Service) sortedGroupNames() []string {
	names := make([]string, 0, len(s.groups))
	for n := range s.groups {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (s *Service) flushHeld() {
	held := s.held
	s.held = nil
	for _, m := range held {
		s.apply(m)
	}
}

// SyncStart implements exec.Syncer: multicast the members on this node.
func (s *Service) SyncStart(c totem.ConfChange) {
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
	s.host.SendReliable(wire.MsgJoinList, totem.Agreed, wire.AppendJoinList(nil, jl))
}

func (s *Service) deliverJoinList(m totem.Message) {
	jl, err := wire.ParseJoinList(m.Payload)
	if err != nil {
		s.malformed(m, err)
		return
	}
	conf := s.host.Ring()
	if s.host.Synced() || jl.Ring != conf.Ring || !slices.Contains(conf.Members, m.Sender) {
		return // from a sync that a later configuration cut short
	}
	s.joinLists[m.Sender] = jl.Entries
}

// SyncDone implements exec.Syncer: install the agreed member lists,
// report the differences, then apply what was held.
func (s *Service) SyncDone() {
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
	tc := s.totemConf()
	for _, c := range s.clients {
		if c.receives() {
			s.event(c, wire.EvTotemConf, tc)
		}
	}
	s.flushHeld()
}

// --- client side ---

// Request implements exec.ClientHandler.
func (s *Service) Request(conn exec.Client, h ipc.Header, p []byte) {
	c := s.clients[conn]
	if c == nil {
		c = &client{conn: conn}
		s.clients[conn] = c
	}
	switch h.Msg {
	case wire.ReqMcast:
		// Send acknowledgements overtake the deliveries queued for
		// this client: a sender is never held behind its backlog
		// (exec.Client.ReplyUrgent), so it can keep the ring busy.
		if err := s.mcast(c, p); err != nil {
			s.countErr(err)
			_ = conn.ReplyErrorUrgent(h, err)
		} else {
			_ = conn.ReplyUrgent(h, nil)
		}
		return
	case wire.ReqMcastBatch:
		_ = conn.ReplyUrgent(h, s.mcastBatch(c, p))
		return
	}
	var reply []byte
	var err error
	switch h.Msg {
	case wire.ReqJoin:
		err = s.join(c, p)
	case wire.ReqLeave:
		err = s.leave(c)
	case wire.ReqMembers:
		reply, err = s.membersReq(p)
	case wire.ReqLocalNodeID:
		reply = wire.AppendU32(nil, uint32(s.local))
	case wire.ReqGroups:
		reply = wire.AppendGroups(nil, s.Groups())
	case wire.ReqTotemConf:
		reply = s.totemConf()
	default:
		err = ipc.Errorf(ipc.CodeUnknownMessage, "cpg message %d", h.Msg)
	}
	if err != nil {
		s.countErr(err)
		_ = conn.ReplyError(h, err)
		return
	}
	_ = conn.Reply(h, reply)
}

// countErr counts the TRY_AGAIN answers (metrics: ringd_cpg_try_again_total).
func (s *Service) countErr(err error) {
	if ipc.ToError(err).Code == ipc.CodeTryAgain {
		s.stats.TryAgain++
	}
}

// ready refuses ring-changing requests until CPG agrees on the groups.
func (s *Service) ready() error {
	if !s.host.Synced() || len(s.host.Ring().Members) == 0 {
		return ipc.Errorf(ipc.CodeTryAgain, "cpg: membership sync in progress")
	}
	return nil
}

func (s *Service) join(c *client, p []byte) error {
	req, err := wire.ParseJoinReq(p)
	if err != nil {
		return ipc.Errorf(ipc.CodeInvalid, "cpg join: %v", err)
	}
	pid := req.PID
	if pid == 0 {
		pid = uint32(c.conn.PeerCred().PID)
	}
	switch c.state {
	case joining, joined:
		return ipc.Errorf(ipc.CodeExists, "cpg join: this connection is already in group %q", c.group.name)
	case leaving:
		return ipc.Errorf(ipc.CodeTryAgain, "%v", ErrBusy)
	}
	if err := s.ready(); err != nil {
		return err
	}
	g := s.groups[req.Name]
	if g != nil {
		for _, o := range g.local {
			if o.pid == pid && o.state != leaving {
				return ipc.Errorf(ipc.CodeExists, "cpg join: pid %d is already in group %q", pid, req.Name)
			}
		}
		if _, found := g.index(member{s.local, pid}); found {
			// A leave or disconnect of the same pid is still in flight.
			return ipc.Errorf(ipc.CodeTryAgain, "cpg join: pid %d is still leaving group %q", pid, req.Name)
		}
	}
	if err := s.host.Send(wire.MsgProcJoin, totem.Agreed, wire.AppendProcMsg(nil, wire.ProcMsg{Reason: wire.ReasonJoin, Name: req.Name, PID: pid})); err != nil {
		return err
	}
	g = s.groupFor(req.Name)
	c.state, c.group, c.pid = joining, g, pid
	g.local = append(g.local, c)
	return nil
}

func (s *Service) leave(c *client) error {
	switch c.state {
	case unjoined, leaving:
		return ipc.Errorf(ipc.CodeNotFound, "cpg leave: not in a group")
	case joining:
		return ipc.Errorf(ipc.CodeTryAgain, "%v", ErrBusy)
	}
	if err := s.ready(); err != nil {
		return err
	}
	if err := s.host.Send(wire.MsgProcLeave, totem.Agreed, wire.AppendProcMsg(nil, wire.ProcMsg{Reason: wire.ReasonLeave, Name: c.group.name, PID: c.pid})); err != nil {
		return err
	}
	c.state = leaving
	return nil
}

// checkMcast validates one record from client c and stamps the sender
// into it.
func (s *Service) checkMcast(c *client, rec []byte) (totem.Guarantee, error) {
	if c.state != joining && c.state != joined {
		return 0, ipc.Errorf(ipc.CodeNotFound, "cpg mcast: not in a group")
	}
	r, err := wire.ParseRecord(rec)
	if err != nil {
		if errors.Is(err, wire.ErrTooLarge) {
			return 0, ipc.Errorf(ipc.CodeTooLarge, "cpg mcast: %v", err)
		}
		return 0, ipc.Errorf(ipc.CodeInvalid, "cpg mcast: %v", err)
	}
	if string(r.Name) != c.group.name {
		return 0, ipc.Errorf(ipc.CodeInvalid, "cpg mcast: the record names group %q, the connection is in %q", r.Name, c.group.name)
	}
	wire.StampRecord(rec, s.local, c.pid)
	return r.Guarantee, nil
}

// congested is corosync's CPG flow control: a sender whose own
// deliveries pile up unread (exec.Client.Congested) gets TRY_AGAIN rather
// than adding more output that ringd would have to hold for it.
func congested(c *client) error {
	if c.conn != nil && c.conn.Congested() {
		return ipc.Errorf(ipc.CodeTryAgain, "cpg mcast: %d bytes of events wait unread on this connection; read them first", c.conn.Backlog())
	}
	return nil
}

func (s *Service) mcast(c *client, p []byte) error {
	g, err := s.checkMcast(c, p)
	if err != nil {
		return err
	}
	if err := congested(c); err != nil {
		return err
	}
	if err := s.ready(); err != nil {
		return err
	}
	return s.host.Send(wire.MsgMcast, g, p)
}

// mcastBatch multicasts records in order until one fails; the reply says
// how many went out and why the next did not.
func (s *Service) mcastBatch(c *client, p []byte) []byte {
	it, err := wire.NewBatchIter(p)
	if err != nil {
		e := ipc.ToError(ipc.Errorf(ipc.CodeInvalid, "cpg mcast batch: %v", err))
		return wire.AppendBatchReply(nil, wire.BatchReply{Code: uint16(e.Code), Msg: e.Msg})
	}
	sent := 0
	fail := func(err error) []byte {
		s.countErr(err)
		e := ipc.ToError(err)
		return wire.AppendBatchReply(nil, wire.BatchReply{Sent: sent, Code: uint16(e.Code), Msg: e.Msg})
	}
	if err := s.ready(); err != nil {
		return fail(err)
	}
	if err := congested(c); err != nil {
		return fail(err)
	}
	for {
		rec, ok := it.Next()
		if !ok {
			break
		}
		g, err := s.checkMcast(c, rec)
		if err != nil {
			return fail(err)
		}
		if err := s.host.Send(wire.MsgMcast, g, rec); err != nil {
			return fail(err)
		}
		sent++
	}
	if err := it.Err(); err != nil {
		return fail(ipc.Errorf(ipc.CodeInvalid, "cpg mcast batch: %v", err))
	}
	return wire.AppendBatchReply(nil, wire.BatchReply{Sent: sent})
}

func (s *Service) membersReq(p []byte) ([]byte, error) {
	name, err := wire.ParseName(p)
	if err != nil {
		return nil, ipc.Errorf(ipc.CodeInvalid, "cpg members: %v", err)
	}
	var ms []wire.Address
	if g := s.groups[name]; g != nil {
		ms = addrs(g.members, 0)
	}
	return wire.AppendAddrList(nil, ms), nil
}

// Disconnected implements exec.ClientHandler: a process that goes away
// without leaving leaves with PROCDOWN. It is sent reliably (queued in the
// executive when the ring is full): losing it would leave a ghost member.
func (s *Service) Disconnected(conn exec.Client) {
	c := s.clients[conn]
	if c == nil {
		return
	}
	delete(s.clients, conn)
	g := c.group
	if g == nil {
		return
	}
	g.local = slices.DeleteFunc(g.local, func(o *client) bool { return o == c })
	if c.state == joining || c.state == joined {
		s.host.SendReliable(wire.MsgProcLeave, totem.Agreed, wire.AppendProcMsg(nil, wire.ProcMsg{Reason: wire.ReasonProcDown, Name: g.name, PID: c.pid}))
	}
	s.gc(g)
}
