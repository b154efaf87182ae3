package transport_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"ringmaster/totem"
	"ringmaster/totem/link"
	"ringmaster/totem/transport"
	"ringmaster/totem/transport/transporttest"
)

// TestLinksActiveBatchOnOneLink: in active mode the links take turns by
// Send call, not by datagram. The ring hands over one batch per step (the
// messages it multicasts, then the token); spread over two links, read by
// two goroutines, the token overtakes the messages it counts and the
// receiver asks for retransmissions of messages that are on their way.
func TestLinksActiveBatchOnOneLink(t *testing.T) {
	l0 := transporttest.LoopbackAddrs(t, 2)
	l1 := []netip.AddrPort{
		netip.AddrPortFrom(netip.MustParseAddr("127.0.1.1"), l0[0].Port()),
		netip.AddrPortFrom(netip.MustParseAddr("127.0.1.2"), l0[1].Port()),
	}
	p0 := map[totem.NodeID]netip.AddrPort{1: l0[0], 2: l0[1]}
	p1 := map[totem.NodeID]netip.AddrPort{1: l1[0], 2: l1[1]}
	var trs []*transport.Links
	var recs []*collector
	for i := range 2 {
		tr, err := transport.NewLinks(transport.LinksConfig{Links: []transport.LinkConfig{
			{Number: 0, UDP: transport.UDPConfig{Bind: l0[i], Peers: p0}},
			{Number: 1, UDP: transport.UDPConfig{Bind: l1[i], Peers: p1}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		trs = append(trs, tr)
		recs = append(recs, collect(t, tr))
	}
	m, err := link.New(link.Config{Peers: []totem.NodeID{2}, Links: []link.Spec{{Number: 0, Priority: 1}, {Number: 1, Priority: 1}},
		Mode: link.Active, PingInterval: time.Millisecond, PingTimeout: time.Second, PongCount: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	m.Pong(time.Millisecond, 2, 0, 0)
	m.Pong(time.Millisecond, 2, 1, 0)
	trs[0].SetTable(m.Table())

	used := map[uint8]bool{}
	for b := range 2 {
		var pkts []transport.Packet
		for i := range 6 {
			to := totem.NodeID(2)
			if i%2 == 0 {
				to = transport.Broadcast
			}
			pkts = append(pkts, transport.Packet{To: to, Data: fmt.Appendf(nil, "b%d.%d", b, i)})
		}
		if n, err := trs[0].Send(pkts); err != nil || n != 6 {
			t.Fatalf("sent %d: %v", n, err)
		}
		last := fmt.Sprintf("b%d.5", b)
		deadline := time.Now().Add(5 * time.Second)
		for !recs[1].has(0, last) && !recs[1].has(1, last) {
			if time.Now().After(deadline) {
				t.Fatalf("%s never arrived", last)
			}
			time.Sleep(time.Millisecond)
		}
		on := uint8(0)
		if recs[1].has(1, last) {
			on = 1
		}
		for i := range 6 {
			recs[1].wait(t, on, fmt.Sprintf("b%d.%d", b, i))
			if recs[1].has(1-on, fmt.Sprintf("b%d.%d", b, i)) {
				t.Fatalf("batch %d split over both links: %v", b, recs[1].got)
			}
		}
		used[on] = true
	}
	if len(used) != 2 {
		t.Errorf("two batches on the same link: the links do not take turns")
	}
}
