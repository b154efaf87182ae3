package srp_test

import (
	"errors"
	"testing"

	"ringmaster/totem"
	"ringmaster/totem/wire"
)

// TestRingSeqJumpRejected: a join (or merge-detect, leave) whose ring
// sequence numbers lie more than 2^32 above the highest one a processor
// knows is dropped as out of range before the protocol acts on it: no
// gather, nothing persisted. One forged join with MaxSeq near 2^64 used to
// overflow the next ring's seq on every node, and the result was persisted.
func TestRingSeqJumpRejected(t *testing.T) {
	p := newProc(t, 1, 100)
	p.Ready()
	ring := p.Status().Ring
	for name, d := range map[string][]byte{
		"join max_seq":  wire.AppendJoin(nil, 2, &wire.Join{Ring: totem.RingID{Rep: 2, Seq: 8}, MaxSeq: 104 + 1<<32 + 1, Proc: []totem.NodeID{2}}),
		"join ring":     wire.AppendJoin(nil, 2, &wire.Join{Ring: totem.RingID{Rep: 2, Seq: 1 << 40}, MaxSeq: 8, Proc: []totem.NodeID{2}}),
		"merge-detect":  wire.AppendMergeDetect(nil, 2, &wire.MergeDetect{Ring: totem.RingID{Rep: 2, Seq: 8}, MaxSeq: wire.MaxRingSeq}),
		"leave":         wire.AppendLeave(nil, 2, &wire.Leave{Ring: ring, MaxSeq: 1 << 47}),
		"wire max join": wire.AppendJoin(nil, 2, &wire.Join{Ring: totem.RingID{Rep: 2, Seq: 8}, MaxSeq: ^uint64(0), Proc: []totem.NodeID{2}}),
	} {
		if err := p.Step(1, d); !errors.Is(err, wire.ErrRange) {
			t.Errorf("%s: want ErrRange, got %v", name, err)
		}
		if rd := p.Ready(); rd.PersistSeq != 0 || len(rd.Datagrams) != 0 || len(rd.Events) != 0 {
			t.Errorf("%s: acted on it: %+v", name, rd)
		}
	}
	st := p.Status()
	if st.Ring != ring || st.State != totem.StateOperational || st.Counters.OutOfRange != 5 || st.Counters.Malformed != 0 {
		t.Fatalf("status %+v", st)
	}
	// Within the lead, a join is acted upon (the node gathers).
	if err := p.Step(2, wire.AppendJoin(nil, 2, &wire.Join{Ring: totem.RingID{Rep: 2, Seq: 8}, MaxSeq: 104 + 1<<32, Proc: []totem.NodeID{2}})); err != nil {
		t.Fatal(err)
	}
	if st := p.Status(); st.State != totem.StateGather {
		t.Fatalf("join within the lead not acted upon: %+v", st)
	}
}
