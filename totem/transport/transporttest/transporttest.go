// Package transporttest helps tests that use real sockets: loopback ports
// for udpu on 127.0.0.x, and a private network namespace for multicast, so
// that no test datagram ever reaches a host interface.
package transporttest

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// LoopbackAddrs returns n addresses 127.0.0.1 … 127.0.0.n, each with a free
// UDP port (found by binding port 0 and closing; a race with another
// process taking the port in between is possible but harmless: the test
// fails to bind and says so).
func LoopbackAddrs(t testing.TB, n int) []netip.AddrPort {
	t.Helper()
	out := make([]netip.AddrPort, n)
	for i := range n {
		a := netip.AddrFrom4([4]byte{127, 0, 0, byte(i + 1)})
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 0)))
		if err != nil {
			t.Fatalf("probe port on %s: %v", a, err)
		}
		out[i] = c.LocalAddr().(*net.UDPAddr).AddrPort()
		c.Close()
	}
	return out
}

// LoopbackAddrs6 returns n addresses on ::1, each with its own free UDP
// port (IPv6 loopback is one address, so nodes differ by port). It fails
// the test when the host has no IPv6 loopback (IPv6 disabled): an IPv6
// test that skipped silently would hide a regression.
func LoopbackAddrs6(t testing.TB, n int) []netip.AddrPort {
	t.Helper()
	out := make([]netip.AddrPort, n)
	for i := range n {
		// Kept open until all are found: the ports differ.
		c, err := net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.IPv6Loopback(), 0)))
		if err != nil {
			t.Fatalf("probe port on ::1 (is IPv6 enabled?): %v", err)
		}
		defer c.Close()
		out[i] = c.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	return out
}

// RequireRoot skips the test when not root, unless CI=true, where a skipped
// kernel test would hide a regression: then it fails.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root (network namespaces); CI must run it as root")
	}
	t.Skip("needs root to create a network namespace")
}

// InNetns runs fn on a goroutine whose OS thread has been moved into a new,
// private network namespace with lo up and multicast routed to lo
// (`ip route add 224.0.0.0/4 dev lo`; IPv6 multicast does not loop back
// on lo: see Veth6). Sockets created by fn live in that namespace for good, and may be used
// from any goroutine afterwards. The thread is never returned to the Go
// scheduler (the goroutine exits still locked, so the runtime discards
// it), and the namespace disappears when its last socket is closed.
// Requires root; see RequireRoot.
func InNetns(t testing.TB, fn func() error) {
	t.Helper()
	RequireRoot(t)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread's namespace is changed for good.
		errc <- func() error {
			ns, err := netns.New()
			if err != nil {
				return fmt.Errorf("new netns: %w", err)
			}
			defer ns.Close()
			h, err := netlink.NewHandleAt(ns)
			if err != nil {
				return fmt.Errorf("netlink handle: %w", err)
			}
			defer h.Close()
			lo, err := h.LinkByName("lo")
			if err != nil {
				return fmt.Errorf("lo: %w", err)
			}
			if err := h.LinkSetUp(lo); err != nil {
				return fmt.Errorf("lo up: %w", err)
			}
			if err := h.LinkSetMulticastOn(lo); err != nil {
				return fmt.Errorf("lo multicast: %w", err)
			}
			_, mc, _ := net.ParseCIDR("224.0.0.0/4")
			if err := h.RouteAdd(&netlink.Route{LinkIndex: lo.Attrs().Index, Dst: mc, Scope: netlink.SCOPE_LINK}); err != nil {
				return fmt.Errorf("route 224.0.0.0/4 dev lo: %w", err)
			}
			return fn()
		}()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// Veth6 adds a veth pair (rmv6a, rmv6b) to the network namespace of the
// calling thread (call it from InNetns's fn), both ends up, with addrs
// on rmv6a (/64, nodad: usable at once, no duplicate address detection)
// and returns rmv6a. Linux delivers IPv6 multicast sent on lo to nobody,
// but loops it back to this host's members on any other interface
// (IPV6_MULTICAST_LOOP), as it does on a real network.
func Veth6(addrs ...netip.Addr) (string, error) {
	la := netlink.NewLinkAttrs()
	la.Name = "rmv6a"
	v := &netlink.Veth{LinkAttrs: la, PeerName: "rmv6b"}
	if err := netlink.LinkAdd(v); err != nil {
		return "", fmt.Errorf("veth: %w", err)
	}
	for _, name := range []string{"rmv6a", "rmv6b"} {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return "", err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return "", fmt.Errorf("%s up: %w", name, err)
		}
	}
	l, err := netlink.LinkByName("rmv6a")
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		ipn := &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(64, 128)}
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: ipn, Flags: unix.IFA_F_NODAD}); err != nil {
			return "", fmt.Errorf("address %s: %w", a, err)
		}
	}
	return "rmv6a", nil
}
