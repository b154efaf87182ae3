package transport_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"ringmaster/totem"
	"ringmaster/totem/link"
	"ringmaster/totem/transport"
	"ringmaster/totem/transport/transporttest"
)

// upTable returns a passive table in which, for every peer, exactly the
// links in up are healthy.
func upTable(t *testing.T, peers []totem.NodeID, links []uint8, up ...uint8) *link.Table {
	t.Helper()
	var specs []link.Spec
	for _, l := range links {
		specs = append(specs, link.Spec{Number: l, Priority: 1})
	}
	m, err := link.New(link.Config{Peers: peers, Links: specs, PingInterval: time.Millisecond, PingTimeout: time.Second, PongCount: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		for _, l := range up {
			m.Pong(time.Millisecond, p, l, 0)
		}
	}
	return m.Table()
}

// startTwoLinks starts a Links transport per node (udpu, link 0 on l0,
// link 1 on l1) with a recorder each, and checks that with no link known
// healthy a broadcast and a unicast go out on both links.
func startTwoLinks(t *testing.T, l0, l1 []netip.AddrPort) ([]*transport.Links, []*collector) {
	t.Helper()
	var trs []*transport.Links
	var recs []*collector
	for i := range l0 {
		tr, err := transport.NewLinks(transport.LinksConfig{Links: []transport.LinkConfig{
			{Number: 0, UDP: transport.UDPConfig{Bind: l0[i], Peers: udpuPeers(l0)}},
			{Number: 1, UDP: transport.UDPConfig{Bind: l1[i], Peers: udpuPeers(l1)}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		if tr.Self() != totem.NodeID(i+1) || tr.LocalAddr(1) != l1[i] {
			t.Fatalf("self %d local %s", tr.Self(), tr.LocalAddr(1))
		}
		trs = append(trs, tr)
		recs = append(recs, collect(t, tr))
	}
	if n, err := trs[0].Send([]transport.Packet{{To: transport.Broadcast, Data: []byte("b1")}, {To: 3, Data: []byte("u1")}}); err != nil || n != 6 {
		t.Fatalf("sent %d: %v (want 2 nodes x 2 links + 2)", n, err)
	}
	for _, l := range []uint8{0, 1} {
		recs[1].wait(t, l, "b1")
		recs[2].wait(t, l, "b1")
		recs[2].wait(t, l, "u1")
	}
	return trs, recs
}

// TestLinksUDPU: two links on loopback (127.0.0.x and 127.0.1.x). With no
// healthy link a broadcast and a unicast go on both; with link 1 healthy
// only there; SendOn picks its link; each datagram says where it came in.
func TestLinksUDPU(t *testing.T) {
	l0 := transporttest.LoopbackAddrs(t, 3)
	l1 := make([]netip.AddrPort, 3)
	for i := range l1 {
		l1[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)}), l0[i].Port())
	}
	trs, recs := startTwoLinks(t, l0, l1)

	trs[0].SetTable(upTable(t, []totem.NodeID{2, 3}, []uint8{0, 1}, 1))
	if n, err := trs[0].Send([]transport.Packet{{To: transport.Broadcast, Data: []byte("b2")}, {To: 2, Data: []byte("u2")}}); err != nil || n != 3 {
		t.Fatalf("sent %d: %v", n, err)
	}
	recs[1].wait(t, 1, "b2")
	recs[2].wait(t, 1, "b2")
	recs[1].wait(t, 1, "u2")
	if err := trs[0].SendOn(0, 3, []byte("hb")); err != nil {
		t.Fatal(err)
	}
	recs[2].wait(t, 0, "hb")
	if recs[1].has(0, "b2") || recs[1].has(0, "u2") {
		t.Error("link 0 carried traffic while only link 1 was chosen")
	}
	if err := trs[0].SendOn(5, 3, []byte("x")); !errors.Is(err, transport.ErrConfig) {
		t.Errorf("SendOn an unconfigured link: %v", err)
	}

	// Peers on different links: node 2 only on link 0, node 3 only on
	// link 1; a broadcast reaches each on its own link, once.
	m, err := link.New(link.Config{Peers: []totem.NodeID{2, 3}, Links: []link.Spec{{Number: 0, Priority: 1}, {Number: 1, Priority: 1}},
		PingInterval: time.Millisecond, PingTimeout: time.Second, PongCount: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	m.Pong(time.Millisecond, 2, 0, 0)
	m.Pong(time.Millisecond, 3, 1, 0)
	trs[0].SetTable(m.Table())
	if n, err := trs[0].Send([]transport.Packet{{To: transport.Broadcast, Data: []byte("b3")}, {To: transport.Broadcast, Data: []byte("b4")}}); err != nil || n != 4 {
		t.Fatalf("sent %d: %v (want 2 broadcasts x 2 nodes)", n, err)
	}
	for _, b := range []string{"b3", "b4"} {
		recs[1].wait(t, 0, b)
		recs[2].wait(t, 1, b)
		if recs[1].has(1, b) || recs[2].has(0, b) {
			t.Errorf("%s went on a link its node did not choose", b)
		}
	}
}

func TestLinksConfigErrors(t *testing.T) {
	a := transporttest.LoopbackAddrs(t, 2)
	peers := map[totem.NodeID]netip.AddrPort{1: a[0], 2: a[1]}
	for name, cfg := range map[string]transport.LinksConfig{
		"none":      {},
		"duplicate": {Links: []transport.LinkConfig{{Number: 0, UDP: transport.UDPConfig{Bind: a[0], Peers: peers}}, {Number: 0, UDP: transport.UDPConfig{Bind: a[1], Peers: peers}}}},
		"number 8":  {Links: []transport.LinkConfig{{Number: 8, UDP: transport.UDPConfig{Bind: a[0], Peers: peers}}}},
		"two selves": {Links: []transport.LinkConfig{{Number: 0, UDP: transport.UDPConfig{Bind: a[0], Peers: peers}},
			{Number: 1, UDP: transport.UDPConfig{Bind: netip.AddrPortFrom(netip.MustParseAddr("127.0.1.2"), a[1].Port()),
				Peers: map[totem.NodeID]netip.AddrPort{1: netip.AddrPortFrom(netip.MustParseAddr("127.0.1.1"), a[0].Port()), 2: netip.AddrPortFrom(netip.MustParseAddr("127.0.1.2"), a[1].Port())}}}}},
	} {
		if _, err := transport.NewLinks(cfg); !errors.Is(err, transport.ErrConfig) {
			t.Errorf("%s: want ErrConfig, got %v", name, err)
		}
	}
}
