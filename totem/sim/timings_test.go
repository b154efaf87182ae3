package sim

import (
	"testing"
	"time"

	"ringmaster/totem"
	"ringmaster/totem/srp"
)

// setTimings changes one processor's timings as the driver does at a
// reload's commit point, and takes its output.
func (c *Cluster) setTimings(id totem.NodeID, t srp.Timings) {
	n := c.Node(id)
	n.P.SetTimings(c.Now, t)
	c.collect(n)
}

// TestSetTimingsLive: the members of a busy and then idle ring change
// their token (shorter, then longer) at slightly different moments, as
// they deliver a reload's commit; the ring keeps its membership, every
// invariant holds, and a failure afterwards is detected with the new
// token.
func TestSetTimingsLive(t *testing.T) {
	ids := []totem.NodeID{1, 2, 3}
	for seed := uint64(1); seed <= 20; seed++ {
		c := New(Config{Nodes: ids, Seed: seed, Timings: srp.DefaultTimings(1000 * time.Millisecond), Net: loopback, TraceLen: 2000})
		w := watch(c)
		if err := c.RunFor(2 * time.Second); err != nil {
			t.Fatal(err)
		}
		rings := w.rings
		change := func(token time.Duration) {
			for i, id := range ids {
				if seed%2 == 0 {
					for range 20 {
						c.Send(id, totem.Agreed)
					}
				}
				c.setTimings(id, srp.DefaultTimings(token))
				if err := c.RunFor(time.Duration(i+1) * 300 * time.Microsecond); err != nil {
					t.Fatal(err)
				}
			}
			// Idle long enough for the token to be held and passed many
			// times with the new values.
			if err := c.RunFor(5 * token); err != nil {
				t.Fatal(err)
			}
		}
		change(200 * time.Millisecond)
		change(3000 * time.Millisecond)
		change(200 * time.Millisecond)
		if w.rings != rings {
			t.Fatalf("seed %d: %d configurations while the timings changed\n%s", seed, w.rings-rings, c.Trace)
		}
		kill := c.Now
		c.Crash(3)
		if took := waitRing(t, c, w, []totem.NodeID{1, 2}, kill, 3*time.Second) - kill; took > 300*time.Millisecond {
			t.Errorf("seed %d: failover took %v with token 200 ms (the old token was 1 s)", seed, took)
		}
	}
}
