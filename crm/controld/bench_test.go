package controld

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"ringmaster/crm/cib"
	"ringmaster/totem"
)

// bigCluster builds a CIB of nNodes nodes running nRsc resources (a third
// in groups of three, every one with a recurring monitor), fencing on, all
// probed everywhere, as a cluster that has been running for a while looks.
func bigCluster(tb testing.TB, nRsc, nNodes int) *cib.CIB {
	tb.Helper()
	var b strings.Builder
	b.WriteString(`<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.7" admin_epoch="0" epoch="5" num_updates="0"><configuration><crm_config><cluster_property_set id="o"><nvpair id="o1" name="stonith-enabled" value="true"/></cluster_property_set></crm_config><nodes>`)
	for i := 1; i <= nNodes; i++ {
		fmt.Fprintf(&b, `<node id="%d" uname="node%d"/>`, i, i)
	}
	b.WriteString(`</nodes><resources><primitive id="fence" class="stonith" type="fence_dummy"/>`)
	var prims []string
	prim := func(id string) {
		prims = append(prims, id)
		fmt.Fprintf(&b, `<primitive id="%s" class="ocf" provider="heartbeat" type="Dummy"><instance_attributes id="%s-ia"><nvpair id="%s-ip" name="ip" value="10.0.%d.%d"/></instance_attributes><operations><op id="%s-mon" name="monitor" interval="10s"/></operations></primitive>`,
			id, id, id, len(prims)/250, len(prims)%250, id)
	}
	for i := 0; len(prims) < nRsc; i++ {
		if i%3 == 0 && len(prims)+3 <= nRsc {
			fmt.Fprintf(&b, `<group id="grp%d">`, i)
			for m := 0; m < 3; m++ {
				prim(fmt.Sprintf("grp%d-m%d", i, m))
			}
			b.WriteString(`</group>`)
			continue
		}
		prim(fmt.Sprintf("rsc%d", i))
	}
	b.WriteString(`</resources><constraints/><rsc_defaults><meta_attributes id="rd"><nvpair id="rd1" name="resource-stickiness" value="100"/></meta_attributes></rsc_defaults></configuration><status/></cib>`)
	c, err := cib.Parse(strings.NewReader(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	// Place the resources (groups together) round robin and record their
	// history as the controller would.
	c.Status = &cib.Status{}
	where := map[string]int{}
	n := 0
	for _, r := range c.Config.Resources {
		n++
		if r.IsGroup() {
			for _, m := range r.Children {
				where[m.ID] = n%nNodes + 1
			}
			continue
		}
		where[r.ID] = n%nNodes + 1
	}
	call := 0
	for i := 1; i <= nNodes; i++ {
		ns := c.Status.EnsureNode(fmt.Sprint(i), fmt.Sprintf("node%d", i))
		ns.SetMembership(true)
		all := append([]string{"fence"}, prims...)
		for _, id := range all {
			class, prov, typ := "ocf", "heartbeat", "Dummy"
			if id == "fence" {
				class, prov, typ = "stonith", "", "fence_dummy"
			}
			lr := ns.EnsureResource(id, class, typ, prov)
			call++
			if where[id] != i {
				recordOp(lr, &resultMsg{Task: "monitor", RC: 7, TargetRC: 7, CallID: call, Key: "1:1:7:x", Time: testNow.Unix()}, ns.Uname(), false)
				continue
			}
			recordOp(lr, &resultMsg{Task: "start", CallID: call, Key: "2:1:0:x", Time: testNow.Unix()}, ns.Uname(), false)
			if id != "fence" {
				call++
				recordOp(lr, &resultMsg{Task: "monitor", IntervalMS: 10000, CallID: call, Key: "3:1:0:x", Time: testNow.Unix()}, ns.Uname(), false)
			}
		}
	}
	return c
}

// dcFor returns a synced DC (node 1) of a ring of all nNodes nodes holding x.
func dcFor(tb testing.TB, x *cib.CIB, nNodes int) *Controller {
	c, err := New(Config{Node: 1, StartupWait: -1}, testNow)
	if err != nil {
		tb.Fatal(err)
	}
	c.cur = x
	var members []totem.NodeID
	for i := 1; i <= nNodes; i++ {
		members = append(members, totem.NodeID(i))
	}
	c.ring = totem.ConfChange{Kind: totem.Regular, Ring: totem.RingID{Rep: 1, Seq: 8}, Members: members}
	c.haveRing, c.syncing, c.fresh, c.quorate = true, false, false, true
	c.dc = newDC(c, testNow)
	return c
}

// failNode delivers the membership change that loses node lost and
// returns the Ready that follows the sync: the DC's decision.
func failNode(c *Controller, lost totem.NodeID, now time.Time) Ready {
	var members []totem.NodeID
	for _, m := range c.ring.Members {
		if m != lost {
			members = append(members, m)
		}
	}
	ring := totem.RingID{Rep: 1, Seq: c.ring.Ring.Seq + 4}
	c.ConfChange(now, totem.ConfChange{Kind: totem.Transitional, Ring: ring, Members: members, Left: []totem.NodeID{lost}})
	c.ConfChange(now, totem.ConfChange{Kind: totem.Regular, Ring: ring, Members: members, Left: []totem.NodeID{lost}})
	c.SetQuorum(now, true)
	c.SyncDone(now)
	return c.Ready()
}

func TestNodeFailureDecision(t *testing.T) {
	x := bigCluster(t, 60, 5)
	c := dcFor(t, x, 5)
	rd := failNode(c, 3, testNow.Add(time.Second))
	if len(rd.Fences) != 1 || rd.Fences[0].Target != 3 || rd.Fences[0].Uname != "node3" {
		t.Fatalf("fences %+v, want node3 fenced first", rd.Fences)
	}
	for _, m := range rd.Messages {
		if m.ID == MsgAction {
			a, _ := decodeAction(m.Payload)
			if a.Task == "start" {
				t.Fatalf("%s started before node3 was fenced", a.Resource)
			}
		}
	}
	if len(rd.PEInputs) != 1 || rd.PEInputs[0].CIB.Attrs.Value("have-quorum") != "1" {
		t.Fatalf("pe-inputs %+v", rd.PEInputs)
	}
	// The fencer succeeds: the result goes out, the recovery right behind
	// it (every node delivers one sender's messages in order, so each
	// applies the fencing before a start).
	c.FenceDone(testNow.Add(time.Second), FenceResult{ID: rd.Fences[0].ID, OK: true})
	rd = c.Ready()
	if len(rd.Messages) < 2 || rd.Messages[0].ID != MsgFenceResult {
		t.Fatalf("messages %+v, want the fence result first, then the recovery", rd.Messages)
	}
	sent := rd.Messages
	// Until the DC delivered its own result it plans nothing (a plan on
	// a CIB with node3 still unclean would fence it again).
	c.Tick(testNow.Add(2 * time.Second))
	if rd = c.Ready(); len(rd.PEInputs) != 0 || len(rd.Fences) != 0 {
		t.Fatalf("planned again before the fencing result was delivered: %d inputs, fences %+v", len(rd.PEInputs), rd.Fences)
	}
	c.Deliver(testNow.Add(time.Second), Message{Sender: 1, ID: MsgFenceResult, Payload: sent[0].Payload})
	if rd = c.Ready(); len(rd.Fences) != 0 {
		t.Fatalf("fenced again after the result: %+v", rd.Fences)
	}
	starts := 0
	for _, m := range sent[1:] {
		if a, err := decodeAction(m.Payload); err == nil && m.ID == MsgAction && a.Task == "start" {
			starts++
			if a.Target == 3 {
				t.Fatalf("start on the fenced node: %+v", a)
			}
		}
	}
	if starts == 0 {
		t.Fatal("nothing recovered after fencing")
	}
	if ns := c.nodeState(3); ns == nil || len(ns.Resources) != 0 || ns.Attrs.Value("expected") != "down" {
		t.Fatalf("fenced node's state not cleared: %+v", ns)
	}
}

// BenchmarkNodeFailure1000x32 is one decision after a node failure with
// 1,000 resources on 32 nodes: the membership change, the sync, the
// scheduler and the dispatch of the first actions (target ≤ 50 ms).
func BenchmarkNodeFailure1000x32(b *testing.B) {
	x := bigCluster(b, 1000, 32)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c := dcFor(b, x, 32)
		b.StartTimer()
		rd := failNode(c, 5, testNow.Add(time.Second))
		if len(rd.Fences) != 1 {
			b.Fatalf("fences %+v", rd.Fences)
		}
	}
}
