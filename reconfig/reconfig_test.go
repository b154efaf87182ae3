package reconfig

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"ringmaster/reconfig/wire"
	"ringmaster/totem"
)

// cluster runs machines over an in-memory totally ordered stream: every
// multicast is delivered to every machine in one global order, as the
// ring does.
type cluster struct {
	t     *testing.T
	now   time.Duration
	ids   []totem.NodeID
	ms    map[totem.NodeID]*Machine
	queue []queued
	// vote answers ActValidate (nil: the node never answers).
	vote func(n totem.NodeID, id ID) *wire.Vote
	// log is every node's commit/abort/done, as text.
	log map[totem.NodeID][]string
	// done is every local operator's outcome.
	done map[ID]*Outcome
}

type queued struct {
	from    totem.NodeID
	msg     uint16
	payload []byte
}

func okVote() *wire.Vote { return &wire.Vote{OK: true, Applied: []string{"totem.token"}} }

func newCluster(t *testing.T, ids ...totem.NodeID) *cluster {
	c := &cluster{t: t, ids: ids, ms: map[totem.NodeID]*Machine{}, log: map[totem.NodeID][]string{}, done: map[ID]*Outcome{},
		vote: func(totem.NodeID, ID) *wire.Vote { return okVote() }}
	ring := totem.RingID{Rep: ids[0], Seq: 8}
	for _, id := range ids {
		c.ms[id] = New(id)
		c.ms[id].ConfChange(totem.ConfChange{Kind: totem.Regular, Ring: ring, Members: ids})
		c.ms[id].SyncDone()
	}
	return c
}

// collect handles every machine's actions (votes go out as messages).
func (c *cluster) collect() bool {
	any := false
	for _, id := range c.ids {
		m := c.ms[id]
		for _, a := range m.Ready() {
			any = true
			switch a.Kind {
			case ActSend:
				c.queue = append(c.queue, queued{id, a.Msg, a.Payload})
			case ActValidate:
				if v := c.vote(id, a.ID); v != nil {
					m.Vote(a.ID, *v)
				}
			case ActCommit:
				c.log[id] = append(c.log[id], "commit "+a.ID.String())
			case ActAbort:
				c.log[id] = append(c.log[id], "abort "+a.ID.String())
			case ActDone:
				c.done[a.ID] = a.Outcome
			}
		}
	}
	return any
}

// run delivers everything queued, in order, to every machine, until
// nothing moves.
func (c *cluster) run() {
	for {
		moved := c.collect()
		if len(c.queue) > 0 {
			q := c.queue[0]
			c.queue = c.queue[1:]
			for _, id := range c.ids {
				if err := c.ms[id].Deliver(c.now, q.from, q.msg, q.payload); err != nil {
					c.t.Fatal(err)
				}
			}
			moved = true
		}
		if !moved {
			return
		}
	}
}

func (c *cluster) tick(d time.Duration) {
	c.now += d
	for _, id := range c.ids {
		c.ms[id].Tick(c.now)
	}
	c.run()
}

func (c *cluster) start(n totem.NodeID) ID {
	id, err := c.ms[n].Start(c.now, time.Second)
	if err != nil {
		c.t.Fatal(err)
	}
	return id
}

// same checks that every node logged exactly want.
func (c *cluster) same(want ...string) {
	c.t.Helper()
	for _, id := range c.ids {
		if !slices.Equal(c.log[id], want) {
			c.t.Errorf("node %d: %v, want %v", id, c.log[id], want)
		}
	}
}

func TestCommit(t *testing.T) {
	c := newCluster(t, 1, 2, 3)
	id := c.start(2)
	c.run()
	c.same("commit 2.1")
	o := c.done[id]
	if o == nil || o.Err != nil || len(o.Votes) != 3 || o.Votes[0].Node != 1 || o.Votes[2].Vote.Applied[0] != "totem.token" {
		t.Fatalf("outcome %+v", o)
	}
	if _, busy := c.ms[1].Busy(); busy {
		t.Fatal("still busy after the commit")
	}
	// Another one after it works.
	c.start(1)
	c.run()
	c.same("commit 2.1", "commit 1.1")
}

// TestRefusalNamesNodeAndLine: one bad file aborts everywhere and the
// initiator's answer names the node and its file:line.
func TestRefusalNamesNodeAndLine(t *testing.T) {
	c := newCluster(t, 1, 2, 3)
	c.vote = func(n totem.NodeID, _ ID) *wire.Vote {
		if n == 3 {
			return &wire.Vote{Error: "/etc/n3.toml:7: totem.token: must be at least 10 ms, got 1"}
		}
		return okVote()
	}
	id := c.start(1)
	c.run()
	c.same("abort 1.1")
	o := c.done[id]
	if o == nil || !errors.Is(o.Err, ErrRefused) || !strings.Contains(o.Err.Error(), "node 3") || !strings.Contains(o.Err.Error(), "/etc/n3.toml:7") {
		t.Fatalf("outcome %+v", o)
	}
	if len(o.Refusals) != 1 || o.Refusals[0].Node != 3 {
		t.Fatalf("refusals %+v", o.Refusals)
	}
}

// TestDigestMismatch: members whose cluster-wide parts differ abort at
// the last vote, and the answer says which part of which node.
func TestDigestMismatch(t *testing.T) {
	c := newCluster(t, 1, 2, 3)
	c.vote = func(n totem.NodeID, _ ID) *wire.Vote {
		v := okVote()
		if n == 2 {
			v.Digests[wire.SectionQuorum][0] = 1
		}
		return v
	}
	id := c.start(1)
	c.run()
	c.same("abort 1.1")
	if o := c.done[id]; o == nil || !errors.Is(o.Err, ErrMismatch) || !strings.Contains(o.Err.Error(), "node 2's [quorum] differs from node 1's") {
		t.Fatalf("outcome %+v", o)
	}
}

// TestMembershipChangeAborts: a configuration change between the Prepare
// and the last vote aborts on every member, and votes delivered after it
// change nothing.
func TestMembershipChangeAborts(t *testing.T) {
	for _, kind := range []totem.ConfKind{totem.Transitional, totem.Regular} {
		c := newCluster(t, 1, 2, 3)
		hold := true
		c.vote = func(n totem.NodeID, _ ID) *wire.Vote {
			if n == 3 && hold {
				return nil // answers late, below
			}
			return okVote()
		}
		id := c.start(1)
		c.run()
		c.same()
		for _, n := range c.ids {
			c.ms[n].ConfChange(totem.ConfChange{Kind: kind, Ring: totem.RingID{Rep: 1, Seq: 12}, Members: []totem.NodeID{1, 2, 3}})
		}
		c.ms[3].Vote(id, *okVote()) // too late: dropped
		c.run()
		c.same("abort 1.1")
		if o := c.done[id]; o == nil || !errors.Is(o.Err, ErrMembership) {
			t.Fatalf("%v: outcome %+v", kind, o)
		}
	}
}

// TestTimeoutAborts: a member that never votes makes the others' timers
// multicast an abort, which ends the transaction everywhere.
func TestTimeoutAborts(t *testing.T) {
	c := newCluster(t, 1, 2, 3)
	c.vote = func(n totem.NodeID, _ ID) *wire.Vote {
		if n == 3 {
			return nil
		}
		return okVote()
	}
	id := c.start(1)
	c.run()
	if d := c.ms[1].Deadline(); d != time.Second {
		t.Fatalf("deadline %v", d)
	}
	c.tick(999 * time.Millisecond)
	c.same()
	c.tick(time.Millisecond)
	c.same("abort 1.1")
	if o := c.done[id]; o == nil || !errors.Is(o.Err, ErrTimeout) {
		t.Fatalf("outcome %+v", o)
	}
	if c.ms[2].Deadline() != 0 {
		t.Fatal("timer still armed")
	}
}

// TestLastVoteBeforeAbortCommits: an abort delivered after the last vote
// is ignored: the commit point came first in the order.
func TestLastVoteBeforeAbortCommits(t *testing.T) {
	c := newCluster(t, 1, 2)
	id := c.start(1)
	c.collect()
	// Deliver the Prepare, let both vote, then an abort from node 2
	// lands behind the votes.
	c.run()
	c.ms[2].Deliver(c.now, 2, wire.MsgAbort, wire.EncodeAbort(wire.Abort{Initiator: id.Initiator, Seq: id.Seq, Reason: wire.AbortTimeout}))
	c.same("commit 1.1")
}

// TestConcurrentReloads: two nodes ask at once; the Prepare delivered
// first wins everywhere, the other is refused as busy, only its
// initiator reports it, and the winner commits.
func TestConcurrentReloads(t *testing.T) {
	c := newCluster(t, 1, 2, 3)
	b := c.start(3)
	a := c.start(1)
	c.collect() // both Prepares queued, node 1's first
	c.run()
	c.same("commit 1.1")
	if o := c.done[b]; o == nil || !errors.Is(o.Err, ErrBusy) || !strings.Contains(o.Err.Error(), "1.1") {
		t.Fatalf("loser: %+v", o)
	}
	if o := c.done[a]; o == nil || o.Err != nil {
		t.Fatalf("winner: %+v", o)
	}
}

// TestPrepareInOtherRingOrSyncing: a Prepare delivered in another ring
// than it was asked in, or before the sync, is refused alike everywhere.
func TestPrepareInOtherRingOrSyncing(t *testing.T) {
	c := newCluster(t, 1, 2)
	id := c.start(1)
	next := totem.ConfChange{Kind: totem.Regular, Ring: totem.RingID{Rep: 1, Seq: 12}, Members: []totem.NodeID{1, 2}}
	for _, n := range c.ids {
		c.ms[n].ConfChange(next)
		c.ms[n].SyncDone()
	}
	c.run()
	c.same()
	if o := c.done[id]; o == nil || !errors.Is(o.Err, ErrMembership) {
		t.Fatalf("other ring: %+v", o)
	}
	next.Ring.Seq = 16
	for _, n := range c.ids {
		c.ms[n].ConfChange(next)
	}
	id = c.start(2)
	c.run()
	c.same()
	if o := c.done[id]; o == nil || !errors.Is(o.Err, ErrSyncing) {
		t.Fatalf("syncing: %+v", o)
	}
}

// TestPrepareNeverDelivered: the operator is answered even if the ring
// never delivers the Prepare.
func TestPrepareNeverDelivered(t *testing.T) {
	m := New(1)
	m.ConfChange(totem.ConfChange{Kind: totem.Regular, Ring: totem.RingID{Rep: 1, Seq: 4}, Members: []totem.NodeID{1}})
	id, err := m.Start(0, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	m.Ready()
	m.Tick(2 * time.Second)
	acts := m.Ready()
	if len(acts) != 1 || acts[0].Kind != ActDone || acts[0].ID != id || !errors.Is(acts[0].Outcome.Err, ErrTimeout) {
		t.Fatalf("actions %+v", acts)
	}
}

func TestStartRefusals(t *testing.T) {
	m := New(1)
	if _, err := m.Start(0, time.Second); !errors.Is(err, ErrNoRing) {
		t.Errorf("no ring: %v", err)
	}
	m.ConfChange(totem.ConfChange{Kind: totem.Regular, Ring: totem.RingID{Rep: 1, Seq: 4}, Members: []totem.NodeID{1}})
	for _, d := range []time.Duration{0, wire.MaxTimeout + time.Millisecond} {
		if _, err := m.Start(0, d); !errors.Is(err, ErrInvalid) {
			t.Errorf("timeout %v: %v", d, err)
		}
	}
}

// TestVotesFromOutsidersIgnored: a vote from a node outside the
// transaction's members, or for another transaction, counts for nothing.
func TestVotesFromOutsidersIgnored(t *testing.T) {
	c := newCluster(t, 1, 2)
	c.vote = func(n totem.NodeID, _ ID) *wire.Vote {
		if n == 2 {
			return nil
		}
		return okVote()
	}
	id := c.start(1)
	c.run()
	for _, v := range []struct {
		from totem.NodeID
		seq  uint64
	}{{9, id.Seq}, {2, id.Seq + 1}} {
		p := wire.EncodeVote(wire.Vote{Initiator: id.Initiator, Seq: v.seq, OK: true})
		for _, n := range c.ids {
			if err := c.ms[n].Deliver(c.now, v.from, wire.MsgVote, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.run()
	c.same()
	if err := c.ms[1].Deliver(0, 2, 99, nil); err == nil {
		t.Error("unknown message accepted")
	}
}

// FuzzDeliver: arbitrary messages from arbitrary senders, in any state,
// never panic a machine, and a machine never commits a transaction some
// member did not vote for.
func FuzzDeliver(f *testing.F) {
	f.Add(uint16(wire.MsgPrepare), uint32(1), wire.EncodePrepare(wire.Prepare{Seq: 1, Ring: totem.RingID{Rep: 1, Seq: 8}, Timeout: time.Second}))
	f.Add(uint16(wire.MsgVote), uint32(2), wire.EncodeVote(wire.Vote{Initiator: 1, Seq: 1, OK: true}))
	f.Add(uint16(wire.MsgAbort), uint32(3), wire.EncodeAbort(wire.Abort{Initiator: 1, Seq: 1, Reason: wire.AbortTimeout}))
	f.Fuzz(func(t *testing.T, msg uint16, from uint32, payload []byte) {
		m := New(1)
		m.ConfChange(totem.ConfChange{Kind: totem.Regular, Ring: totem.RingID{Rep: 1, Seq: 8}, Members: []totem.NodeID{1, 2, 3}})
		m.SyncDone()
		// A transaction in progress, so votes and aborts have a target.
		_ = m.Deliver(0, 1, wire.MsgPrepare, wire.EncodePrepare(wire.Prepare{Seq: 1, Ring: totem.RingID{Rep: 1, Seq: 8}, Timeout: time.Second}))
		_ = m.Deliver(0, totem.NodeID(from), msg, payload)
		m.Tick(time.Hour)
		for _, a := range m.Ready() {
			if a.Kind == ActCommit {
				t.Fatalf("committed %v from one message: %+v", a.ID, a.Outcome)
			}
		}
	})
}
