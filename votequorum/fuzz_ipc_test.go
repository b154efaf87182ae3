package votequorum_test

import (
	"os"
	"testing"

	"ringmaster/totem"
	"ringmaster/totem/exec"
	"ringmaster/totem/exec/exectest"
	"ringmaster/votequorum"
	"ringmaster/votequorum/calc"
	"ringmaster/votequorum/wire"
)

// FuzzRequest: arbitrary votequorum requests from a local client get a
// reply or an error reply, never a panic (issue 11, item 9).
func FuzzRequest(f *testing.F) {
	dir, err := os.MkdirTemp("", "vqfuzz")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { os.RemoveAll(dir) })
	names := map[totem.NodeID]string{1: "n1", 2: "n2"}
	exectest.FuzzRequests(f, exectest.Options{Nodes: 2, Services: func(n totem.NodeID) []exec.Service {
		sd, err := os.MkdirTemp(dir, "n")
		if err != nil {
			panic(err)
		}
		return []exec.Service{votequorum.New(votequorum.Config{Options: calc.Options{Nodes: nodes(2)}, Local: n, Names: names, StateDir: sd})}
	}},
		uint16(exec.ServiceQuorum),
		exectest.Request{Msg: wire.MsgStatus},
		exectest.Request{Msg: wire.MsgSetExpected, Payload: wire.EncodePayload(wire.SetExpectedRequest{ExpectedVotes: 2})},
		exectest.Request{Msg: wire.MsgSetVotes, Payload: wire.EncodePayload(wire.SetVotesRequest{NodeID: 2, Votes: 1})},
		exectest.Request{Msg: wire.MsgCancelWaitForAll},
		exectest.Request{Msg: wire.MsgTrackStart},
		exectest.Request{Msg: wire.MsgTrackStop},
	)
}
