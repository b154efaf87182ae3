package transport_test

import (
	"net/netip"
	"testing"

	"ringmaster/totem"
	"ringmaster/totem/transport"
	"ringmaster/totem/transport/transporttest"
)

// TestUDPUSource: a received datagram carries its source address (the
// driver drops datagrams whose source is not the configured address of
// the node they claim to come from); an IPv6 one as the node list has it
// (no zone, not IPv4-mapped).
func TestUDPUSource(t *testing.T) {
	t.Run("ipv4", func(t *testing.T) { testUDPUSource(t, transporttest.LoopbackAddrs(t, 2)) })
	t.Run("ipv6", func(t *testing.T) { testUDPUSource(t, transporttest.LoopbackAddrs6(t, 2)) })
}

func testUDPUSource(t *testing.T, addrs []netip.AddrPort) {
	peers := udpuPeers(addrs)
	var trs []*transport.UDP
	for _, a := range addrs {
		u, err := transport.NewUDPU(transport.UDPConfig{Bind: a, Peers: peers})
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		trs = append(trs, u)
	}
	if _, err := trs[0].Send([]transport.Packet{{To: totem.NodeID(2), Data: []byte("hi")}}); err != nil {
		t.Fatal(err)
	}
	msgs := []transport.Msg{{Buf: make([]byte, 65536)}}
	n, err := trs[1].Receivers()[0].Recv(msgs)
	if err != nil || n != 1 {
		t.Fatalf("recv %d, %v", n, err)
	}
	if msgs[0].From != addrs[0] || string(msgs[0].Buf[:msgs[0].N]) != "hi" {
		t.Fatalf("got %q from %s, want %q from %s", msgs[0].Buf[:msgs[0].N], msgs[0].From, "hi", addrs[0])
	}
}
