package nft

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"ringmaster/lrmd/agents/lvs"
	"ringmaster/lrmd/internal/roottest"
)

// TestKernelApplyListRemove needs root: it programs nftables in a fresh
// network namespace and reads the rules back, through this backend and
// through nft(8).
func TestKernelApplyListRemove(t *testing.T) {
	roottest.Require(t)
	if _, err := exec.LookPath("nft"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("nft(8) missing: install Debian package nftables")
		}
		t.Skip("nft(8) missing (Debian package nftables)")
	}
	ns := roottest.NewNS(t, "nft")
	b, err := New(WithNetNS(int(ns.Handle)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	web := svc("TCP 10.0.0.100:80", "rr", "10.0.1.1:8080,10.0.1.2:8080", func(s *lvs.Service) { s.Masquerade = true })
	dns := svc("UDP 10.0.0.100:53", "wrr", "10.0.1.1:53:3,10.0.1.2:53:1")
	cache := svc("TCP 10.0.0.100:3128", "sh", "10.0.1.1:3128,10.0.1.2:3128:3")
	one := svc("FWM 9", "fo", "10.0.1.1,10.0.1.2:0:2")
	for _, s := range []lvs.Service{web, dns, cache, one, web} { // web twice: idempotent
		if err := b.Apply(ctx, s); err != nil {
			t.Fatalf("apply %s: %v", s.Key, err)
		}
	}
	listed := func() string {
		t.Helper()
		svcs, err := b.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		for _, s := range svcs {
			sb.WriteString(lvs.Render(s))
		}
		return sb.String()
	}
	want := `FWM 9 fo nat
  -> 10.0.1.2:0 weight 1
TCP 10.0.0.100:3128 sh nat
  -> 10.0.1.1:3128 weight 1
  -> 10.0.1.2:3128 weight 3
TCP 10.0.0.100:80 rr nat masquerade
  -> 10.0.1.1:8080 weight 1
  -> 10.0.1.2:8080 weight 1
UDP 10.0.0.100:53 wrr nat
  -> 10.0.1.1:53 weight 3
  -> 10.0.1.2:53 weight 1
`
	if got := listed(); got != want {
		t.Fatalf("read back:\n%s\nwant:\n%s", got, want)
	}
	ruleset := ns.Run(t, "nft", "list", "table", "ip", TableName)
	for _, frag := range []string{
		`ip daddr 10.0.0.100 tcp dport 80 dnat ip to numgen inc mod 2 map @lvs_`,
		`elements = { 0 : 10.0.1.1 . 8080, 1 : 10.0.1.2 . 8080 }`,
		`comment "ringmaster-lvs TCP 10.0.0.100:80 rr nat masq"`,
		`meta mark 0x00000009 dnat to 10.0.1.2 comment "ringmaster-lvs FWM 9 fo nat"`,
		`meta l4proto tcp ct original ip daddr 10.0.0.100 ct original proto-dst 80 masquerade`,
		`jhash ip saddr mod 256 seed 0x`,
	} {
		if !strings.Contains(ruleset, frag) {
			t.Errorf("nft list lacks %q:\n%s", frag, ruleset)
		}
	}
	if n := strings.Count(ruleset, "TCP 10.0.0.100:80 "); n != 3 {
		t.Errorf("re-apply duplicated rules: %d rules for web, want 3 (prerouting, output, postrouting)", n)
	}
	if n := strings.Count(ruleset, "map lvs_"); n != 6 {
		t.Errorf("%d maps, want 6 (rr, wrr, sh in two chains each; re-apply must delete the old map):\n%s", n, ruleset)
	}
	// Change one service: only it changes.
	web.Dests = web.Dests[:1]
	web.Masquerade = false
	if err := b.Apply(ctx, web); err != nil {
		t.Fatal(err)
	}
	for _, k := range []lvs.Key{dns.Key, one.Key, cache.Key} {
		if err := b.Remove(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Remove(ctx, dns.Key); err != nil {
		t.Fatalf("removing an absent service: %v", err)
	}
	if got, want := listed(), "TCP 10.0.0.100:80 rr nat\n  -> 10.0.1.1:8080 weight 1\n"; got != want {
		t.Fatalf("after changes:\n%s\nwant:\n%s", got, want)
	}
	if err := b.Remove(ctx, web.Key); err != nil {
		t.Fatal(err)
	}
	if got := listed(); got != "" {
		t.Fatalf("after removing everything:\n%s", got)
	}
	if rs := ns.Run(t, "nft", "list", "table", "ip", TableName); strings.Contains(rs, "lvs_") || strings.Contains(rs, "masquerade") {
		t.Fatalf("rules or maps left behind:\n%s", rs)
	}
}
