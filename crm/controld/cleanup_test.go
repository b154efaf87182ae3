package controld

import (
	"testing"
	"time"
)

// TestCleanupAnsweredOnDelivery: a local cleanup is answered when this
// node delivers it, not when it is sent (a `crm resource cleanup --wait`
// read the CIB from before it and returned at once), one answer per
// request even when two are alike.
func TestCleanupAnsweredOnDelivery(t *testing.T) {
	c := dcFor(t, bigCluster(t, 6, 3), 3)
	now := testNow.Add(time.Second)
	first := c.Cleanup(now, "rsc1", 2)
	second := c.Cleanup(now, "rsc1", 2)
	rd := c.Ready()
	var sent []Outgoing
	for _, m := range rd.Messages {
		if m.ID == MsgCleanup {
			sent = append(sent, m)
		}
	}
	if len(sent) != 2 || first == second {
		t.Fatalf("sent %d cleanups, requests %d and %d", len(sent), first, second)
	}
	for _, e := range rd.Events {
		if e.Kind == EventCleanupApplied {
			t.Fatalf("cleanup answered before it was delivered: %+v", e)
		}
	}
	// Another node's identical cleanup answers nothing of ours.
	c.Deliver(now, Message{Sender: 2, ID: MsgCleanup, Payload: sent[0].Payload})
	if got := applied(c.Ready().Events); len(got) != 0 {
		t.Fatalf("another node's cleanup answered ours: %v", got)
	}
	for i, want := range []uint64{first, second} {
		c.Deliver(now, Message{Sender: 1, ID: MsgCleanup, Payload: sent[i].Payload})
		if got := applied(c.Ready().Events); len(got) != 1 || got[0] != want {
			t.Fatalf("delivery %d answered %v, want [%d]", i+1, got, want)
		}
	}
}

func applied(evs []Event) []uint64 {
	var out []uint64
	for _, e := range evs {
		if e.Kind == EventCleanupApplied {
			out = append(out, e.Req)
		}
	}
	return out
}
