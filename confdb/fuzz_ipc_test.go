package confdb_test

import (
	"net/netip"
	"testing"

	"ringmaster/confdb"
	"ringmaster/confdb/wire"
	"ringmaster/totem"
	"ringmaster/totem/exec"
	"ringmaster/totem/exec/exectest"
)

// FuzzRequest: arbitrary confdb requests from a local client get a reply
// or an error reply, never a panic (issue 11, item 9).
func FuzzRequest(f *testing.F) {
	addrs := map[totem.NodeID]netip.Addr{1: netip.MustParseAddr("127.0.0.1"), 2: netip.MustParseAddr("127.0.0.2")}
	exectest.FuzzRequests(f, exectest.Options{Nodes: 2, Services: func(totem.NodeID) []exec.Service {
		return []exec.Service{confdb.New(confdb.Config{Addrs: addrs, Entries: []wire.Entry{{Key: "totem.token", Value: wire.U32(1000)}}})}
	}},
		uint16(exec.ServiceConfdb),
		exectest.Request{Msg: wire.MsgGet, Payload: wire.EncodePayload(wire.KeyRequest{Key: "totem.token"})},
		exectest.Request{Msg: wire.MsgSet, Payload: wire.EncodePayload(wire.Entry{Key: "a.b", Value: wire.String("x")})},
		exectest.Request{Msg: wire.MsgDelete, Payload: wire.EncodePayload(wire.KeyRequest{Key: "a.b"})},
		exectest.Request{Msg: wire.MsgList, Payload: wire.EncodePayload(wire.ListRequest{Prefix: "totem."})},
		exectest.Request{Msg: wire.MsgTrack, Payload: wire.EncodePayload(wire.TrackRequest{Key: "a.", Prefix: true})},
		exectest.Request{Msg: wire.MsgUntrack, Payload: wire.EncodePayload(wire.UntrackRequest{TrackID: 1})},
	)
}
