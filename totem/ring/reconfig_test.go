package ring

import (
	"errors"
	"maps"
	"net/netip"
	"testing"
	"time"

	"ringmaster/totem"
)

// TestSetPeersAddsAndRemovesANode: nodes 1 and 2 start with a node list
// without node 3, whose datagrams they drop (unknown node); SetPeers with
// node 3 lets it join the ring, and the timings given by SetTimings are
// the ones the ring then runs with.
func TestSetPeersAddsAndRemovesANode(t *testing.T) {
	cfgs := udpuConfigs(t, 3)
	all := cfgs[0].Peers
	two := maps.Clone(all)
	delete(two, 3)
	cfgs[0].Peers, cfgs[1].Peers = two, two
	c := startCluster(t, cfgs)
	c.waitRing(1, 2)
	c.recs[1].waitFor(t, 10*time.Second, "node 3's datagrams dropped", func() bool { return c.rings[1].Counters().UnknownNode > 0 })
	if m := c.recs[1].lastRegular().Members; len(m) != 2 {
		t.Fatalf("ring %v with node 3 unlisted", m)
	}
	for _, id := range []totem.NodeID{1, 2} {
		if err := c.rings[id].SetPeers(all); err != nil {
			t.Fatal(err)
		}
	}
	c.waitRing(1, 2, 3)

	tm := testTimings()
	tm.Token = 700 * time.Millisecond
	tm.Consensus = 0 // derived again from the new token
	for _, id := range c.ids {
		c.rings[id].SetTimings(tm)
	}
	for _, id := range c.ids {
		c.recs[id].waitFor(t, 10*time.Second, "new timings applied", func() bool {
			got := c.rings[id].Timings()
			return got.Token == 700*time.Millisecond && got.Consensus == 840*time.Millisecond
		})
	}

	c.stop(3)
	for _, id := range []totem.NodeID{1, 2} {
		if err := c.rings[id].SetPeers(two); err != nil {
			t.Fatal(err)
		}
	}
	c.waitRing(1, 2)
	if _, ok := c.rings[1].loadSources()[3]; ok {
		t.Fatal("node 3 still passes the receive filter")
	}
}

// TestSetPeersRefusesOwnChange: the local node can neither leave the list
// nor move (its socket is bound to its address).
func TestSetPeersRefusesOwnChange(t *testing.T) {
	cfgs := udpuConfigs(t, 2)
	r, err := New(cfgs[0], newRecorder(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	without := maps.Clone(cfgs[0].Peers)
	delete(without, 1)
	if err := r.SetPeers(without); !errors.Is(err, ErrConfig) {
		t.Errorf("own node removed: %v", err)
	}
	moved := maps.Clone(cfgs[0].Peers)
	moved[1] = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.99"), 1)
	if err := r.SetPeers(moved); !errors.Is(err, ErrConfig) {
		t.Errorf("own node moved: %v", err)
	}
}
