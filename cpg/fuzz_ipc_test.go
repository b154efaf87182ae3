package cpg_test

import (
	"testing"

	"ringmaster/cpg"
	"ringmaster/cpg/wire"
	"ringmaster/totem"
	"ringmaster/totem/exec"
	"ringmaster/totem/exec/exectest"
)

// FuzzRequest: arbitrary CPG requests from a local client get a reply or
// an error reply, never a panic (issue 11, item 9).
func FuzzRequest(f *testing.F) {
	exectest.FuzzRequests(f, exectest.Options{Nodes: 2, Services: func(totem.NodeID) []exec.Service { return []exec.Service{cpg.New()} }},
		uint16(exec.ServiceCPG),
		exectest.Request{Msg: wire.ReqJoin, Payload: wire.AppendJoinReq(nil, wire.JoinReq{Name: "g", PID: 7})},
		exectest.Request{Msg: wire.ReqMcast, Payload: wire.AppendRecord(nil, totem.Agreed, 0, 0, []byte("g"), []byte("x"))},
		exectest.Request{Msg: wire.ReqMcastBatch, Payload: wire.AppendBatchRecord(wire.AppendBatchRecord(wire.AppendBatchHeader(nil, 2), totem.Agreed, 0, 0, []byte("g"), []byte("x")), totem.Safe, 0, 0, []byte("g"), nil)},
		exectest.Request{Msg: wire.ReqMembers, Payload: wire.AppendName(nil, "g")},
		exectest.Request{Msg: wire.ReqLeave},
		exectest.Request{Msg: wire.ReqLocalNodeID},
		exectest.Request{Msg: wire.ReqGroups},
		exectest.Request{Msg: wire.ReqTotemConf},
	)
}
