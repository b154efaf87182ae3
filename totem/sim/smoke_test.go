package sim

import (
	"testing"
	"time"

	"ringmaster/totem"
	"ringmaster/totem/srp"
)

func TestSmoke(t *testing.T) {
	c := New(Config{Nodes: []totem.NodeID{1, 2, 3}, Seed: 1, Timings: srp.DefaultTimings(200 * time.Millisecond),
		Net: Net{Latency: 100 * time.Microsecond, Jitter: 200 * time.Microsecond}})
	if err := c.RunFor(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !c.Converged() {
		t.Fatalf("not converged\n%s", c.Trace)
	}
	for i := 0; i < 100; i++ {
		c.Send(totem.NodeID(1+i%3), totem.Guarantee(i%2))
		c.RunFor(time.Millisecond)
	}
	if err := c.RunFor(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	c.Check.CheckSelfDelivery()
	if c.Err() != nil {
		t.Fatal(c.Err())
	}
	t.Logf("stats %+v", c.Stats)
	for _, n := range c.Nodes {
		t.Logf("%+v", n.P.Status())
	}
}
