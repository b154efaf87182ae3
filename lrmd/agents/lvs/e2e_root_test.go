package lvs_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"ringmaster/internal/testutil"
	"ringmaster/lrmd"
	"ringmaster/lrmd/agents/lvs"
	"ringmaster/lrmd/agents/lvs/nft"
	"ringmaster/lrmd/health"
	"ringmaster/lrmd/internal/netnsx"
	"ringmaster/lrmd/internal/roottest"
)

// realServer is an HTTP server in a namespace answering its name.
type realServer struct {
	ns   *roottest.NS
	addr string
	name string
	srv  *http.Server
}

func (r *realServer) start(t *testing.T) {
	t.Helper()
	l, err := netnsx.Listen(r.ns.Handle, "tcp", r.addr)
	if err != nil {
		t.Fatalf("listen %s in %s: %v", r.addr, r.ns.Name, err)
	}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, r.name) })}
	go r.srv.Serve(l)
}

func (r *realServer) stop() {
	if r.srv != nil {
		r.srv.Close()
		r.srv = nil
	}
}

// TestLVSNftablesEndToEnd needs root: a client namespace talks to a VIP on
// a director namespace, which spreads connections over two real-server
// namespaces with builtin:lvs (nftables backend, rr) run by an lrmd
// Manager, with TCP health checks that take a stopped server out and put
// it back when it returns.
func TestLVSNftablesEndToEnd(t *testing.T) {
	roottest.Require(t)
	c, d := roottest.NewNS(t, "lvc"), roottest.NewNS(t, "lvd")
	r1, r2 := roottest.NewNS(t, "lvr1"), roottest.NewNS(t, "lvr2")
	roottest.Veth(t, c, "c0", "10.79.80.2/24", d, "d0", "10.79.80.1/24")
	roottest.Veth(t, d, "d1", "10.79.81.1/24", r1, "r1", "10.79.81.2/24")
	roottest.Veth(t, d, "d2", "10.79.82.1/24", r2, "r2", "10.79.82.2/24")
	c.Run(t, "ip", "route", "add", "default", "via", "10.79.80.1")
	r1.Run(t, "ip", "route", "add", "default", "via", "10.79.81.1")
	r2.Run(t, "ip", "route", "add", "default", "via", "10.79.82.1")
	d.Run(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	d.Run(t, "ip", "addr", "add", "10.79.80.100/32", "dev", "d0")

	rs1 := &realServer{ns: r1, addr: "10.79.81.2:8080", name: "rs1"}
	rs2 := &realServer{ns: r2, addr: "10.79.82.2:8080", name: "rs2"}
	rs1.start(t)
	rs2.start(t)
	t.Cleanup(func() { rs1.stop(); rs2.stop() })

	be, err := nft.New(nft.WithNetNS(int(d.Handle)))
	if err != nil {
		t.Fatal(err)
	}
	ag := lvs.New(lvs.Config{
		Backends:   []lvs.BackendFactory{{Name: "nftables", Open: func() (lvs.Backend, error) { return be, nil }}},
		RunDir:     t.TempDir(),
		Dial:       netnsx.Dial(d.Handle),
		Persistent: true,
		Log:        t.Logf,
	})
	reg := lrmd.NewRegistry(lrmd.NewBuiltins(ag))
	m, err := lrmd.NewManager(lrmd.Config{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); reg.Close() })
	p := map[string]string{
		"vip": "10.79.80.100", "port": "80", "scheduler": "rr", "method": "nat", "backend": "nftables",
		"realservers": "10.79.81.2:8080,10.79.82.2:8080",
		"check":       "tcp", "check_interval": "100ms", "check_timeout": "500ms", "rise": "1", "fall": "1",
	}
	exec := func(action string) lrmd.Result {
		return m.Exec(context.Background(), lrmd.Op{Resource: "web", Agent: "builtin:lvs", Action: action, Params: p})
	}
	if r := exec("start"); !r.OK() {
		t.Fatalf("start: %s\n%s", r.Summary(), r.Stdout)
	}

	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: netnsx.Dial(c.Handle), DisableKeepAlives: true}}
	get := func() string {
		resp, err := client.Get("http://10.79.80.100/")
		if err != nil {
			return "error"
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	requests := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = get()
		}
		return out
	}
	got := requests(20)
	for i, g := range got {
		if g == "error" || (i > 0 && g == got[i-1]) {
			t.Fatalf("20 requests with rr: %v; want rs1 and rs2 alternating", got)
		}
	}

	key := lvs.Key{Proto: "tcp", VIP: netip.MustParseAddr("10.79.80.100"), Port: 80}
	rs1Addr := netip.MustParseAddrPort(rs1.addr)
	waitHealth := func(want health.State) {
		t.Helper()
		testutil.WaitFor(t, 10*time.Second, "rs1 to be "+want.String(), func() bool { return ag.Health(key)[rs1Addr] == want })
	}
	rs1.stop()
	waitHealth(health.Down)
	if got := requests(10); strings.Count(strings.Join(got, " "), "rs2") != 10 {
		t.Fatalf("with rs1 down: %v; want all rs2", got)
	}
	rs1.start(t)
	waitHealth(health.Up)
	got = requests(10)
	if j := strings.Join(got, " "); !strings.Contains(j, "rs1") || !strings.Contains(j, "rs2") || strings.Contains(j, "error") {
		t.Fatalf("after rs1 came back: %v; want both", got)
	}
	if r := exec("monitor"); r.RC != lrmd.RCOK {
		t.Fatalf("monitor: %s", r.Summary())
	}
	if r := exec("stop"); !r.OK() {
		t.Fatalf("stop: %s", r.Summary())
	}
	if r := exec("monitor"); r.RC != lrmd.RCNotRunning {
		t.Fatalf("monitor after stop: %s", r.Summary())
	}
	if g := get(); g != "error" {
		t.Fatalf("request after stop reached %q; want no service", g)
	}
}
