package ipvs

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	mipvs "github.com/moby/ipvs"

	"ringmaster/lrmd"
	"ringmaster/lrmd/agents/lvs"
	"ringmaster/lrmd/internal/roottest"
)

func absent(string) error  { return syscall.ENOENT }
func present(string) error { return nil }

func TestAvailableNamesTheModule(t *testing.T) {
	err := Available(absent)
	if !errors.Is(err, ErrNoIPVS) || !errors.Is(err, lvs.ErrUnavailable) || !strings.Contains(err.Error(), "ip_vs") {
		t.Fatalf("family absent: %v; want ErrNoIPVS naming ip_vs", err)
	}
	if err := Available(present); err != nil {
		t.Fatalf("family present: %v", err)
	}
	if _, err := Open("", absent); !errors.Is(err, ErrNoIPVS) {
		t.Fatalf("Open with the family absent: %v", err)
	}
}

// TestAgentReportsMissingIPVS drives builtin:lvs with backend=ipvs on a
// kernel without IPVS (simulated), and with auto, which must fall back.
func TestAgentReportsMissingIPVS(t *testing.T) {
	fake := lvs.NewFake()
	ag := lvs.New(lvs.Config{RunDir: t.TempDir(), Backends: []lvs.BackendFactory{
		{Name: "ipvs", Open: func() (lvs.Backend, error) { return Open("", absent) }},
		{Name: "nftables", Open: func() (lvs.Backend, error) { return fake, nil }},
	}})
	m, err := lrmd.NewManager(lrmd.Config{Registry: lrmd.NewRegistry(lrmd.NewBuiltins(ag))})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	exec := func(backend string) lrmd.Result {
		return m.Exec(context.Background(), lrmd.Op{Resource: "s", Agent: "builtin:lvs", Action: "start", Params: map[string]string{
			"vip": "10.0.0.1", "port": "80", "scheduler": "rr", "realservers": "10.0.1.1:80", "check": "none", "backend": backend}})
	}
	r := exec("ipvs")
	if r.RC != lrmd.RCErrInstalled || !strings.Contains(r.Reason, "ip_vs") {
		t.Fatalf("backend=ipvs without kernel IPVS: %s; want rc 5 naming ip_vs", r.Summary())
	}
	r = exec("auto")
	if !r.OK() || !strings.Contains(r.Stdout, "chose nftables") || !strings.Contains(r.Stdout, "ip_vs") {
		t.Fatalf("backend=auto without kernel IPVS: %s\n%s", r.Summary(), r.Stdout)
	}
}

// TestKernelBranch asserts the right behaviour for this kernel, whichever
// it is: without IPVS, Open fails with the clear message; with it, a
// service round-trips through IPVS in a scratch namespace (root only).
func TestKernelBranch(t *testing.T) {
	if err := KernelFamily("IPVS"); err != nil {
		_, err := Open("", nil)
		if !errors.Is(err, ErrNoIPVS) || !strings.Contains(err.Error(), "modprobe ip_vs") {
			t.Fatalf("kernel without IPVS: Open gave %v; want the ip_vs message", err)
		}
		t.Logf("kernel has no IPVS; got the expected error: %v", err)
		// And through the agent, as `ringctl agent exec builtin:lvs start
		// --param backend=ipvs` would run it.
		ag := lvs.New(lvs.Config{RunDir: t.TempDir(), Backends: []lvs.BackendFactory{
			{Name: "ipvs", Open: func() (lvs.Backend, error) { return Open("", nil) }}}})
		r := lrmd.NewBuiltins(ag).Exec(context.Background(), lrmd.Request{Agent: lrmd.AgentID{Class: "builtin", Type: "lvs"}, Action: "start",
			Params: map[string]string{"vip": "10.0.0.1", "port": "80", "realservers": "10.0.1.1:80", "check": "none", "backend": "ipvs"}})
		if r.RC != lrmd.RCErrInstalled || !strings.Contains(r.Reason, "ip_vs") {
			t.Fatalf("start with backend=ipvs: %s; want rc 5 naming ip_vs", r.Summary())
		}
		return
	}
	roottest.Require(t)
	ns := roottest.NewNS(t, "ipvs")
	b, err := Open("/var/run/netns/"+ns.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	k := lvs.Key{Proto: "tcp", VIP: netip.MustParseAddr("10.0.0.100"), Port: 80}
	svc := lvs.Service{Key: k, Scheduler: "wlc", Method: lvs.NAT, Dests: []lvs.Dest{
		{Addr: netip.MustParseAddrPort("10.0.1.1:8080"), Weight: 2}, {Addr: netip.MustParseAddrPort("10.0.1.2:8080"), Weight: 0}}}
	for range 2 {
		if err := b.Apply(ctx, svc); err != nil {
			t.Fatal(err)
		}
	}
	svcs, err := b.List(ctx)
	if err != nil || len(svcs) != 1 || lvs.Render(svcs[0]) != lvs.Render(svc) {
		t.Fatalf("read back %v %v", svcs, err)
	}
	if err := b.Remove(ctx, k); err != nil {
		t.Fatal(err)
	}
	if svcs, _ := b.List(ctx); len(svcs) != 0 {
		t.Fatalf("left %v", svcs)
	}
}

func TestToKernel(t *testing.T) {
	s, ds := ToKernel(lvs.Service{Key: lvs.Key{Proto: "udp", VIP: netip.MustParseAddr("10.0.0.1"), Port: 53}, Scheduler: "sh", Method: lvs.DR, Persistence: 300,
		Dests: []lvs.Dest{{Addr: netip.MustParseAddrPort("10.0.1.1:53"), Weight: 4}}})
	if s.Protocol != syscall.IPPROTO_UDP || s.Port != 53 || s.SchedName != "sh" || s.Flags&svcFlagPersistent == 0 || s.Timeout != 300 {
		t.Fatalf("service %+v", s)
	}
	if len(ds) != 1 || ds[0].ConnectionFlags != mipvs.ConnectionFlagDirectRoute || ds[0].Weight != 4 || ds[0].Port != 53 {
		t.Fatalf("destinations %+v", ds)
	}
	fw, _ := ToKernel(lvs.Service{Key: lvs.Key{Proto: "fwm", FWMark: 7}, Scheduler: "rr", Method: lvs.Tunnel})
	if fw.FWMark != 7 || fw.Address != nil {
		t.Fatalf("fwmark service %+v", fw)
	}
	if back := fromKernel(s, ds); back.Method != lvs.DR || back.Persistence != 300 || back.Key.String() != "UDP 10.0.0.1:53" {
		t.Fatalf("round trip %+v", back)
	}
	if err := Check(lvs.Service{Scheduler: "rr", Masquerade: true}); !errors.Is(err, lvs.ErrUnsupported) {
		t.Fatalf("masquerade on ipvs: %v", err)
	}
}
