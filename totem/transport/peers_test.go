package transport_test

import (
	"errors"
	"net/netip"
	"testing"

	"ringmaster/totem"
	"ringmaster/totem/transport"
	"ringmaster/totem/transport/transporttest"
)

// TestUDPUSetPeers: a node added by SetPeers gets the broadcasts, a node
// removed is no longer a destination, and the local address cannot change.
func TestUDPUSetPeers(t *testing.T) {
	addrs := transporttest.LoopbackAddrs(t, 3)
	two := map[totem.NodeID]netip.AddrPort{1: addrs[0], 2: addrs[1]}
	all := map[totem.NodeID]netip.AddrPort{1: addrs[0], 2: addrs[1], 3: addrs[2]}
	u1, err := transport.NewUDPU(transport.UDPConfig{Bind: addrs[0], Peers: two})
	if err != nil {
		t.Fatal(err)
	}
	defer u1.Close()
	u3, err := transport.NewUDPU(transport.UDPConfig{Bind: addrs[2], Peers: all})
	if err != nil {
		t.Fatal(err)
	}
	defer u3.Close()
	if _, err := u1.Send([]transport.Packet{{To: 3, Data: []byte("x")}}); !errors.Is(err, transport.ErrUnknownNode) {
		t.Fatalf("unicast to an unlisted node: %v", err)
	}
	if err := u1.SetPeers(all); err != nil {
		t.Fatal(err)
	}
	if _, err := u1.Send([]transport.Packet{{To: transport.Broadcast, Data: []byte("hello 3")}}); err != nil {
		t.Fatal(err)
	}
	msgs := []transport.Msg{{Buf: make([]byte, 65536)}}
	n, err := u3.Receivers()[0].Recv(msgs)
	if err != nil || n != 1 || string(msgs[0].Buf[:msgs[0].N]) != "hello 3" || msgs[0].From != addrs[0] {
		t.Fatalf("node 3 received %d, %v: %q from %s", n, err, msgs[0].Buf[:msgs[0].N], msgs[0].From)
	}
	if err := u1.SetPeers(two); err != nil {
		t.Fatal(err)
	}
	if _, err := u1.Send([]transport.Packet{{To: 3, Data: []byte("x")}}); !errors.Is(err, transport.ErrUnknownNode) {
		t.Fatalf("unicast to a removed node: %v", err)
	}
	moved := map[totem.NodeID]netip.AddrPort{1: addrs[2], 2: addrs[1]}
	if err := u1.SetPeers(moved); !errors.Is(err, transport.ErrConfig) {
		t.Fatalf("local address changed: %v", err)
	}
	if err := u1.SetPeers(map[totem.NodeID]netip.AddrPort{2: addrs[1]}); !errors.Is(err, transport.ErrConfig) {
		t.Fatalf("local node removed: %v", err)
	}
}
