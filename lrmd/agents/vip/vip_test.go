package vip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/arp"

	"ringmaster/lrmd"
)

// fakeKernel is an in-memory Kernel for the agents' logic.
type fakeKernel struct {
	mu     sync.Mutex
	links  []Link
	addrs  []Addr
	routes []Route
	sysctl map[string]string
	// answer, when set, is the MAC that "owns" the probed address.
	answer net.HardwareAddr
	sent   []*arp.Packet
}

func newFake() *fakeKernel {
	return &fakeKernel{
		links: []Link{
			{Index: 1, Name: "lo", Up: true, Loopback: true},
			{Index: 2, Name: "eth0", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, Up: true},
			{Index: 3, Name: "eth1", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 3}},
		},
		routes: []Route{
			{Dst: netip.MustParsePrefix("192.0.2.0/24"), Link: 2},
			{Dst: netip.MustParsePrefix("192.0.2.128/25"), Link: 3},
			{Dst: netip.MustParsePrefix("198.51.100.0/24"), Link: 2},
		},
		sysctl: map[string]string{},
	}
}

func (f *fakeKernel) LinkByName(n string) (Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.links {
		if l.Name == n {
			return l, nil
		}
	}
	return Link{}, fmt.Errorf("%w %q", ErrNoLink, n)
}

func (f *fakeKernel) LinkByIndex(i int) (Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.links {
		if l.Index == i {
			return l, nil
		}
	}
	return Link{}, ErrNoLink
}

func (f *fakeKernel) SetLinkUp(l Link) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.links {
		if f.links[i].Index == l.Index {
			f.links[i].Up = true
		}
	}
	return nil
}

func (f *fakeKernel) Addrs() ([]Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Addr(nil), f.addrs...), nil
}

func (f *fakeKernel) AddAddr(l Link, p netip.Prefix, label string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addrs = append(f.addrs, Addr{Prefix: p, Label: label, Link: l.Index})
	return nil
}

func (f *fakeKernel) DelAddr(l Link, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, a := range f.addrs {
		if a.Link == l.Index && a.Prefix == p {
			f.addrs = append(f.addrs[:i], f.addrs[i+1:]...)
			break
		}
	}
	return nil
}

func (f *fakeKernel) LinkRoutes() ([]Route, error)    { return f.routes, nil }
func (f *fakeKernel) OpenARP(l Link) (ARPConn, error) { return &fakeARP{k: f, mac: l.MAC}, nil }
func (f *fakeKernel) Sysctl(p string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sysctl[p], nil
}
func (f *fakeKernel) SetSysctl(p, v string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sysctl[p] = v
	return nil
}
func (f *fakeKernel) sentCount() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.sent) }

type fakeARP struct {
	k       *fakeKernel
	mac     net.HardwareAddr
	pending []*arp.Packet
}

func (c *fakeARP) Send(p *arp.Packet) error {
	c.k.mu.Lock()
	defer c.k.mu.Unlock()
	c.k.sent = append(c.k.sent, p)
	// Our own packet is seen on the way out, as on a real packet socket.
	c.pending = append(c.pending, p)
	if c.k.answer != nil && p.SenderIP == netip.IPv4Unspecified() {
		r, _ := arp.NewPacket(arp.OperationReply, c.k.answer, p.TargetIP, c.mac, netip.IPv4Unspecified())
		c.pending = append(c.pending, r)
	}
	return nil
}

func (c *fakeARP) Receive(time.Time) (*arp.Packet, error) {
	c.k.mu.Lock()
	defer c.k.mu.Unlock()
	if len(c.pending) == 0 {
		return nil, os.ErrDeadlineExceeded
	}
	p := c.pending[0]
	c.pending = c.pending[1:]
	return p, nil
}

func (c *fakeARP) Close() error { return nil }

func TestParseConfig(t *testing.T) {
	c, err := parseConfig(map[string]string{"ip": "192.0.2.10", "cidr_netmask": "255.255.255.0", "nic": "eth0:web", "arp_interval": "50"})
	if err != nil || c.bits != 24 || c.nic != "eth0" || c.label != "web" || c.arpInterval != 50*time.Millisecond || c.arpCount != 5 || c.probe {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []map[string]string{
		{"ip": "2001:db8::1"}, {"ip": "nope"}, {"ip": "192.0.2.1", "cidr_netmask": "33"},
		{"ip": "192.0.2.1", "cidr_netmask": "255.0.255.0"}, {"ip": "192.0.2.1", "arp_count": "-1"},
	} {
		if _, err := parseConfig(bad); !errors.Is(err, ErrConfig) {
			t.Errorf("%v: %v", bad, err)
		}
	}
	if _, err := makeLabel("eth0", "averyverylonglabel"); !errors.Is(err, ErrConfig) {
		t.Errorf("long label accepted")
	}
}

func run(a *Agent, action string, p map[string]string) lrmd.Result {
	return lrmd.NewBuiltins(a).Exec(context.Background(), lrmd.Request{Agent: lrmd.AgentID{Class: "builtin", Type: "vip"}, Action: action, Params: p})
}

func TestStartFindsInterfaceAndAnnounces(t *testing.T) {
	k := newFake()
	a := New(k)
	// 192.0.2.200 is in 192.0.2.0/24 (eth0) and 192.0.2.128/25 (eth1): the longer prefix wins.
	r := run(a, "start", map[string]string{"ip": "192.0.2.200", "arp_count": "3", "arp_interval": "1ms", "label": "v", "probe": "true"})
	if !r.OK() {
		t.Fatalf("start: %s", r.Summary())
	}
	a.Close() // waits for the background announcements
	addrs, _ := k.Addrs()
	if len(addrs) != 1 || addrs[0].Link != 3 || addrs[0].Prefix.String() != "192.0.2.200/25" || addrs[0].Label != "eth1:v" {
		t.Fatalf("addresses %+v", addrs)
	}
	if l, _ := k.LinkByName("eth1"); !l.Up {
		t.Fatal("eth1 was not brought up")
	}
	// 3 probes + 3 announcements of request and reply each.
	if n := k.sentCount(); n != 3+6 {
		t.Fatalf("sent %d ARP packets, want 9", n)
	}
	if r := run(a, "monitor", map[string]string{"ip": "192.0.2.200"}); r.RC != lrmd.RCOK {
		t.Fatalf("monitor %s", r.Summary())
	}
	if r := run(a, "monitor", map[string]string{"ip": "192.0.2.200", "nic": "eth0"}); r.RC != lrmd.RCNotRunning {
		t.Fatalf("monitor on the other nic: %s", r.Summary())
	}
	if r := run(a, "start", map[string]string{"ip": "192.0.2.200", "nic": "eth0"}); r.RC != lrmd.RCErrGeneric {
		t.Fatalf("start on another nic while configured elsewhere: %s", r.Summary())
	}
	if r := run(a, "stop", map[string]string{"ip": "192.0.2.200"}); !r.OK() {
		t.Fatalf("stop %s", r.Summary())
	}
	if r := run(a, "monitor", map[string]string{"ip": "192.0.2.200"}); r.RC != lrmd.RCNotRunning {
		t.Fatalf("monitor after stop %s", r.Summary())
	}
}

func TestStartRefusesDuplicate(t *testing.T) {
	k := newFake()
	k.answer = net.HardwareAddr{2, 0xaa, 0, 0, 0, 9}
	a := New(k)
	r := run(a, "start", map[string]string{"ip": "198.51.100.7", "probe": "true"})
	if r.RC != lrmd.RCErrGeneric || !strings.Contains(r.Reason, "02:aa:00:00:00:09") {
		t.Fatalf("duplicate: %s", r.Summary())
	}
	if addrs, _ := k.Addrs(); len(addrs) != 0 {
		t.Fatalf("address added despite a duplicate: %v", addrs)
	}
	// Without probing it is taken (the operator asked for it).
	if r := run(a, "start", map[string]string{"ip": "198.51.100.7", "probe": "false", "arp_count": "0"}); !r.OK() {
		t.Fatalf("start without probe: %s", r.Summary())
	}
}

func TestRealServerFake(t *testing.T) {
	k := newFake()
	rs := NewRealServer(k)
	exec := func(action string) lrmd.Result {
		return lrmd.NewBuiltins(rs).Exec(context.Background(), lrmd.Request{Agent: lrmd.AgentID{Class: "builtin", Type: "lvs-realserver"}, Action: action, Params: map[string]string{"vip": "192.0.2.50"}})
	}
	if r := exec("start"); !r.OK() || k.sysctl[sysArpIgnore] != "1" || k.sysctl[sysArpAnnounce] != "2" {
		t.Fatalf("start: %s %v", r.Summary(), k.sysctl)
	}
	if addrs, _ := k.Addrs(); len(addrs) != 1 || addrs[0].Link != 1 || addrs[0].Prefix.Bits() != 32 {
		t.Fatalf("VIP on lo: %v", addrs)
	}
}
