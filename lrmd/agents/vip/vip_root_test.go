package vip

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"

	"ringmaster/internal/testutil"
	"ringmaster/lrmd"
	"ringmaster/lrmd/internal/netnsx"
	"ringmaster/lrmd/internal/roottest"
)

// arpCapture records ARP packets seen on one interface of a namespace.
type arpCapture struct {
	mu   sync.Mutex
	pkts []arp.Packet
}

func captureARP(t *testing.T, ns *roottest.NS, ifname string) *arpCapture {
	t.Helper()
	var c *packet.Conn
	err := netnsx.Do(ns.Handle, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		c, err = packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeARP), nil)
		return err
	})
	if err != nil {
		t.Fatalf("capture on %s: %v", ifname, err)
	}
	cap := &arpCapture{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			var f ethernet.Frame
			var p arp.Packet
			if f.UnmarshalBinary(buf[:n]) != nil || p.UnmarshalBinary(f.Payload) != nil {
				continue
			}
			cap.mu.Lock()
			cap.pkts = append(cap.pkts, p)
			cap.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return cap
}

// gratuitous counts gratuitous ARP packets (sender IP == target IP == ip)
// from mac.
func (c *arpCapture) gratuitous(ip netip.Addr, mac net.HardwareAddr) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, p := range c.pkts {
		if p.SenderIP == ip && p.TargetIP == ip && p.SenderHardwareAddr.String() == mac.String() {
			n++
		}
	}
	return n
}

func ifMAC(t *testing.T, ns *roottest.NS, ifname string) net.HardwareAddr {
	t.Helper()
	mac, err := net.ParseMAC(strings.TrimSpace(ns.Run(t, "cat", "/sys/class/net/"+ifname+"/address")))
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

// TestVIPInNamespace needs root: it runs builtin:vip in namespace A with a
// veth pair to a peer namespace B and watches B's side of the link.
func TestVIPInNamespace(t *testing.T) {
	roottest.Require(t)
	a, b := roottest.NewNS(t, "vipa"), roottest.NewNS(t, "vipb")
	roottest.Veth(t, a, "va", "10.77.0.1/24", b, "vb", "10.77.0.2/24")
	cap := captureARP(t, b, "vb")
	k, err := NewKernel(a.Handle)
	if err != nil {
		t.Fatal(err)
	}
	agent := New(k)
	defer agent.Close()
	cls := lrmd.NewBuiltins(agent)
	vip := netip.MustParseAddr("10.77.0.100")
	exec := func(action string, params map[string]string) lrmd.Result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return cls.Exec(ctx, lrmd.Request{Agent: lrmd.AgentID{Class: "builtin", Type: "vip"}, Resource: "vip", Action: action, Params: params, Timeout: 10 * time.Second})
	}
	// nic and netmask left out: found from the connected route 10.77.0.0/24 on va.
	params := map[string]string{"ip": vip.String(), "label": "ha", "arp_interval": "20ms"}

	if r := exec("start", params); !r.OK() {
		t.Fatalf("start: %s\n%s", r.Summary(), r.Stdout)
	}
	if out := a.Run(t, "ip", "-4", "addr", "show", "dev", "va"); !strings.Contains(out, "10.77.0.100/24") || !strings.Contains(out, "va:ha") {
		t.Fatalf("address or label missing on va:\n%s", out)
	}
	mac := ifMAC(t, a, "va")
	// 5 announcements, each a request and a reply.
	testutil.WaitFor(t, 5*time.Second, "10 gratuitous ARP packets in the peer namespace", func() bool { return cap.gratuitous(vip, mac) >= 10 })
	if r := exec("monitor", params); r.RC != lrmd.RCOK {
		t.Fatalf("monitor while started: %s", r.Summary())
	}
	if r := exec("start", params); !r.OK() {
		t.Fatalf("second start (idempotent): %s", r.Summary())
	}
	if r := exec("stop", params); !r.OK() {
		t.Fatalf("stop: %s", r.Summary())
	}
	if out := a.Run(t, "ip", "-4", "addr", "show", "dev", "va"); strings.Contains(out, "10.77.0.100") {
		t.Fatalf("stop left the address:\n%s", out)
	}
	if r := exec("monitor", params); r.RC != lrmd.RCNotRunning {
		t.Fatalf("monitor after stop: %s, want not running", r.Summary())
	}
	if r := exec("stop", params); !r.OK() {
		t.Fatalf("second stop (idempotent): %s", r.Summary())
	}

	// The peer takes the address: with probe on, the start must see it
	// and refuse.
	b.Run(t, "ip", "addr", "add", "10.77.0.100/24", "dev", "vb")
	peer := ifMAC(t, b, "vb")
	r := exec("start", map[string]string{"ip": vip.String(), "nic": "va", "cidr_netmask": "24", "probe": "true"})
	if r.RC != lrmd.RCErrGeneric || !strings.Contains(r.Reason, peer.String()) {
		t.Fatalf("start with a duplicate on the link: %s; want rc 1 naming %s", r.Summary(), peer)
	}
	if out := a.Run(t, "ip", "-4", "addr", "show", "dev", "va"); strings.Contains(out, "10.77.0.100") {
		t.Fatalf("start added a duplicate address:\n%s", out)
	}

	// A nic that does not exist here is a hard error for this node.
	if r := exec("start", map[string]string{"ip": "10.77.0.101", "nic": "nope0"}); r.RC != lrmd.RCErrArgs {
		t.Fatalf("start on a missing nic: %s, want rc 2", r.Summary())
	}
	// No connected route and no nic: configuration error.
	if r := exec("start", map[string]string{"ip": "192.0.2.1"}); r.RC != lrmd.RCErrConfigured {
		t.Fatalf("start without a route: %s, want rc 6", r.Summary())
	}
}

// TestLVSRealServerInNamespace needs root: sysctls and lo address in a
// namespace, leaving the host alone.
func TestLVSRealServerInNamespace(t *testing.T) {
	roottest.Require(t)
	ns := roottest.NewNS(t, "rs")
	k, err := NewKernel(ns.Handle)
	if err != nil {
		t.Fatal(err)
	}
	cls := lrmd.NewBuiltins(NewRealServer(k))
	exec := func(action string) lrmd.Result {
		return cls.Exec(context.Background(), lrmd.Request{Agent: lrmd.AgentID{Class: "builtin", Type: "lvs-realserver"}, Action: action, Params: map[string]string{"vip": "10.78.0.100"}})
	}
	if r := exec("monitor"); r.RC != lrmd.RCNotRunning {
		t.Fatalf("monitor before start: %s", r.Summary())
	}
	if r := exec("start"); !r.OK() {
		t.Fatalf("start: %s", r.Summary())
	}
	if v := strings.TrimSpace(ns.Run(t, "sysctl", "-n", "net.ipv4.conf.all.arp_ignore")); v != "1" {
		t.Fatalf("arp_ignore in namespace = %s", v)
	}
	if v := strings.TrimSpace(ns.Run(t, "sysctl", "-n", "net.ipv4.conf.all.arp_announce")); v != "2" {
		t.Fatalf("arp_announce in namespace = %s", v)
	}
	if out := ns.Run(t, "ip", "-4", "addr", "show", "dev", "lo"); !strings.Contains(out, "10.78.0.100/32") {
		t.Fatalf("VIP not on lo:\n%s", out)
	}
	if r := exec("monitor"); r.RC != lrmd.RCOK {
		t.Fatalf("monitor: %s", r.Summary())
	}
	ns.Run(t, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=0")
	if r := exec("monitor"); r.RC != lrmd.RCErrGeneric {
		t.Fatalf("monitor with arp_ignore reset: %s, want rc 1", r.Summary())
	}
	if r := exec("stop"); !r.OK() {
		t.Fatalf("stop: %s", r.Summary())
	}
	if r := exec("monitor"); r.RC != lrmd.RCNotRunning {
		t.Fatalf("monitor after stop: %s", r.Summary())
	}
}
