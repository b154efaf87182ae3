package groups_test

import (
	"fmt"
	"strings"
	"testing"

	"ringmaster/cpg/groups"
	"ringmaster/cpg/wire"
	"ringmaster/totem"
)

// node is a fake Env: one node's view of the executive, recording what the
// core sends and reports as lines of text. No goroutine, socket or clock:
// the test feeds the ordered stream by hand.
type node struct {
	id     totem.NodeID
	synced bool
	ring   totem.ConfChange
	refuse bool // Send answers totem.ErrTryAgain
	names  map[*groups.Conn]string
	sent   []totem.Message // multicast, in order (to feed back as the stream)
	log    []string
	core   *groups.Core
}

func newNode(id totem.NodeID, members ...totem.NodeID) *node {
	n := &node{id: id, synced: true, names: map[*groups.Conn]string{},
		ring: totem.ConfChange{Kind: totem.Regular, Ring: totem.RingID{Rep: members[0], Seq: 4}, Members: members}}
	n.core = groups.New(n)
	return n
}

func (n *node) Local() totem.NodeID    { return n.id }
func (n *node) Synced() bool           { return n.synced }
func (n *node) Ring() totem.ConfChange { return n.ring }
func (n *node) Send(id uint16, g totem.Guarantee, p []byte) error {
	if n.refuse {
		return totem.ErrTryAgain
	}
	n.SendReliable(id, g, p)
	return nil
}
func (n *node) SendReliable(id uint16, g totem.Guarantee, p []byte) {
	n.sent = append(n.sent, totem.Message{Sender: n.id, ID: id, Guarantee: g, Payload: append([]byte{}, p...)})
}
func (n *node) Event(c *groups.Conn, id uint16, p []byte) {
	var s string
	switch id {
	case wire.EvConfChg:
		cc, err := wire.ParseConfChg(p)
		must(err)
		s = fmt.Sprintf("confchg %s members=%s left=%s joined=%s", cc.Name, addrs(cc.Members), addrs(cc.Left), addrs(cc.Joined))
	case wire.EvDeliver:
		r, err := wire.ParseRecord(p)
		must(err)
		s = fmt.Sprintf("deliver %s from %d/%d: %s", r.Name, r.NodeID, r.PID, r.Data)
	case wire.EvTotemConf:
		tc, err := wire.ParseTotemConf(p)
		must(err)
		s = fmt.Sprintf("totemconf %v %v", tc.Ring, tc.Members)
	}
	n.log = append(n.log, fmt.Sprintf("n%d %s: %s", n.id, n.names[c], s))
}
func (n *node) Changed(group string, left, joined []wire.Address) {}
func (n *node) Malformed(m totem.Message, err error) {
	n.log = append(n.log, fmt.Sprintf("n%d malformed %d: %v", n.id, m.ID, err))
}

func (n *node) conn(name string) *groups.Conn {
	c := n.core.NewConn()
	n.names[c] = name
	return c
}

func (n *node) take() string {
	s := strings.Join(n.log, "\n")
	n.log = nil
	return s
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func addrs(as []wire.Address) string {
	var s []string
	for _, a := range as {
		x := fmt.Sprintf("%d/%d", a.NodeID, a.PID)
		if a.Reason != 0 {
			x += ":" + a.Reason.String()
		}
		s = append(s, x)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// order delivers what the nodes multicast, in the order given, to every
// node of to (the ideal total order of one ring).
func order(to []*node, from ...*node) {
	for _, f := range from {
		msgs := f.sent
		f.sent = nil
		for _, m := range msgs {
			for _, n := range to {
				n.core.Deliver(m)
			}
		}
	}
}

func logs(ns ...*node) string {
	var out []string
	for _, n := range ns {
		if s := n.take(); s != "" {
			out = append(out, s)
		}
	}
	return strings.Join(out, "\n")
}

func expect(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\ngot:\n%s\nwant:\n%s", what, got, want)
	}
}

func code(err error) string {
	if err == nil {
		return "ok"
	}
	if e, ok := err.(*groups.Error); ok {
		return fmt.Sprintf("code %d: %s", e.Code, e.Msg)
	}
	return err.Error()
}

// TestJoinMcastLeave: joins take effect when delivered, on every node the
// same; a connection's events begin with its own join; mcasts reach the
// members that receive; a leave ends them.
func TestJoinMcastLeave(t *testing.T) {
	n1, n2 := newNode(1, 1, 2), newNode(2, 1, 2)
	all := []*node{n1, n2}
	a, b := n1.conn("a"), n2.conn("b")

	expect(t, "join a", code(n1.core.Join(a, "g", 100)), "ok")
	if a.State() != groups.Joining {
		t.Fatalf("a is %v before its join is delivered", a.State())
	}
	order(all, n1)
	expect(t, "a joined", logs(n1, n2), strings.Join([]string{
		"n1 a: confchg g members=[1/100] left=[] joined=[1/100:join]",
		"n1 a: totemconf 1.4 [1 2]",
	}, "\n"))
	expect(t, "join b", code(n2.core.Join(b, "g", 200)), "ok")
	order(all, n2)
	expect(t, "b joined", logs(n1, n2), strings.Join([]string{
		"n1 a: confchg g members=[1/100 2/200] left=[] joined=[2/200:join]",
		"n2 b: confchg g members=[1/100 2/200] left=[] joined=[2/200:join]",
		"n2 b: totemconf 1.4 [1 2]",
	}, "\n"))

	rec := wire.AppendRecord(nil, totem.Agreed, 0, 0, []byte("g"), []byte("hi"))
	g, err := n1.core.CheckMcast(a, rec)
	expect(t, "check mcast", code(err), "ok")
	n1.SendReliable(wire.MsgMcast, g, rec) // the driver sends what was checked
	order(all, n1)
	expect(t, "mcast", logs(n1, n2), "n1 a: deliver g from 1/100: hi\nn2 b: deliver g from 1/100: hi")

	expect(t, "leave b", code(n2.core.Leave(b)), "ok")
	expect(t, "leave b again", code(n2.core.Leave(b)), "code 4: cpg leave: not in a group")
	order(all, n2)
	expect(t, "b left", logs(n1, n2), strings.Join([]string{
		"n1 a: confchg g members=[1/100] left=[2/200:leave] joined=[]",
		"n2 b: confchg g members=[1/100] left=[2/200:leave] joined=[]",
	}, "\n"))
	if b.State() != groups.Unjoined {
		t.Errorf("b is %v after its leave", b.State())
	}
	for _, n := range all {
		expect(t, fmt.Sprintf("n%d groups", n.id), fmt.Sprint(n.core.Groups()), "[{g [{1 100 }]}]")
	}
	if c := n1.core.Counters(); c.Mcasts != 1 || c.Delivered != 1 {
		t.Errorf("n1 counters %+v", c)
	}
}

// TestConnectionStates follows corosync's connection state table: what a
// lib join, leave or mcast answers in each state, and that a refused
// request changes nothing.
func TestConnectionStates(t *testing.T) {
	n1 := newNode(1, 1)
	all := []*node{n1}
	a := n1.conn("a")
	rec := func() []byte { return wire.AppendRecord(nil, totem.Agreed, 0, 0, []byte("g"), nil) }
	mcast := func(c *groups.Conn) string { _, err := n1.core.CheckMcast(c, rec()); return code(err) }

	// UNJOINED
	expect(t, "unjoined leave", code(n1.core.Leave(a)), "code 4: cpg leave: not in a group")
	expect(t, "unjoined mcast", mcast(a), "code 4: cpg mcast: not in a group")
	n1.synced = false
	expect(t, "join during sync", code(n1.core.Join(a, "g", 1)), "code 5: cpg: membership sync in progress")
	n1.synced, n1.refuse = true, true
	expect(t, "join, ring full", code(n1.core.Join(a, "g", 1)), totem.ErrTryAgain.Error())
	n1.refuse = false
	if a.State() != groups.Unjoined || len(n1.sent) != 0 {
		t.Fatalf("a refused join changed something: %v, sent %d", a.State(), len(n1.sent))
	}
	// JOINING
	expect(t, "join", code(n1.core.Join(a, "g", 1)), "ok")
	expect(t, "joining join", code(n1.core.Join(a, "h", 1)), `code 3: cpg join: this connection is already in group "g"`)
	expect(t, "joining leave", code(n1.core.Leave(a)), "code 5: cpg: a join or leave is in progress")
	expect(t, "joining mcast", mcast(a), "ok")
	other := n1.conn("other")
	expect(t, "same pid joins", code(n1.core.Join(other, "g", 1)), `code 3: cpg join: pid 1 is already in group "g"`)
	n1.sent = n1.sent[:1] // only the join goes out (the mcast was checked, not sent)
	order(all, n1)
	n1.take()
	// JOINED
	expect(t, "joined mcast", mcast(a), "ok")
	wrong := wire.AppendRecord(nil, totem.Agreed, 0, 0, []byte("h"), nil)
	_, err := n1.core.CheckMcast(a, wrong)
	expect(t, "mcast to another group", code(err), `code 1: cpg mcast: the record names group "h", the connection is in "g"`)
	expect(t, "leave", code(n1.core.Leave(a)), "ok")
	// LEAVING
	expect(t, "leaving join", code(n1.core.Join(a, "g", 1)), "code 5: cpg: a join or leave is in progress")
	expect(t, "leaving mcast", mcast(a), "code 4: cpg mcast: not in a group")
	expect(t, "pid still leaving", code(n1.core.Join(other, "g", 1)), `code 5: cpg join: pid 1 is still leaving group "g"`)
	order(all, n1)
	expect(t, "left", n1.take(), "n1 a: confchg g members=[] left=[1/1:leave] joined=[]")
	if a.State() != groups.Unjoined || len(n1.core.Groups()) != 0 {
		t.Errorf("after the leave: %v, groups %v", a.State(), n1.core.Groups())
	}
}

// TestDisconnectSendsProcDown: a connection that goes away in a group
// leaves with PROCDOWN (sent reliably, even with the ring full).
func TestDisconnectSendsProcDown(t *testing.T) {
	n1, n2 := newNode(1, 1, 2), newNode(2, 1, 2)
	all := []*node{n1, n2}
	a, b := n1.conn("a"), n2.conn("b")
	must(n1.core.Join(a, "g", 1))
	must(n2.core.Join(b, "g", 2))
	order(all, n1, n2)
	logs(n1, n2)
	n1.refuse = true
	n1.core.Disconnect(a)
	order(all, n1)
	expect(t, "procdown", logs(n1, n2), "n2 b: confchg g members=[2/2] left=[1/1:procdown] joined=[]")
}

// TestSync: after a partition, members of nodes that did not come along
// leave with NODEDOWN at the regular configuration; messages delivered
// before the sync completes are held; at SyncDone the join lists' union
// is installed (NODEUP for the members merged in), then the totem
// configuration, then the held messages.
func TestSync(t *testing.T) {
	n1, n2, n3 := newNode(1, 1, 2, 3), newNode(2, 1, 2, 3), newNode(3, 1, 2, 3)
	all := []*node{n1, n2, n3}
	a, b, c := n1.conn("a"), n2.conn("b"), n3.conn("c")
	must(n1.core.Join(a, "g", 1))
	must(n2.core.Join(b, "g", 2))
	must(n3.core.Join(c, "g", 3))
	order(all, n1, n2, n3)
	logs(all...)

	// n3 is cut off: {1,2} and {3} each see a transitional and a regular
	// configuration.
	ring12 := totem.ConfChange{Kind: totem.Regular, Ring: totem.RingID{Rep: 1, Seq: 8}, Members: []totem.NodeID{1, 2}}
	ring3 := totem.ConfChange{Kind: totem.Regular, Ring: totem.RingID{Rep: 3, Seq: 8}, Members: []totem.NodeID{3}}
	for _, n := range []*node{n1, n2} {
		n.core.ConfChange(totem.ConfChange{Kind: totem.Transitional, Ring: ring12.Ring, Members: ring12.Members})
		n.ring, n.synced = ring12, false
		n.core.ConfChange(ring12)
	}
	n3.core.ConfChange(totem.ConfChange{Kind: totem.Transitional, Ring: ring3.Ring, Members: ring3.Members})
	n3.ring, n3.synced = ring3, false
	n3.core.ConfChange(ring3)
	expect(t, "nodedown at the regular configuration", logs(all...), strings.Join([]string{
		"n1 a: confchg g members=[1/1 2/2] left=[3/3:nodedown] joined=[]",
		"n2 b: confchg g members=[1/1 2/2] left=[3/3:nodedown] joined=[]",
		"n3 c: confchg g members=[3/3] left=[1/1:nodedown 2/2:nodedown] joined=[]",
	}, "\n"))

	// An mcast sent before the change and delivered during the sync is
	// held until SyncDone.
	rec := wire.AppendRecord(nil, totem.Agreed, 0, 0, []byte("g"), []byte("late"))
	gu, err := n1.core.CheckMcast(a, rec)
	must(err)
	n1.SendReliable(wire.MsgMcast, gu, rec)
	order([]*node{n1, n2}, n1)
	expect(t, "held", logs(all...), "")

	for _, n := range []*node{n1, n2} {
		n.core.SyncStart(ring12)
	}
	order([]*node{n1, n2}, n1, n2)
	for _, n := range []*node{n1, n2} {
		n.synced = true
		n.core.SyncDone()
	}
	n3.core.SyncStart(ring3)
	order([]*node{n3}, n3)
	n3.synced = true
	n3.core.SyncDone()
	expect(t, "sync of the two rings", logs(all...), strings.Join([]string{
		"n1 a: totemconf 1.8 [1 2]",
		"n1 a: deliver g from 1/1: late",
		"n2 b: totemconf 1.8 [1 2]",
		"n2 b: deliver g from 1/1: late",
		"n3 c: totemconf 3.8 [3]",
	}, "\n"))
	if h := n1.core.Counters().Held; h != 1 {
		t.Errorf("held %d, want 1", h)
	}

	// The network heals: one ring of all three; nobody is in a
	// transitional configuration with a node of the other side, and the
	// join lists bring the other side's members back with NODEUP.
	ring123 := totem.ConfChange{Kind: totem.Regular, Ring: totem.RingID{Rep: 1, Seq: 12}, Members: []totem.NodeID{1, 2, 3}}
	for _, n := range all {
		own := ring12.Members
		if n == n3 {
			own = ring3.Members
		}
		n.core.ConfChange(totem.ConfChange{Kind: totem.Transitional, Ring: ring123.Ring, Members: own})
		n.ring, n.synced = ring123, false
		n.core.ConfChange(ring123)
		n.core.SyncStart(ring123)
	}
	order(all, n1, n2, n3)
	// A join list of an older ring (a sync cut short) is ignored, even
	// after the sender's current one.
	stale := totem.Message{Sender: 3, ID: wire.MsgJoinList, Payload: wire.AppendJoinList(nil, wire.JoinList{Ring: ring3.Ring, Entries: []wire.JoinEntry{{Name: "ghost", PID: 9}}})}
	for _, n := range all {
		n.core.Deliver(stale)
	}
	for _, n := range all {
		n.synced = true
		n.core.SyncDone()
	}
	expect(t, "merge", logs(all...), strings.Join([]string{
		"n1 a: confchg g members=[1/1 2/2 3/3] left=[] joined=[3/3:nodeup]",
		"n1 a: totemconf 1.12 [1 2 3]",
		"n2 b: confchg g members=[1/1 2/2 3/3] left=[] joined=[3/3:nodeup]",
		"n2 b: totemconf 1.12 [1 2 3]",
		"n3 c: confchg g members=[1/1 2/2 3/3] left=[] joined=[1/1:nodeup 2/2:nodeup]",
		"n3 c: totemconf 1.12 [1 2 3]",
	}, "\n"))
	for _, n := range all {
		expect(t, fmt.Sprintf("n%d groups", n.id), fmt.Sprint(n.core.Groups()), fmt.Sprint(n1.core.Groups()))
	}
	expect(t, "n1 members", fmt.Sprint(n1.core.Members("g")), "[{1 1 } {2 2 } {3 3 }]")
}

// TestMalformed: bad ring messages are reported and change nothing.
func TestMalformed(t *testing.T) {
	n1 := newNode(1, 1, 2)
	n1.core.Deliver(totem.Message{Sender: 2, ID: wire.MsgProcJoin, Payload: []byte{9}})
	n1.core.Deliver(totem.Message{Sender: 2, ID: wire.MsgMcast, Payload: wire.AppendRecord(nil, totem.Agreed, 1, 5, []byte("g"), nil)})
	n1.core.Deliver(totem.Message{Sender: 2, ID: 99})
	got := n1.take()
	for _, want := range []string{"malformed 1:", "malformed 4: record names another sender node", "malformed 99: unknown message id"} {
		if !strings.Contains(got, want) {
			t.Errorf("log %q lacks %q", got, want)
		}
	}
	if len(n1.core.Groups()) != 0 {
		t.Errorf("groups %v", n1.core.Groups())
	}
}

// TestRegularWithoutTransitional: a ring that reports no transitional
// configuration: whoever is in both the old and the new ring came along,
// and the local node's own members always stay.
func TestRegularWithoutTransitional(t *testing.T) {
	n1 := newNode(1, 1, 2)
	a := n1.conn("a")
	must(n1.core.Join(a, "g", 1))
	order([]*node{n1}, n1)
	n1.core.Deliver(totem.Message{Sender: 2, ID: wire.MsgProcJoin, Payload: wire.AppendProcMsg(nil, wire.ProcMsg{Reason: wire.ReasonJoin, Name: "g", PID: 2})})
	n1.take()
	// The first regular configuration this core sees: no previous ring,
	// so nobody came along but the local node.
	n1.core.ConfChange(totem.ConfChange{Kind: totem.Regular, Ring: totem.RingID{Rep: 1, Seq: 8}, Members: []totem.NodeID{1, 2}})
	expect(t, "first regular", n1.take(), "n1 a: confchg g members=[1/1] left=[2/2:nodedown] joined=[]")
	// From then on, the intersection of the two rings.
	n1.core.Deliver(totem.Message{Sender: 2, ID: wire.MsgProcJoin, Payload: wire.AppendProcMsg(nil, wire.ProcMsg{Reason: wire.ReasonJoin, Name: "g", PID: 2})})
	n1.take()
	n1.core.ConfChange(totem.ConfChange{Kind: totem.Regular, Ring: totem.RingID{Rep: 1, Seq: 12}, Members: []totem.NodeID{1, 2, 3}})
	expect(t, "second regular", n1.take(), "")
}
