package nft

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"ringmaster/internal/golden"
	"ringmaster/lrmd/agents/lvs"
)

func svc(key, sched string, dests string, mods ...func(*lvs.Service)) lvs.Service {
	k, err := lvs.ParseKey(key)
	if err != nil {
		panic(err)
	}
	ds, err := lvs.ParseRealServers(dests, k.Port)
	if err != nil {
		panic(err)
	}
	s := lvs.Service{Key: k, Scheduler: sched, Method: lvs.NAT, Dests: ds}
	for _, m := range mods {
		m(&s)
	}
	return s
}

// TestPlanGolden renders the rules for every scheduler the backend can
// express, and the error for what it cannot, and compares them with
// testdata/plans.golden.
func TestPlanGolden(t *testing.T) {
	cases := []struct {
		name string
		svc  lvs.Service
	}{
		{"rr", svc("TCP 10.0.0.100:80", "rr", "10.0.1.1:8080,10.0.1.2:8080,10.0.1.3:8080")},
		{"rr ignores weights, skips weight 0", svc("TCP 10.0.0.100:80", "rr", "10.0.1.1:8080:5,10.0.1.2:8080:0,10.0.1.3:8080:1")},
		{"wrr 3:1", svc("TCP 10.0.0.100:80", "wrr", "10.0.1.1:8080:3,10.0.1.2:8080:1")},
		{"wrr reduced by gcd", svc("UDP 10.0.0.100:53", "wrr", "10.0.1.1:53:2,10.0.1.2:53:4,10.0.1.3:53:6")},
		{"sh", svc("TCP 10.0.0.100:443", "sh", "10.0.1.1:443:1,10.0.1.2:443:3")},
		{"dh", svc("TCP 10.0.0.100:3128", "dh", "10.0.1.1:3128,10.0.1.2:3128")},
		{"mh", svc("TCP 10.0.0.100:80", "mh", "10.0.1.1:80,10.0.1.2:80,10.0.1.3:80")},
		{"fo picks the highest weight", svc("TCP 10.0.0.100:80", "fo", "10.0.1.1:80:1,10.0.1.2:80:5,10.0.1.3:80:5")},
		{"single server", svc("TCP 10.0.0.100:80", "rr", "10.0.1.1:8080")},
		{"no usable server", svc("TCP 10.0.0.100:80", "rr", "10.0.1.1:8080:0")},
		{"fwmark keeps the client's port", svc("FWM 7", "rr", "10.0.1.1,10.0.1.2")},
		{"masquerade", svc("TCP 10.0.0.100:80", "rr", "10.0.1.1:8080,10.0.1.2:8080", func(s *lvs.Service) { s.Masquerade = true })},
		{"dr is not expressible", svc("TCP 10.0.0.100:80", "rr", "10.0.1.1:80", func(s *lvs.Service) { s.Method = lvs.DR })},
		{"persistence is not expressible", svc("TCP 10.0.0.100:80", "rr", "10.0.1.1:80", func(s *lvs.Service) { s.Persistence = 300 })},
		{"IPv6 is not expressible", svc("TCP [2001:db8::1]:80", "rr", "[2001:db8::2]:80")},
	}
	for _, sched := range lvs.Schedulers {
		if !slices.Contains(Supported, sched) {
			cases = append(cases, struct {
				name string
				svc  lvs.Service
			}{sched + " is not expressible", svc("TCP 10.0.0.100:80", sched, "10.0.1.1:80")})
		}
	}
	var b strings.Builder
	for _, c := range cases {
		fmt.Fprintf(&b, "=== %s\n", c.name)
		p, err := buildPlan(c.svc)
		if err != nil {
			fmt.Fprintf(&b, "error: %v\n", err)
			continue
		}
		b.WriteString(p.Text())
	}
	golden.File(t, "testdata/plans.golden", b.String())
}

// TestWeightedTables checks the distribution properties the golden file
// only shows: bucket shares follow the weights, and Maglev moves few
// slots when a server leaves.
func TestWeightedTables(t *testing.T) {
	a, b, c := netip.MustParseAddrPort("10.0.1.1:80"), netip.MustParseAddrPort("10.0.1.2:80"), netip.MustParseAddrPort("10.0.1.3:80")
	count := func(es []netip.AddrPort) map[netip.AddrPort]int {
		m := map[netip.AddrPort]int{}
		for _, e := range es {
			m[e]++
		}
		return m
	}
	sh := count(weightedTable([]lvs.Dest{{Addr: a, Weight: 1}, {Addr: b, Weight: 3}}, hashBuckets))
	if sh[a] != 64 || sh[b] != 192 {
		t.Errorf("sh table shares %v, want 64/192", sh)
	}
	three := maglevTable([]lvs.Dest{{Addr: a, Weight: 1}, {Addr: b, Weight: 1}, {Addr: c, Weight: 1}}, maglevBuckets)
	mc := count(three)
	for _, d := range []netip.AddrPort{a, b, c} {
		if mc[d] < 80 || mc[d] > 88 {
			t.Errorf("maglev share of %s = %d of 251, want about a third", d, mc[d])
		}
	}
	two := maglevTable([]lvs.Dest{{Addr: a, Weight: 1}, {Addr: b, Weight: 1}}, maglevBuckets)
	moved := 0
	for i := range three {
		if three[i] != c && three[i] != two[i] {
			moved++
		}
	}
	if moved > 25 {
		t.Errorf("removing one of three servers moved %d slots of the survivors, want few", moved)
	}
	if ws := weightsFromEntries(wrrSequence([]lvs.Dest{{Addr: a, Weight: 6}, {Addr: b, Weight: 2}})); ws[0].Weight != 3 || ws[1].Weight != 1 {
		t.Errorf("weights read back from a wrr map: %v", ws)
	}
}
