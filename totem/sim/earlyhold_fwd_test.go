package sim

import (
	"testing"
	"time"

	"ringmaster/totem"
	"ringmaster/totem/srp"
)

// TestEarlyHoldAfterOwnMessage: with only agreed messages, a lone
// sender's visit right after its own message counts as quiet (nobody else
// broadcast since its forward), so it keeps the token after one rotation
// instead of two. With messages 400 µs apart on the simulator's loopback
// ring, 110 of 200 find the token at hand this way, 11 when the sender
// waits for a visit with seq unchanged.
func TestEarlyHoldAfterOwnMessage(t *testing.T) {
	const gap = 400 * time.Microsecond
	c := New(Config{Nodes: []totem.NodeID{1, 2, 3}, Seed: 7, Timings: srp.DefaultTimings(300 * time.Millisecond), Net: loopback})
	c.RunFor(time.Second)
	const n = 200
	atHand := 0
	for range n {
		c.RunFor(gap)
		id := c.Send(1, totem.Agreed)
		if id == 0 {
			t.Fatal("try again")
		}
		if c.Check.DeliveredBy(1, id) {
			atHand++
		}
	}
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d messages %v apart found the token at hand", atHand, n, gap)
	if atHand < n/3 {
		t.Errorf("only %d of %d messages found the token at hand", atHand, n)
	}
}
