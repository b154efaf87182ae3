package cpg

import (
	"testing"

	"ringmaster/cpg/wire"
	"ringmaster/ipc"
	"ringmaster/totem"
)

// FuzzDecodeEvent: events from ringd, however malformed, decode or are
// dropped; the decoder never panics (issue 11, item 9).
func FuzzDecodeEvent(f *testing.F) {
	f.Add(wire.EvDeliver, wire.AppendRecord(nil, totem.Agreed, 2, 7, []byte("g"), []byte("hello")))
	f.Add(wire.EvConfChg, wire.AppendConfChg(nil, wire.ConfChg{Name: "g", Members: []wire.Address{{NodeID: 1, PID: 7}},
		Joined: []wire.Address{{NodeID: 1, PID: 7, Reason: wire.ReasonJoin}}}))
	f.Add(wire.EvTotemConf, wire.AppendTotemConf(nil, wire.TotemConf{Ring: totem.RingID{Rep: 1, Seq: 4}, Members: []totem.NodeID{1, 2}}))
	f.Add(uint16(99), []byte{1})
	f.Fuzz(func(t *testing.T, msg uint16, payload []byte) {
		name := "g"
		e, ok := decodeEvent(ipc.Event{Service: service, Msg: msg, Payload: payload}, &name)
		if ok && e.Kind == EventMessage && e.Group != name {
			t.Fatalf("delivery for %q but the name cache says %q", e.Group, name)
		}
	})
}
