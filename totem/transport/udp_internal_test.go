package transport

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
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

// TestIPv6MTUFromSysctl: an IPv6 link's MTU is the interface's IPv6 MTU
// when that is below the link MTU (the sysctl that router advertisements
// lower), the link MTU otherwise or when there is none.
func TestIPv6MTUFromSysctl(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv6/conf/lo/mtu")
	if err != nil {
		t.Fatalf("no IPv6 on lo: %v", err)
	}
	lo, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if got := ipv6MTU("lo", lo+1000); got != lo {
		t.Errorf("link MTU above lo's IPv6 MTU %d: got %d", lo, got)
	}
	if got := ipv6MTU("lo", 1400); got != 1400 {
		t.Errorf("link MTU below lo's IPv6 MTU: got %d, want 1400", got)
	}
	if got := ipv6MTU("no-such-if0", 1500); got != 1500 {
		t.Errorf("no sysctl: got %d, want the link MTU", got)
	}
}
