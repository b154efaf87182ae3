package ring

import (
	"testing"

	"ringmaster/totem"
	"ringmaster/totem/crypto"
	"ringmaster/totem/link"
	"ringmaster/totem/transport/transporttest"
)

// TestRingUDPU6: a ring over udpu on ::1 (one port per node) forms and
// delivers in order; the receive filter accepts IPv6 sources (no
// datagram rejected as from a bad address), and frames are 20 bytes
// smaller than with IPv4, so that a netmtu datagram with its 40-byte
// header still fits.
func TestRingUDPU6(t *testing.T) {
	cfgs := udpuConfigsOn(t, transporttest.LoopbackAddrs6(t, 3))
	c := startCluster(t, cfgs)
	if got, want := c.rings[1].FrameBudget(), FrameBudget(1500, crypto.CipherAES256)-20; got != want {
		t.Fatalf("frame budget %d, want %d (IPv6 header)", got, want)
	}
	c.waitRing(1, 2, 3)
	trafficAccepted(t, c)
}

// TestRingMixedLinks: link 0 on IPv4 loopback, link 1 (preferred) on ::1;
// both links to every peer come up by heartbeat (pongs are checked
// against each link's addresses, IPv6 ones included) and traffic flows.
func TestRingMixedLinks(t *testing.T) {
	cfgs := linkConfigs(t, 3, link.Passive)
	a1 := transporttest.LoopbackAddrs6(t, 3)
	p1 := peersOf(a1)
	for i := range cfgs {
		for k := range cfgs[i].Links {
			if l := &cfgs[i].Links[k]; l.Number == 1 {
				l.Bind, l.Peers = a1[i], p1
			}
		}
	}
	c := startCluster(t, cfgs)
	c.waitRing(1, 2, 3)
	ls := waitLinks(t, c.rings[1], 4)
	for _, l := range ls {
		if l.Link == 1 && !l.Remote.Addr().Is6() {
			t.Fatalf("link 1 is not IPv6: %+v", ls)
		}
	}
	if got, want := c.rings[1].FrameBudget(), FrameBudget(1500, crypto.CipherAES256)-20; got != want {
		t.Fatalf("frame budget %d, want %d (the IPv6 link's header)", got, want)
	}
	trafficAccepted(t, c)
}

// trafficAccepted: 50 agreed messages from every node of a 3-node ring
// arrive in one order, and no node rejected a genuine datagram.
func trafficAccepted(t *testing.T, c *cluster) {
	t.Helper()
	for i := range 50 {
		for _, id := range c.ids {
			c.send(id, 7, uint16(i), totem.Agreed, payloadFor(id, i, i*37))
		}
	}
	c.checkOrder(7, 150, 1, 2, 3)
	for _, id := range c.ids {
		if cn := c.rings[id].Counters(); cn.UnknownNode+cn.BadAddress+cn.OutOfRange+cn.Malformed+cn.AuthFailures != 0 {
			t.Fatalf("node %d rejected genuine datagrams: %+v", id, cn)
		}
	}
}
