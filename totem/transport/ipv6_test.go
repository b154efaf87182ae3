package transport_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"ringmaster/totem"
	"ringmaster/totem/transport"
	"ringmaster/totem/transport/transporttest"
)

// TestUDPU6 runs three udpu endpoints on ::1, one port each: udp6
// sockets, sockaddr_in6 in sendmmsg/recvmmsg, every datagram delivered
// once to whom it was meant for.
func TestUDPU6(t *testing.T) {
	exerciseUDPU(t, transporttest.LoopbackAddrs6(t, 3), netip.MustParseAddrPort("[::1]:9"), func(u *transport.UDP) {
		if u.IPHeader() != 40 || u.MTU() < 1500 {
			t.Fatalf("IPv6 header %d, MTU %d", u.IPHeader(), u.MTU())
		}
	})
}

// TestUDPU6V6Only: an IPv6 link's socket takes no IPv4 datagrams (it is
// IPV6_V6ONLY), so an IPv4 link may use the same port, and an IPv4 node
// cannot reach it as an IPv4-mapped source.
func TestUDPU6V6Only(t *testing.T) {
	a6 := transporttest.LoopbackAddrs6(t, 1)[0]
	u, err := transport.NewUDPU(transport.UDPConfig{Bind: a6, Peers: map[totem.NodeID]netip.AddrPort{1: a6}})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	a4 := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), a6.Port())
	v4, err := transport.NewUDPU(transport.UDPConfig{Bind: a4, Peers: map[totem.NodeID]netip.AddrPort{1: a4}})
	if err != nil {
		t.Fatalf("IPv4 socket on the IPv6 link's port: %v", err)
	}
	v4.Close()
}

func TestUDP6ConfigErrors(t *testing.T) {
	lo6 := netip.MustParseAddrPort("[::1]:5405")
	for name, cfg := range map[string]transport.UDPConfig{
		"zone":          {Bind: netip.MustParseAddrPort("[fe80::1%lo]:5405")},
		"IPv4-mapped":   {Bind: netip.MustParseAddrPort("[::ffff:127.0.0.1]:5405")},
		"IPv4 peer":     {Bind: lo6, Peers: map[totem.NodeID]netip.AddrPort{1: lo6, 2: netip.MustParseAddrPort("127.0.0.2:5405")}},
		"IPv6 peer":     {Bind: netip.MustParseAddrPort("127.0.0.1:5405"), Peers: map[totem.NodeID]netip.AddrPort{2: lo6}},
		"no port":       {Bind: netip.MustParseAddrPort("[::1]:0")},
		"mapped peer":   {Bind: lo6, Peers: map[totem.NodeID]netip.AddrPort{2: netip.MustParseAddrPort("[::ffff:127.0.0.2]:5405")}},
		"zone, on peer": {Bind: lo6, Peers: map[totem.NodeID]netip.AddrPort{2: netip.MustParseAddrPort("[fe80::2%lo]:5405")}},
	} {
		if u, err := transport.NewUDPU(cfg); !errors.Is(err, transport.ErrConfig) {
			if u != nil {
				u.Close()
			}
			t.Errorf("%s: want ErrConfig, got %v", name, err)
		}
	}
	for name, g := range map[string]string{"IPv4 group": "239.192.7.1:5405", "unicast": "[::2]:5405"} {
		if _, err := transport.NewUDP(transport.UDPConfig{Bind: lo6, Mcast: netip.MustParseAddrPort(g)}); !errors.Is(err, transport.ErrConfig) {
			t.Errorf("%s on an IPv6 bind: want ErrConfig, got %v", name, err)
		}
	}
	if _, err := transport.NewUDP(transport.UDPConfig{Bind: netip.MustParseAddrPort("127.0.0.1:5405"), Mcast: netip.MustParseAddrPort("[ff18::1]:5405")}); !errors.Is(err, transport.ErrConfig) {
		t.Errorf("IPv6 group on an IPv4 bind: want ErrConfig, got %v", err)
	}
	// A reload cannot bring another family into a link.
	u, err := transport.NewUDPU(transport.UDPConfig{Bind: transporttest.LoopbackAddrs6(t, 1)[0]})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if err := u.SetPeers(map[totem.NodeID]netip.AddrPort{2: netip.MustParseAddrPort("127.0.0.2:5405")}); !errors.Is(err, transport.ErrConfig) {
		t.Errorf("SetPeers with an IPv4 peer on an IPv6 link: %v", err)
	}
}

// TestUDPMulticast6 runs three multicast endpoints on fd00::1–3 (a veth
// in a private network namespace; root, required when CI=true):
// IPV6_JOIN_GROUP, IPV6_MULTICAST_IF/HOPS/LOOP, and the group's traffic
// never leaves the test.
func TestUDPMulticast6(t *testing.T) {
	trs := map[totem.NodeID]transport.Transport{}
	transporttest.InNetns(t, func() error {
		peers := map[totem.NodeID]netip.AddrPort{}
		var addrs []netip.Addr
		for id := totem.NodeID(1); id <= 3; id++ {
			a := netip.AddrFrom16([16]byte{0: 0xfd, 15: byte(id)})
			addrs = append(addrs, a)
			peers[id] = netip.AddrPortFrom(a, 5405)
		}
		if _, err := transporttest.Veth6(addrs...); err != nil {
			return err
		}
		return startMulticast(trs, peers, "[ff18::efc0:701]:5405")
	})
	exercise(t, trs)
}

// TestLinksMixedFamilies: link 0 on IPv4 loopback, link 1 on IPv6
// loopback; each datagram says which link it came in on, SendOn reaches
// a node on the IPv6 link, and the frame size accounts for IPv6's header.
func TestLinksMixedFamilies(t *testing.T) {
	l0 := transporttest.LoopbackAddrs(t, 3)
	l1 := transporttest.LoopbackAddrs6(t, 3)
	trs, recs := startTwoLinks(t, l0, l1)
	for _, tr := range trs {
		if tr.IPHeader() != 40 {
			t.Fatalf("IP header %d with an IPv6 link", tr.IPHeader())
		}
	}
	trs[0].SetTable(upTable(t, []totem.NodeID{2, 3}, []uint8{0, 1}, 1))
	if _, err := trs[0].Send([]transport.Packet{{To: 2, Data: []byte("u2")}}); err != nil {
		t.Fatal(err)
	}
	recs[1].wait(t, 1, "u2")
	if err := trs[1].SendOn(1, 3, []byte("hb")); err != nil {
		t.Fatal(err)
	}
	recs[2].wait(t, 1, "hb")
	// A reload keeps each link's family.
	if err := trs[0].SetLinkPeers(map[uint8]map[totem.NodeID]netip.AddrPort{0: udpuPeers(l0), 1: udpuPeers(l1)}); err != nil {
		t.Fatal(err)
	}
	if err := trs[0].SetLinkPeers(map[uint8]map[totem.NodeID]netip.AddrPort{0: udpuPeers(l1), 1: udpuPeers(l0)}); !errors.Is(err, transport.ErrConfig) {
		t.Errorf("families swapped by a reload: %v", err)
	}
	// A list refused on one link changes no link: node 3 dropped from
	// link 0 next to a bad list for link 1 is still sent to on link 0.
	trs[0].SetTable(upTable(t, []totem.NodeID{2, 3}, []uint8{0, 1}, 0))
	without3 := udpuPeers(l0)
	delete(without3, 3)
	if err := trs[0].SetLinkPeers(map[uint8]map[totem.NodeID]netip.AddrPort{0: without3, 1: udpuPeers(l0)}); !errors.Is(err, transport.ErrConfig) {
		t.Fatalf("bad list on link 1 accepted: %v", err)
	}
	if n, err := trs[0].Send([]transport.Packet{{To: 3, Data: []byte("u3")}}); err != nil || n != 1 {
		t.Fatalf("node 3 on link 0 after a refused update: sent %d: %v", n, err)
	}
	recs[2].wait(t, 0, "u3")
}

// TestUDPUTentativeAddress: a transport bound to an IPv6 address still
// under duplicate address detection (a ringd started with the network)
// waits for the address instead of failing with EADDRNOTAVAIL; one on no
// interface fails at once.
func TestUDPUTentativeAddress(t *testing.T) {
	transporttest.InNetns(t, func() error {
		dev, err := transporttest.Veth6()
		if err != nil {
			return err
		}
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+dev+"/accept_dad", []byte("1"), 0o644); err != nil {
			return err
		}
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return err
		}
		a := netip.MustParseAddr("fd00:dad::1")
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(64, 128)}}); err != nil {
			return err
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V6)
		if err != nil {
			return err
		}
		tentative := false
		for _, x := range addrs {
			if x.IP.Equal(a.AsSlice()) && x.Flags&unix.IFA_F_TENTATIVE != 0 {
				tentative = true
			}
		}
		if !tentative {
			return fmt.Errorf("%s is not tentative right after it was added: the test shows nothing", a)
		}
		bind := netip.AddrPortFrom(a, 5405)
		u, err := transport.NewUDPU(transport.UDPConfig{Bind: bind, Peers: map[totem.NodeID]netip.AddrPort{
			1: bind, 2: netip.MustParseAddrPort("[fd00:dad::2]:5405")}})
		if err != nil {
			return fmt.Errorf("bind to a tentative address: %w", err)
		}
		if transport.DADRetries() == 0 {
			return fmt.Errorf("bound %s without waiting: it was no longer tentative, the test shows nothing", a)
		}
		if err := u.Close(); err != nil {
			return err
		}
		// An address on no interface (a typo) fails at once: no wait.
		before := transport.DADRetries()
		missing := netip.MustParseAddrPort("[fd00:dad::99]:5405")
		_, err = transport.NewUDPU(transport.UDPConfig{Bind: missing, Peers: map[totem.NodeID]netip.AddrPort{1: missing, 2: bind}})
		if !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("bind to an address of no interface: %v, want EADDRNOTAVAIL", err)
		}
		if n := transport.DADRetries() - before; n != 0 {
			return fmt.Errorf("bind to an address of no interface waited %d times for it", n)
		}
		return nil
	})
}
