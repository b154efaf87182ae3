package sim

import (
	"testing"
	"time"

	"ringmaster/totem"
	"ringmaster/totem/srp"
)

// TestEarlyHoldLoneSender: a lone sender at a moderate rate (a message
// every few rotations) keeps the idle token after one quiet rotation
// (srp holdQuietNow), so most of its messages find the token at hand and
// are sequenced and delivered at once; and holding that early delays no
// safe delivery anywhere (the token is held only once every member has
// delivered the ring's last safe message).
func TestEarlyHoldLoneSender(t *testing.T) {
	c := New(Config{Nodes: []totem.NodeID{1, 2, 3}, Seed: 1, Timings: srp.DefaultTimings(300 * time.Millisecond), Net: loopback})
	c.RunFor(time.Second)
	const n = 300
	atHand, safeN := 0, 0
	var worstSafe time.Duration
	for i := range n {
		// About two to three rotations of the loopback ring apart: the
		// three-quiet-visits rule would rarely hold the token in between.
		c.RunFor(600*time.Microsecond + time.Duration(i%5)*50*time.Microsecond)
		g := totem.Agreed
		if i%4 == 3 {
			g = totem.Safe
		}
		id := c.Send(1, g)
		if id == 0 {
			t.Fatal("try again")
		}
		if g == totem.Agreed && c.Check.DeliveredBy(1, id) {
			atHand++ // sequenced and delivered inside Send: the token was here
		}
		if g == totem.Safe {
			safeN++
			sent := c.Now
			for !(c.Check.DeliveredBy(1, id) && c.Check.DeliveredBy(2, id) && c.Check.DeliveredBy(3, id)) {
				if err := c.RunFor(50 * time.Microsecond); err != nil {
					t.Fatal(err)
				}
			}
			worstSafe = max(worstSafe, c.Now-sent)
		}
	}
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	agreed := n - safeN
	t.Logf("%d of %d agreed messages found the token at hand; worst safe send-to-delivery-everywhere %v", atHand, agreed, worstSafe)
	if atHand < agreed*3/4 {
		t.Errorf("only %d of %d agreed messages found the token at hand", atHand, agreed)
	}
	if worstSafe > 5*time.Millisecond {
		t.Errorf("a safe message took %v to be delivered everywhere: the held token delayed it", worstSafe)
	}
}
