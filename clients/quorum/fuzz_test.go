package quorum

import (
	"testing"

	"ringmaster/ipc"
	"ringmaster/totem"
	"ringmaster/votequorum/wire"
)

// FuzzDecodeEvent: status events from ringd, however malformed, decode or
// are dropped; the decoder never panics (issue 11, item 9).
func FuzzDecodeEvent(f *testing.F) {
	f.Add(wire.EventStatus, wire.EncodePayload(Status{NodeID: 1, Ring: totem.RingID{Rep: 1, Seq: 4}, Quorate: true, ExpectedVotes: 3,
		TotalVotes: 3, Quorum: 2, Flags: []string{"Quorate"}, Members: []wire.Member{{NodeID: 1}}}))
	f.Add(wire.EventStatus, []byte{1, '{'})
	f.Add(uint16(2), []byte{})
	f.Fuzz(func(t *testing.T, msg uint16, payload []byte) {
		_, ok := decodeEvent(ipc.Event{Service: service, Msg: msg, Payload: payload})
		if ok && msg != wire.EventStatus {
			t.Fatalf("message %d decoded as a status event", msg)
		}
	})
}
