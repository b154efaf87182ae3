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

// TestBusySenderTokenLossResentFast: on a ring kept busy by one sender, a
// token lost on its way to that sender is resent at the spinning ring's
// pace, not after a hold period: a busy sender (its queue not empty, as
// the token's backlog shows) broadcasts at its next visit and never keeps
// the token, even though it sent every message since the forward.
func TestBusySenderTokenLossResentFast(t *testing.T) {
	tm := srp.DefaultTimings(1000 * time.Millisecond)
	c := New(Config{Nodes: []totem.NodeID{1, 2, 3}, Seed: 3, Timings: tm, Net: loopback})
	c.RunFor(time.Second)
	busy := func(d time.Duration) {
		for end := c.Now + d; c.Now < end; {
			for c.Send(1, totem.Agreed) != 0 {
			}
			c.RunFor(100 * time.Microsecond)
		}
	}
	busy(50 * time.Millisecond)
	// Cut node 1 off for a moment: the token on its way to it is lost.
	c.Partition([]totem.NodeID{1}, []totem.NodeID{2, 3})
	c.RunFor(200 * time.Microsecond)
	c.Heal()
	before := c.Stats.Delivered
	start := c.Now
	for c.Stats.Delivered < before+100 {
		busy(time.Millisecond)
		if c.Now-start > tm.Token/8 {
			t.Fatalf("after a lost token the busy ring delivered %d messages in %v", c.Stats.Delivered-before, c.Now-start)
		}
	}
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("100 deliveries %v after the cut", c.Now-start)
}
