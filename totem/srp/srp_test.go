package srp_test

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"ringmaster/totem"
	"ringmaster/totem/sim"
	"ringmaster/totem/srp"
	"ringmaster/totem/wire"
)

func newProc(t testing.TB, id totem.NodeID, seq uint64) *srp.Processor {
	t.Helper()
	return srp.New(srp.Config{Node: id, Timings: srp.DefaultTimings(300 * time.Millisecond), InitialSeq: seq,
		Rand: rand.New(rand.NewPCG(1, 2)), MaxQueue: 4, MaxPayload: 100}, 0)
}

// TestNewFormsOneNodeRing: a new processor announces itself (join,
// merge-detect), forms its own ring above its persisted sequence and asks
// the driver to persist that.
func TestNewFormsOneNodeRing(t *testing.T) {
	p := newProc(t, 7, 100)
	rd := p.Ready()
	if rd.PersistSeq != 104+srp.SeqReserve {
		t.Errorf("PersistSeq %d, want %d (ring 104 + the reserve)", rd.PersistSeq, 104+srp.SeqReserve)
	}
	var types []wire.Type
	for _, d := range rd.Datagrams {
		if d.To != 0 {
			t.Errorf("datagram for %d, want broadcast", d.To)
		}
		types = append(types, wire.Type(d.Data[1]))
	}
	if len(types) != 2 || types[0] != wire.TypeJoin || types[1] != wire.TypeMergeDetect {
		t.Errorf("datagrams %v, want join then merge-detect", types)
	}
	if len(rd.Events) != 1 || rd.Events[0].Kind != srp.EventConfChange || rd.Events[0].Conf.Kind != totem.Regular ||
		rd.Events[0].Conf.Ring != (totem.RingID{Rep: 7, Seq: 104}) {
		t.Errorf("events %+v", rd.Events)
	}
	if rd.Deadline == 0 {
		t.Error("no deadline: the merge-detect timer must run")
	}
	st := p.Status()
	if st.State != totem.StateOperational || len(st.Members) != 1 || st.Members[0] != 7 {
		t.Errorf("status %+v", st)
	}
	if p.HasReady() {
		t.Error("HasReady after Ready with nothing new")
	}
}

// TestAloneDelivers: a one-node ring delivers at once, agreed and safe,
// and the payload handed to Send can be reused by the caller.
func TestAloneDelivers(t *testing.T) {
	p := newProc(t, 1, 0)
	p.Ready()
	buf := []byte("hello")
	if err := p.Send(buf, totem.Safe); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXX")
	rd := p.Ready()
	if len(rd.Events) != 1 || string(rd.Events[0].Payload) != "hello" || rd.Events[0].Guarantee != totem.Safe || rd.Events[0].Sender != 1 {
		t.Fatalf("events %+v", rd.Events)
	}
}

func TestSendErrors(t *testing.T) {
	p := newProc(t, 1, 0)
	if err := p.Send(make([]byte, 101), totem.Agreed); !errors.Is(err, totem.ErrTooLarge) {
		t.Errorf("large payload: %v", err)
	}
	if err := p.Send(nil, 5); !errors.Is(err, srp.ErrGuarantee) {
		t.Errorf("guarantee 5: %v", err)
	}
	// Queue limit: a processor in gather queues until operational.
	q := newProc(t, 1, 0)
	for i := 0; i < 50; i++ {
		if err := q.Send([]byte{1}, totem.Agreed); err != nil {
			t.Fatalf("send %d alone: %v (a one-node ring delivers at once)", i, err)
		}
	}
	j := wire.AppendJoin(nil, 2, &wire.Join{MaxSeq: 0, Proc: []totem.NodeID{2}})
	if err := q.Step(time.Millisecond, j); err != nil {
		t.Fatal(err)
	}
	if q.Status().State != totem.StateGather {
		t.Fatalf("state %s after a join from a stranger", q.Status().State)
	}
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		err = q.Send([]byte{1}, totem.Agreed)
	}
	if !errors.Is(err, totem.ErrTryAgain) {
		t.Errorf("full queue: %v", err)
	}
	q.Leave(2 * time.Millisecond)
	if err := q.Send(nil, totem.Agreed); !errors.Is(err, srp.ErrLeft) {
		t.Errorf("after leave: %v", err)
	}
	rd := q.Ready()
	leaves := 0
	for _, d := range rd.Datagrams {
		if wire.Type(d.Data[1]) == wire.TypeLeave {
			leaves++
		}
	}
	if leaves == 0 || rd.Deadline != 0 {
		t.Errorf("leave: %d leave datagrams, deadline %v", leaves, rd.Deadline)
	}
}

// TestStepRejects: bad datagrams are counted and reported with the wire
// sentinel; the processor's own datagrams are ignored.
func TestStepRejects(t *testing.T) {
	p := newProc(t, 1, 0)
	before := p.Status()
	for _, tc := range []struct {
		data []byte
		want error
	}{
		{nil, wire.ErrTruncated},
		{[]byte{wire.Version + 1, 1, 0, 0, 0, 2}, wire.ErrVersion},
		{[]byte{wire.Version, 99, 0, 0, 0, 2}, wire.ErrType},
		{wire.AppendToken(nil, 2, &wire.Token{Ring: totem.RingID{Rep: 1}})[:20], wire.ErrTruncated},
	} {
		if err := p.Step(time.Millisecond, tc.data); !errors.Is(err, tc.want) {
			t.Errorf("%x: %v, want %v", tc.data, err, tc.want)
		}
	}
	if got := p.Counters().Malformed; got != 4 {
		t.Errorf("malformed counter %d", got)
	}
	// Our own join, looped back by multicast, changes nothing.
	own := wire.AppendJoin(nil, 1, &wire.Join{Proc: []totem.NodeID{1, 5}})
	if err := p.Step(2*time.Millisecond, own); err != nil {
		t.Fatal(err)
	}
	if st := p.Status(); st.State != before.State || st.Ring != before.Ring {
		t.Errorf("own datagram changed state: %+v", st)
	}
}

// FuzzStep feeds a processor arbitrary datagrams: it must never panic. The
// input is a sequence of length-prefixed datagrams, interleaved with time;
// the seeds are every datagram node 2 received while a 3-node ring formed,
// carried traffic and lost a member, so mutations start from real states.
func FuzzStep(f *testing.F) {
	f.Add(seedStream(f))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, stream []byte) {
		p := srp.New(srp.Config{Node: 2, Timings: srp.DefaultTimings(300 * time.Millisecond),
			Rand: rand.New(rand.NewPCG(1, 2))}, 0)
		now := time.Duration(0)
		for len(stream) >= 2 {
			n := int(binary.BigEndian.Uint16(stream))
			stream = stream[2:]
			if n > len(stream) {
				n = len(stream)
			}
			now += time.Millisecond
			_ = p.Step(now, stream[:n])
			stream = stream[n:]
			if n%7 == 0 {
				now += 100 * time.Millisecond
				p.Tick(now)
			}
			if n%5 == 0 {
				_ = p.Send([]byte("x"), totem.Guarantee(n%2))
			}
			p.Ready()
		}
		p.Tick(now + 10*time.Second)
		p.Ready()
	})
}

func seedStream(tb testing.TB) []byte {
	var stream []byte
	c := sim.New(sim.Config{Nodes: []totem.NodeID{1, 2, 3}, Seed: 3, Timings: srp.DefaultTimings(300 * time.Millisecond),
		Net: sim.Net{Latency: 100 * time.Microsecond, Jitter: 300 * time.Microsecond, Loss: 0.05}})
	c.Observe = func(to totem.NodeID, data []byte) {
		if to == 2 && len(stream) < 8000 {
			stream = binary.BigEndian.AppendUint16(stream, uint16(len(data)))
			stream = append(stream, data...)
		}
	}
	c.RunFor(100 * time.Millisecond)
	for i := 0; i < 30; i++ {
		c.Send(totem.NodeID(1+i%3), totem.Guarantee(i%2))
		c.RunFor(time.Millisecond)
	}
	c.Crash(3)
	c.RunFor(time.Second)
	if err := c.Err(); err != nil {
		tb.Fatal(err)
	}
	return stream
}

// TestStatusBacklog: Status shows the frames waiting for the token and the
// ring-wide backlog the token carried, and both drain to zero.
func TestStatusBacklog(t *testing.T) {
	c := sim.New(sim.Config{Nodes: []totem.NodeID{1, 2, 3}, Seed: 5, Timings: srp.DefaultTimings(300 * time.Millisecond),
		Net: sim.Net{Latency: 100 * time.Microsecond, FIFO: true}, MaxQueue: 1000})
	c.RunFor(200 * time.Millisecond)
	if !c.Converged() {
		t.Fatal("no ring")
	}
	const n = 400 // several windows (window_size 50)
	for range n {
		if c.Send(1, totem.Agreed) == 0 {
			t.Fatal("try again")
		}
	}
	// A node holding the (idle) token may send some at once.
	if got := c.Node(1).P.Status().Backlog.Frames; got < n-50 || got > n {
		t.Fatalf("frames queued %d, want about %d", got, n)
	}
	var ring uint64
	for range 2000 {
		c.RunFor(100 * time.Microsecond)
		for _, id := range []totem.NodeID{2, 3} {
			ring = max(ring, c.Node(id).P.Status().Backlog.Ring)
		}
	}
	if ring == 0 {
		t.Error("the other nodes never saw node 1's backlog on the token")
	}
	for _, nd := range c.Nodes {
		if b := nd.P.Status().Backlog; b != (totem.Backlog{}) {
			t.Errorf("n%d backlog %+v after draining", nd.ID, b)
		}
	}
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
}
