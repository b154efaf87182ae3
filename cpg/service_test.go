package cpg_test

import (
	"fmt"
	"strings"
	"testing"

	"ringmaster/cpg"
	"ringmaster/cpg/wire"
	"ringmaster/ipc"
	"ringmaster/totem"
	"ringmaster/totem/exec"
	"ringmaster/totem/exec/exectest"
)

// TestServiceWithFakeClients drives the cpg service through exec.Client
// fakes on a stepped in-memory cluster: no socket, no goroutine of the
// test's own, no wait. Two processes join a group, one multicasts, one
// disconnects; each sees the replies and events corosync's cpg gives.
func TestServiceWithFakeClients(t *testing.T) {
	svcs := map[totem.NodeID]*cpg.Service{}
	c, err := exectest.New(exectest.Options{Nodes: 2, Seed: 1, Services: func(id totem.NodeID) []exec.Service {
		svcs[id] = cpg.New()
		return []exec.Service{svcs[id]}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Drain(1000)
	if !c.Synced() {
		t.Fatal("not synced after draining")
	}
	a := &exectest.Client{ID: 1, Cred: ipc.Cred{PID: 100}}
	b := &exectest.Client{ID: 2, Cred: ipc.Cred{PID: 200}}
	req := func(node totem.NodeID, cl *exectest.Client, msg uint16, p []byte) {
		c.Node(node).Exec.Do(func() {
			svcs[node].Request(cl, ipc.Header{Kind: ipc.KindRequest, Service: uint16(exec.ServiceCPG), Msg: msg, ReqID: 9}, p)
		})
		c.Drain(1000)
	}
	check := func(cl *exectest.Client, want ...string) {
		t.Helper()
		var got []string
		for _, o := range cl.Take() {
			got = append(got, describe(t, o))
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("client %d got:\n%s\nwant:\n%s", cl.ID, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}

	req(1, a, wire.ReqJoin, wire.AppendJoinReq(nil, wire.JoinReq{Name: "g"}))
	check(a, "reply #9", "confchg g members=[1/100] left=[] joined=[1/100:join]", "totemconf ring=1.4 members=[1 2]")

	req(2, b, wire.ReqJoin, wire.AppendJoinReq(nil, wire.JoinReq{Name: "g"}))
	check(b, "reply #9", "confchg g members=[1/100 2/200] left=[] joined=[2/200:join]", "totemconf ring=1.4 members=[1 2]")
	check(a, "confchg g members=[1/100 2/200] left=[] joined=[2/200:join]")

	req(1, a, wire.ReqMcast, wire.AppendRecord(nil, totem.Agreed, 0, 0, []byte("g"), []byte("hello")))
	check(a, "reply! #9", "deliver g from 1/100: hello")
	check(b, "deliver g from 1/100: hello")

	// A connection that vanishes leaves with PROCDOWN.
	c.Node(1).Exec.Do(func() { svcs[1].Disconnected(a) })
	c.Drain(1000)
	check(b, "confchg g members=[2/200] left=[1/100:procdown] joined=[]")
	check(a)

	// A congested connection is told to try again rather than make more
	// output.
	b.SetCongested(true)
	req(2, b, wire.ReqMcast, wire.AppendRecord(nil, totem.Agreed, 0, 0, []byte("g"), []byte("x")))
	if out := b.Take(); len(out) != 1 || ipc.ToError(out[0].Err).Code != ipc.CodeTryAgain {
		t.Errorf("congested mcast: %v, want one TRY_AGAIN", out)
	}
}

// describe renders what a fake client received.
func describe(t *testing.T, o exectest.Output) string {
	t.Helper()
	switch o.Header.Kind {
	case ipc.KindReply:
		u := ""
		if o.Urgent {
			u = "!"
		}
		return fmt.Sprintf("reply%s #%d", u, o.Header.ReqID)
	case ipc.KindError:
		return fmt.Sprintf("error #%d %v", o.Header.ReqID, o.Err)
	}
	switch o.Header.Msg {
	case wire.EvConfChg:
		cc, err := wire.ParseConfChg(o.Payload)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("confchg %s members=%s left=%s joined=%s", cc.Name, addrs(cc.Members), addrs(cc.Left), addrs(cc.Joined))
	case wire.EvTotemConf:
		tc, err := wire.ParseTotemConf(o.Payload)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("totemconf ring=%v members=%v", tc.Ring, tc.Members)
	case wire.EvDeliver:
		r, err := wire.ParseRecord(o.Payload)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("deliver %s from %d/%d: %s", r.Name, r.NodeID, r.PID, r.Data)
	}
	return o.String()
}

func addrs(as []wire.Address) string {
	var s []string
	for _, a := range as {
		x := fmt.Sprintf("%d/%d", a.NodeID, a.PID)
		if a.Reason != 0 {
			x += ":" + a.Reason.String()
		}
		s = append(s, x)
	}
	return "[" + strings.Join(s, " ") + "]"
}
