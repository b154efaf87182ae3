package cpg_test

import (
	"testing"

	"ringmaster/cpg"
	"ringmaster/cpg/wire"
	"ringmaster/totem"
	"ringmaster/totem/exec"
	"ringmaster/totem/exec/exectest"
)

// FuzzDeliver feeds arbitrary ring messages of the cpg service to a node
// with members in a group: the service must reject bad ones (never panic)
// and keep its lists consistent.
func FuzzDeliver(f *testing.F) {
	f.Add(uint16(wire.MsgProcJoin), uint8(2), wire.AppendProcMsg(nil, wire.ProcMsg{Reason: wire.ReasonJoin, Name: "g", PID: 1}))
	f.Add(uint16(wire.MsgProcLeave), uint8(1), wire.AppendProcMsg(nil, wire.ProcMsg{Reason: wire.ReasonLeave, Name: "g", PID: 7}))
	f.Add(uint16(wire.MsgJoinList), uint8(2), wire.AppendJoinList(nil, wire.JoinList{Ring: totem.RingID{Rep: 1, Seq: 4}, Entries: []wire.JoinEntry{{Name: "g", PID: 3}}}))
	f.Add(uint16(wire.MsgMcast), uint8(2), wire.AppendRecord(nil, totem.Agreed, 2, 9, []byte("g"), []byte("x")))
	f.Add(uint16(99), uint8(1), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, id uint16, sender uint8, payload []byte) {
		var svc *cpg.Service
		c, err := exectest.New(exectest.Options{Nodes: 2, Services: func(n totem.NodeID) []exec.Service {
			s := cpg.New()
			if n == 1 {
				svc = s
			}
			return []exec.Service{s}
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Drain(1000)
		n := c.Node(1)
		n.Exec.Deliver(totem.Message{Sender: 2, Service: uint16(exec.ServiceCPG), ID: wire.MsgProcJoin, Payload: wire.AppendProcMsg(nil, wire.ProcMsg{Reason: wire.ReasonJoin, Name: "g", PID: 7})})
		n.Exec.Deliver(totem.Message{Sender: totem.NodeID(sender%3 + 1), Service: uint16(exec.ServiceCPG), ID: id, Payload: payload})
		n.Exec.Do(func() {
			for _, g := range svc.Groups() {
				for i := 1; i < len(g.Members); i++ {
					a, b := g.Members[i-1], g.Members[i]
					if a.NodeID > b.NodeID || a.NodeID == b.NodeID && a.PID >= b.PID {
						t.Fatalf("group %q members out of order or duplicated: %v", g.Name, g.Members)
					}
				}
			}
		})
	})
}
