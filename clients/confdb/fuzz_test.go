package confdb

import (
	"testing"

	"ringmaster/confdb/wire"
	"ringmaster/ipc"
)

// FuzzDecodeEvent: track events from ringd, however malformed, decode or
// are dropped; the decoder never panics (issue 11, item 9).
func FuzzDecodeEvent(f *testing.F) {
	nv, ov := wire.U32(2), wire.String("old")
	f.Add(wire.EventTrack, wire.EncodePayload(wire.TrackEvent{TrackID: 3, Event: "modify", Key: "a.b", New: &nv, Old: &ov}))
	f.Add(wire.EventTrack, wire.EncodePayload(wire.TrackEvent{TrackID: 1, Event: "delete", Key: "a.b", Old: &ov}))
	f.Add(wire.EventTrack, []byte{1, '{', '}'})
	f.Add(uint16(7), []byte{})
	f.Fuzz(func(t *testing.T, msg uint16, payload []byte) {
		_, _, ok := decodeEvent(ipc.Event{Service: service, Msg: msg, Payload: payload})
		if ok && msg != wire.EventTrack {
			t.Fatalf("message %d decoded as a track event", msg)
		}
	})
}
