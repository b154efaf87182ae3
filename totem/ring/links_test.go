package ring

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"ringmaster/totem"
	"ringmaster/totem/link"
	"ringmaster/totem/transport/transporttest"
)

// linkConfigs: n nodes with two udpu links on loopback, link 0 on
// 127.0.0.x and link 1 on 127.0.1.x (priority 2: preferred).
func linkConfigs(t testing.TB, n int, mode link.Mode) []Config {
	a0 := transporttest.LoopbackAddrs(t, n)
	p0, p1 := map[totem.NodeID]netip.AddrPort{}, map[totem.NodeID]netip.AddrPort{}
	for i, a := range a0 {
		p0[totem.NodeID(i+1)] = a
		p1[totem.NodeID(i+1)] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)}), a.Port())
	}
	dir := t.TempDir()
	var cfgs []Config
	for i := range n {
		id := totem.NodeID(i + 1)
		cfgs = append(cfgs, Config{
			Node: id, ClusterName: "test", Transport: "udpu",
			Links:        []Link{{Number: 1, Bind: p1[id], Peers: p1, Priority: 2}, {Number: 0, Bind: p0[id], Peers: p0, Priority: 1}},
			LinkSettings: LinkSettings{Mode: mode},
			Timings:      testTimings(), NetMTU: 1500, Cipher: "aes256", Keys: [][]byte{bytes.Repeat([]byte{1}, 32)},
			StateDir: dir,
		})
	}
	return cfgs
}

// waitLinks waits until node id reports every link to every peer up.
func waitLinks(t *testing.T, r *Ring, want int) []totem.LinkStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ls := r.Links()
		up := 0
		for _, l := range ls {
			if l.Up {
				up++
			}
		}
		if up == want && len(ls) == want {
			return ls
		}
		if time.Now().After(deadline) {
			t.Fatalf("links %+v: want %d up", ls, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRingTwoLinks: a ring over two udpu links forms, both links to every
// peer come up by heartbeat, ordered traffic flows (passive and active),
// and the status names each link's addresses.
func TestRingTwoLinks(t *testing.T) {
	for _, mode := range []link.Mode{link.Passive, link.Active} {
		t.Run(mode.String(), func(t *testing.T) {
			cfgs := linkConfigs(t, 3, mode)
			c := startCluster(t, cfgs)
			c.waitRing(1, 2, 3)
			ls := waitLinks(t, c.rings[1], 4)
			if ls[0].Peer != 2 || ls[0].Link != 0 || ls[0].Local.Addr() != netip.MustParseAddr("127.0.0.1") || ls[1].Remote.Addr() != netip.MustParseAddr("127.0.1.2") {
				t.Fatalf("status %+v", ls)
			}
			for i := range 100 {
				for _, id := range c.ids {
					c.send(id, 7, uint16(i), totem.Agreed, payloadFor(id, i, i*10))
				}
			}
			c.checkOrder(7, 300, 1, 2, 3)
			waitLinks(t, c.rings[2], 4) // node 1's links being up says nothing of node 2's
			st := c.rings[2].Status()
			// A link may flap on a loaded machine (-race): the events
			// must still add up to four links up.
			if cn := st.Counters; cn.LinkUps < 4 || cn.LinkUps-cn.LinkDowns != 4 || len(st.Links) != 4 {
				t.Fatalf("counters %+v links %+v", st.Counters, st.Links)
			}
			if cn := st.Counters; cn.UnknownNode+cn.BadAddress+cn.OutOfRange+cn.Malformed+cn.AuthFailures != 0 {
				t.Fatalf("genuine datagrams rejected: %+v", cn)
			}
		})
	}
}

func TestSetLinks(t *testing.T) {
	cfgs := linkConfigs(t, 2, link.Passive)
	r, err := New(cfgs[0], newRecorder(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.SetPeers(cfgs[0].Links[0].Peers); !errors.Is(err, ErrConfig) {
		t.Fatalf("SetPeers on a two-link ring: %v", err)
	}
	links := cfgs[0].Links
	// Add node 3 on both links.
	grown := make([]Link, len(links))
	for i, l := range links {
		p := map[totem.NodeID]netip.AddrPort{}
		for id, ap := range l.Peers {
			p[id] = ap
		}
		p[3] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, l.Number, 3}), 9)
		grown[i] = Link{Number: l.Number, Bind: l.Bind, Peers: p, Priority: l.Priority}
	}
	if err := r.SetLinks(grown); err != nil {
		t.Fatal(err)
	}
	if ls := r.Links(); len(ls) != 4 || ls[3].Peer != 3 || ls[3].Remote.Port() != 9 {
		t.Fatalf("links after adding node 3: %+v", ls)
	}
	if !r.links.knownSource(3, netip.MustParseAddrPort("127.0.1.3:9")) {
		t.Fatal("node 3's link-1 address not accepted by the filter")
	}
	// Node 3 on one link only: refused.
	delete(grown[1].Peers, 3)
	if err := r.SetLinks(grown); !errors.Is(err, ErrConfig) {
		t.Fatalf("node on one link: %v", err)
	}
	if err := r.SetLinks(grown[:1]); !errors.Is(err, ErrConfig) {
		t.Fatalf("one link of two: %v", err)
	}
}
