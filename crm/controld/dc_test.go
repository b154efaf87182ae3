package controld

import (
	"strings"
	"testing"
	"time"
)

func TestParseMS(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"60s": time.Minute, "15min": 15 * time.Minute, "90": 90 * time.Second, "500ms": 500 * time.Millisecond,
		"2h": 2 * time.Hour, "0": 0, "x": -1, "": -1, "5 sec": 5 * time.Second, "3weeks": -1,
	} {
		if got := parseMS(in, -1); got != want {
			t.Errorf("parseMS(%q) = %v, want %v", in, got, want)
		}
	}
}

// A node that stays in the ring but never answers does not stall the DC:
// the action timer (operation timeout + cluster-delay) fails the action and
// the scheduler decides again.
func TestActionTimer(t *testing.T) {
	c := dcFor(t, bigCluster(t, 9, 3), 3)
	now := testNow.Add(time.Second)
	rd := failNode(c, 3, now)
	if len(rd.Fences) != 1 {
		t.Fatalf("fences %+v", rd.Fences)
	}
	if rd.Fences[0].Timeout != time.Minute {
		t.Fatalf("fence timeout %v, want stonith-timeout 60s", rd.Fences[0].Timeout)
	}
	c.FenceDone(now, FenceResult{ID: rd.Fences[0].ID, OK: true})
	rd = c.Ready()
	c.Deliver(now, Message{Sender: 1, ID: MsgFenceResult, Payload: rd.Messages[0].Payload})
	rd.Deadline = c.Ready().Deadline
	sent := 0
	for _, m := range rd.Messages {
		if m.ID == MsgAction {
			sent++
		}
	}
	if sent == 0 || c.Status().Pending == 0 {
		t.Fatalf("%d actions sent, %d pending", sent, c.Status().Pending)
	}
	// Nothing answers. Before the timer nothing happens...
	if d := rd.Deadline; d.IsZero() || d.After(now.Add(81*time.Second)) {
		t.Fatalf("deadline %v, want the action timer (20 s + 60 s)", d)
	}
	c.Tick(now.Add(79 * time.Second))
	if rd = c.Ready(); len(rd.PEInputs) != 0 {
		t.Fatal("re-planned before the action timer popped")
	}
	// ...then the actions fail and the scheduler runs again.
	c.Tick(now.Add(81 * time.Second))
	rd = c.Ready()
	popped := false
	for _, e := range rd.Events {
		popped = popped || strings.Contains(e.Text, "action timer popped")
	}
	if !popped || len(rd.PEInputs) != 1 {
		t.Fatalf("timer popped %v, %d new scheduler runs", popped, len(rd.PEInputs))
	}
}
