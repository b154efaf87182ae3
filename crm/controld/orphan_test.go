package controld

import (
	"fmt"
	"testing"
	"time"

	"ringmaster/crm/pengine"
	"ringmaster/totem"
)

// TestOrphanHistoryDeleted: the history of a resource removed from the
// configuration (stopped on node2, probed elsewhere) is erased on every
// node by the plan's delete actions, without aborting the transition that
// carries them (the DC plans again once it is over), and the next plan has
// nothing left to do for it. Before, the
// deletes completed without touching the CIB, so every later plan listed
// them again and `crm wait` never saw the cluster settle.
func TestOrphanHistoryDeleted(t *testing.T) {
	x := bigCluster(t, 6, 3)
	call := 1000
	for i := 1; i <= 3; i++ {
		ns := x.Status.EnsureNode(fmt.Sprint(i), fmt.Sprintf("node%d", i))
		lr := ns.EnsureResource("gone", "ocf", "Dummy", "heartbeat")
		call++
		if i == 2 {
			recordOp(lr, &resultMsg{Task: "stop", CallID: call, Key: "4:1:0:x", Time: testNow.Unix()}, ns.Uname(), false)
			continue
		}
		recordOp(lr, &resultMsg{Task: "monitor", RC: 7, TargetRC: 7, CallID: call, Key: "1:1:7:x", Time: testNow.Unix()}, ns.Uname(), false)
	}
	c := dcFor(t, x, 3)
	c.quorumKnown = true
	now := testNow.Add(time.Second)
	c.dc.markDirty("test")
	c.Tick(now)
	rd := c.Ready()
	var cleanups []Outgoing
	for _, m := range rd.Messages {
		if m.ID == MsgCleanup {
			cleanups = append(cleanups, m)
		}
	}
	if len(cleanups) != 3 {
		t.Fatalf("%d history deletions sent, want one per node (messages %+v)", len(cleanups), rd.Messages)
	}
	for _, m := range cleanups {
		c.Deliver(now, Message{Sender: 1, ID: m.ID, Payload: m.Payload})
	}
	for i := totem.NodeID(1); i <= 3; i++ {
		for _, r := range c.nodeState(i).Resources {
			if r.ID() == "gone" {
				t.Fatalf("node%d still holds the orphan's history", i)
			}
		}
	}
	if c.dc.tr != nil && c.dc.tr.aborted {
		t.Fatalf("delivering its own deletions aborted the transition (%s)", c.dc.reason)
	}
	if !c.dc.dirty {
		t.Fatal("the DC will not plan again after the transition that erased the history")
	}
	res, err := pengine.Schedule(c.SchedulerInput(now), now, pengine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range res.Graph.Actions {
		if a.Resource == "gone" {
			t.Fatalf("the next plan still wants %s on %s", a.Key, a.Node)
		}
	}
}
