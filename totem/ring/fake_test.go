package ring

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"ringmaster/totem"
	"ringmaster/totem/crypto"
	"ringmaster/totem/srp"
	"ringmaster/totem/transport"
)

// loopProc is a one-node "processor": every payload sent is delivered back
// at once, after a first regular configuration; its first Ready asks for a
// sequence number to be persisted and broadcasts a datagram.
type loopProc struct {
	node  totem.NodeID
	out   srp.Ready
	ready bool
	max   int
	queue int
}

func newLoopProc(c srp.Config, _ time.Duration) processor {
	p := &loopProc{node: c.Node, max: 16, ready: true}
	p.out.PersistSeq = c.InitialSeq + 4
	p.out.Datagrams = []srp.Datagram{{To: 0, Data: []byte("hello")}}
	conf := totem.ConfChange{Kind: totem.Regular, Ring: totem.RingID{Rep: c.Node, Seq: c.InitialSeq + 4}, Members: []totem.NodeID{c.Node}, Joined: []totem.NodeID{c.Node}}
	p.out.Events = []srp.Event{{Kind: srp.EventConfChange, Conf: conf}}
	return p
}

func (p *loopProc) Step(time.Duration, []byte) error { return nil }
func (p *loopProc) Tick(time.Duration)               {}
func (p *loopProc) Leave(time.Duration)              {}
func (p *loopProc) HasReady() bool                   { return p.ready }
func (p *loopProc) Counters() totem.Counters         { return totem.Counters{} }
func (p *loopProc) Status() totem.Status {
	return totem.Status{Node: p.node, State: totem.StateOperational, Members: []totem.NodeID{p.node}}
}

func (p *loopProc) Send(payload []byte, g totem.Guarantee) error {
	if p.queue >= p.max {
		return totem.ErrTryAgain
	}
	p.queue++
	p.out.Events = append(p.out.Events, srp.Event{Kind: srp.EventDeliver, Sender: p.node, Guarantee: g, Payload: bytes.Clone(payload)})
	p.ready = true
	return nil
}

func (p *loopProc) Ready() srp.Ready {
	r := p.out
	p.out, p.ready, p.queue = srp.Ready{}, false, 0
	return r
}

// TestDriverWithFake checks the driver's own duties with a fake processor:
// the sequence number is on disk before the first datagram leaves, Send
// is bounded and never blocks, and messages come back whole and in order
// through packing and fragmentation.
func TestDriverWithFake(t *testing.T) {
	mn := transport.NewMemNetwork(0)
	observer, err := mn.Attach(99)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := Config{Node: 1, ClusterName: "fake", Transport: "mem", MemNet: mn, NetMTU: 1500, Cipher: "none", StateDir: dir}
	rec := newRecorder()
	r, err := newRing(cfg, rec, zaptest.NewLogger(t), newLoopProc)
	if err != nil {
		t.Fatal(err)
	}

	// Before Run nothing drains the queue: it fills up and says so.
	if err := r.Send(1, 1, totem.Agreed, make([]byte, totem.MaxMessageSize+1)); !errors.Is(err, totem.ErrTooLarge) {
		t.Fatalf("oversize: %v", err)
	}
	want := 0
	for ; ; want++ {
		size := 100
		if want%1000 == 0 {
			size = totem.MaxMessageSize
		}
		err := r.Send(5, uint16(want), totem.Agreed, payloadFor(1, want, size))
		if errors.Is(err, totem.ErrTryAgain) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if want == 0 || want > maxQueueMsgs {
		t.Fatalf("queue took %d messages", want)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	// The first datagram: the sequence number must already be durable.
	env, _ := crypto.New(crypto.CipherNone, "fake", 99, 1, nil)
	msgs := []transport.Msg{{Buf: make([]byte, 2048)}}
	if _, err := observer.Recv(msgs); err != nil {
		t.Fatal(err)
	}
	pt, _, err := env.Open(nil, msgs[0].Buf[:msgs[0].N])
	if err != nil || string(pt) != "hello" {
		t.Fatalf("datagram %q, %v", pt, err)
	}
	if seq, err := loadSeq(seqFile(dir, 1)); err != nil || seq != 4 {
		t.Fatalf("persisted seq %d, %v; want 4 before the first datagram", seq, err)
	}

	rec.waitFor(t, 30*time.Second, "all messages", func() bool { return len(rec.msgs) >= want })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, m := range rec.msgs {
		size := 100
		if i%1000 == 0 {
			size = totem.MaxMessageSize
		}
		if m.ID != uint16(i) || m.Len != size {
			t.Fatalf("message %d: id %d len %d", i, m.ID, m.Len)
		}
	}
	if len(rec.confs) != 1 {
		t.Fatalf("confs %+v", rec.confs)
	}
	if st := r.Status(); st.Counters.MessagesOut != uint64(want) || st.Counters.MessagesIn != uint64(want) {
		t.Fatalf("counters %+v, want %d messages", st.Counters, want)
	}
}

// TestRunTwice: Run owns the processor; a second Run is refused.
func TestRunTwice(t *testing.T) {
	cfg := memConfigs(t, 1, "none")[0]
	r, err := newRing(cfg, newRecorder(), zaptest.NewLogger(t), newLoopProc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 2)
	go func() { done <- r.Run(ctx) }()
	go func() { done <- r.Run(ctx) }()
	// The second to start returns at once; the other runs until cancel.
	if err := <-done; !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("first Run: %v", err)
	}
}
