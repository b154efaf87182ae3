package exec

import (
	"slices"
	"testing"

	"ringmaster/totem"
)

// FuzzSyncBarrier feeds arbitrary executive messages (service 0) from
// members and strangers to an executive in sync: the barrier decoder
// rejects bad payloads, never panics, and sync completes only once every
// member's barrier for the current ring was delivered (issue 11, item 9).
func FuzzSyncBarrier(f *testing.F) {
	ring := totem.RingID{Rep: 1, Seq: 8}
	f.Add(msgSyncBarrier, uint8(2), appendBarrier(nil, ring))
	f.Add(msgSyncBarrier, uint8(3), appendBarrier(nil, totem.RingID{Rep: 1, Seq: 7}))
	f.Add(msgSyncBarrier, uint8(9), appendBarrier(nil, ring))
	f.Add(msgSyncBarrier, uint8(2), appendBarrier(nil, ring)[:11])
	f.Add(uint16(2), uint8(2), []byte{1})
	f.Fuzz(func(t *testing.T, id uint16, sender uint8, payload []byte) {
		r, err := decodeBarrier(payload)
		if err == nil {
			if len(payload) != barrierSize || !slices.Equal(appendBarrier(nil, r), payload) {
				t.Fatalf("barrier %x decoded to %v, which does not re-encode to it", payload, r)
			}
		}
		lb := NewLoopback(1, 64)
		e := New(1, lb, nil)
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
		conf := totem.ConfChange{Kind: totem.Regular, Ring: ring, Members: []totem.NodeID{1, 2, 3}}
		e.ConfChange(conf)
		e.Deliver(totem.Message{Sender: 1, Service: uint16(ServiceExec), ID: msgSyncBarrier, Payload: appendBarrier(nil, ring)})
		e.Deliver(totem.Message{Sender: 3, Service: uint16(ServiceExec), ID: msgSyncBarrier, Payload: appendBarrier(nil, ring)})
		m := totem.Message{Sender: totem.NodeID(sender), Service: uint16(ServiceExec), ID: id, Payload: payload}
		e.Deliver(m)
		valid := id == msgSyncBarrier && err == nil && r == ring && m.Sender == 2
		if e.Synced() != valid {
			t.Fatalf("after %+v from %d: synced=%v, want %v", id, sender, e.Synced(), valid)
		}
	})
}
