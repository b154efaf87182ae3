package reconfig

import (
	"errors"
	"testing"
	"time"

	"ringmaster/reconfig/wire"
	"ringmaster/totem"
)

// TestStartBounded: a client that asks again and again, without waiting for
// its answers, neither grows the machine's state nor floods the ring with
// Prepares: while a transaction runs the answer is ErrBusy at once, and
// at most MaxPending requests wait for their Prepare's delivery.
func TestStartBounded(t *testing.T) {
	m := New(1)
	m.ConfChange(totem.ConfChange{Kind: totem.Regular, Ring: totem.RingID{Rep: 1, Seq: 4}, Members: []totem.NodeID{1, 2}})
	m.SyncDone()
	sent := 0
	var busy int
	for range 10_000 {
		_, err := m.Start(0, time.Second)
		switch {
		case err == nil:
		case errors.Is(err, ErrBusy):
			busy++
		default:
			t.Fatal(err)
		}
		for _, a := range m.Ready() {
			if a.Kind == ActSend {
				sent++
			}
		}
	}
	if sent != MaxPending || len(m.pending) != MaxPending || busy != 10_000-MaxPending {
		t.Fatalf("%d Prepares sent, %d pending, %d busy (want %d, %d, the rest)", sent, len(m.pending), busy, MaxPending, MaxPending)
	}
	// The first Prepare opens a transaction (the node votes later): a
	// request now is busy without a message, even once the other
	// Prepares came back refused.
	first := ID{Initiator: 1, Seq: 1}
	deliver := func(from totem.NodeID, msg uint16, p []byte) {
		t.Helper()
		if err := m.Deliver(0, from, msg, p); err != nil {
			t.Fatal(err)
		}
	}
	for seq := uint64(1); seq <= MaxPending; seq++ {
		deliver(1, wire.MsgPrepare, wire.EncodePrepare(wire.Prepare{Seq: seq, Ring: m.ring, Timeout: time.Second}))
	}
	if id, ok := m.Busy(); !ok || id != first || len(m.pending) != 0 {
		t.Fatalf("busy %v %v, pending %d", id, ok, len(m.pending))
	}
	m.Ready()
	if _, err := m.Start(0, time.Second); !errors.Is(err, ErrBusy) {
		t.Fatalf("Start during a transaction: %v", err)
	}
	if acts := m.Ready(); len(acts) != 0 {
		t.Fatalf("Start during a transaction sent %+v", acts)
	}
}
