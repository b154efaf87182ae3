package transport

import (
	"fmt"
	"net/netip"
	"testing"

	"ringmaster/totem"
	"ringmaster/totem/transport/transporttest"
)

// TestLocalPeers: multicast loops back to this host only when another
// node's address is local. It runs in a fresh network namespace, where
// only lo (127.0.0.0/8) is local.
func TestLocalPeers(t *testing.T) {
	ap := netip.MustParseAddrPort
	cases := []struct {
		name  string
		peers map[totem.NodeID]netip.AddrPort
		want  bool
	}{
		{"all remote", map[totem.NodeID]netip.AddrPort{1: ap("127.0.0.1:5405"), 2: ap("192.0.2.2:5405"), 3: ap("192.0.2.3:5405")}, false},
		{"alone", map[totem.NodeID]netip.AddrPort{1: ap("127.0.0.1:5405")}, false},
		{"another loopback address", map[totem.NodeID]netip.AddrPort{1: ap("127.0.0.1:5405"), 2: ap("127.0.0.2:5405")}, true},
		{"same address, other port", map[totem.NodeID]netip.AddrPort{1: ap("127.0.0.1:5405"), 2: ap("127.0.0.1:5407")}, true},
	}
	transporttest.InNetns(t, func() error {
		for _, c := range cases {
			if got := localPeers(UDPConfig{Bind: ap("127.0.0.1:5405"), Peers: c.peers}); got != c.want {
				return fmt.Errorf("%s: localPeers = %v, want %v", c.name, got, c.want)
			}
		}
		return nil
	})
}
