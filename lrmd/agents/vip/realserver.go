package vip

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"ringmaster/lrmd"
)

// RealServer is builtin:lvs-realserver: it prepares a real server of an
// LVS direct-routing (or tunnel) service. The director forwards packets
// still addressed to the VIP, so the real server must accept the VIP
// locally (an address on lo) without ever answering ARP for it, or
// clients' routers would send traffic around the director. That is what
// arp_ignore=1 (answer only for addresses on the receiving interface) and
// arp_announce=2 (never use the VIP as ARP source) do; the kernel uses the
// maximum of conf/all and conf/<nic>, so setting conf/all is enough.
//
// stop removes the VIP from lo but leaves the sysctls: other VIPs may rely
// on them, and they are harmless without a VIP.
type RealServer struct {
	k  Kernel
	md *lrmd.MetaData
}

// NewRealServer returns builtin:lvs-realserver acting through k.
func NewRealServer(k Kernel) *RealServer {
	return &RealServer{k: k, md: lrmd.NewMetaData("lvs-realserver", "LVS direct-routing real server: VIP on lo, no ARP for it",
		"Adds the service VIP as a /32 on the loopback interface and sets net.ipv4.conf.all.arp_ignore and arp_announce so this host accepts packets for the VIP forwarded by an LVS-DR director but never answers ARP for it.",
		[]lrmd.ParamSpec{
			{Name: "vip", Required: true, Short: "The virtual service address (IPv4)"},
			{Name: "arp_ignore", Type: "integer", Default: "1", Short: "Value for net.ipv4.conf.all.arp_ignore"},
			{Name: "arp_announce", Type: "integer", Default: "2", Short: "Value for net.ipv4.conf.all.arp_announce"},
		},
		[]lrmd.Action{
			{Name: "start", Timeout: "20s"},
			{Name: "stop", Timeout: "20s"},
			{Name: "monitor", Timeout: "20s", Interval: "30s"},
			{Name: "validate-all", Timeout: "20s"},
			{Name: "meta-data", Timeout: "5s"},
		})}
}

// Type implements lrmd.Builtin.
func (r *RealServer) Type() string { return "lvs-realserver" }

// MetaData implements lrmd.Builtin.
func (r *RealServer) MetaData() *lrmd.MetaData { return r.md }

const (
	sysArpIgnore   = "net/ipv4/conf/all/arp_ignore"
	sysArpAnnounce = "net/ipv4/conf/all/arp_announce"
)

// Exec implements lrmd.Builtin.
func (r *RealServer) Exec(_ context.Context, req lrmd.Request) lrmd.Result {
	var out lrmd.Output
	vip, err := netip.ParseAddr(strings.TrimSpace(req.Params["vip"]))
	if err != nil || !vip.Is4() {
		return out.Result(lrmd.RCErrConfigured, fmt.Sprintf("vip=%q is not an IPv4 address", req.Params["vip"]))
	}
	want := map[string]string{sysArpIgnore: req.Params["arp_ignore"], sysArpAnnounce: req.Params["arp_announce"]}
	for k, v := range want {
		if n, err := strconv.Atoi(v); err != nil || n < 0 || n > 8 {
			return out.Result(lrmd.RCErrConfigured, fmt.Sprintf("%s=%q out of range", k, v))
		}
	}
	lo, err := r.k.LinkByName("lo")
	if err != nil {
		return out.Result(lrmd.RCErrGeneric, err.Error())
	}
	p := netip.PrefixFrom(vip, 32)
	onLo := func() (bool, error) {
		addrs, err := r.k.Addrs()
		if err != nil {
			return false, err
		}
		for _, a := range addrs {
			if a.Link == lo.Index && a.Prefix.Addr() == vip {
				return true, nil
			}
		}
		return false, nil
	}
	switch req.Action {
	case lrmd.ActionStart:
		for _, k := range []string{sysArpIgnore, sysArpAnnounce} {
			// Sysctls first: the VIP must never be on lo while this host
			// would still answer ARP for it.
			if err := r.k.SetSysctl(k, want[k]); err != nil {
				return out.Result(lrmd.RCErrGeneric, fmt.Sprintf("set %s: %v", k, err))
			}
			out.Printf("%s = %s", strings.ReplaceAll(k, "/", "."), want[k])
		}
		if err := r.k.AddAddr(lo, p, ""); err != nil {
			return out.Result(lrmd.RCErrGeneric, err.Error())
		}
		out.Printf("added %s to lo", p)
		return out.Result(lrmd.RCOK, "")
	case lrmd.ActionStop:
		if err := r.k.DelAddr(lo, p); err != nil {
			return out.Result(lrmd.RCErrGeneric, err.Error())
		}
		out.Printf("removed %s from lo", p)
		return out.Result(lrmd.RCOK, "")
	case lrmd.ActionMonitor, lrmd.ActionStatus:
		ok, err := onLo()
		if err != nil {
			return out.Result(lrmd.RCErrGeneric, err.Error())
		}
		if !ok {
			return out.Result(lrmd.RCNotRunning, "")
		}
		for _, k := range []string{sysArpIgnore, sysArpAnnounce} {
			v, err := r.k.Sysctl(k)
			if err != nil {
				return out.Result(lrmd.RCErrGeneric, err.Error())
			}
			if have, _ := strconv.Atoi(v); have < atoi(want[k]) {
				// The VIP is up but this host may answer ARP for it:
				// traffic could bypass the director. That is a failure.
				return out.Result(lrmd.RCErrGeneric, fmt.Sprintf("%s is %s, want %s (ARP for the VIP would leak)", strings.ReplaceAll(k, "/", "."), v, want[k]))
			}
		}
		return out.Result(lrmd.RCOK, "")
	case lrmd.ActionValidateAll:
		return out.Result(lrmd.RCOK, "")
	}
	return out.Result(lrmd.RCErrUnimplemented, "lvs-realserver has no action "+req.Action)
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
