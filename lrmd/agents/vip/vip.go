// Package vip implements builtin:vip, ringmaster's IPaddr2: a virtual
// IPv4 address that moves between nodes, announced with gratuitous ARP and
// checked for duplicates (RFC 5227 probe) before it is taken; and
// builtin:lvs-realserver, which prepares an LVS-DR real server (VIP on lo,
// arp_ignore/arp_announce).
package vip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mdlayher/arp"

	"ringmaster/lrmd"
)

// Agent is builtin:vip. One Agent serves every vip resource of a process.
//
// Gratuitous ARP: the first announcement is sent before start returns
// (peers and switches learn the new location as early as possible); the
// remaining arp_count-1 follow every arp_interval in the background, as
// IPaddr2's send_arp does. stop cancels outstanding announcements for its
// address; Close waits for the rest, so a one-shot `ringctl agent exec`
// stays alive until all announcements are out.
type Agent struct {
	k  Kernel
	md *lrmd.MetaData

	mu      sync.Mutex
	pending map[netip.Addr]*announcement
	wg      sync.WaitGroup
}

// New returns the vip agent acting through k.
func New(k Kernel) *Agent {
	return &Agent{k: k, md: metaData(), pending: make(map[netip.Addr]*announcement)}
}

// Type implements lrmd.Builtin.
func (a *Agent) Type() string { return "vip" }

// MetaData implements lrmd.Builtin.
func (a *Agent) MetaData() *lrmd.MetaData { return a.md }

func metaData() *lrmd.MetaData {
	return lrmd.NewMetaData("vip", "Virtual IPv4 address with gratuitous ARP (IPaddr2)",
		"Adds an IPv4 address to an interface (optionally after making sure with an RFC 5227 ARP probe that no other host on the link answers for it) and announces it with gratuitous ARP so neighbours and switches update their caches at once.",
		[]lrmd.ParamSpec{
			{Name: "ip", Required: true, Unique: true, Short: "The IPv4 address (e.g. 192.168.1.100)"},
			{Name: "cidr_netmask", Type: "string", Short: "Prefix length (24) or dotted netmask; default: that of the connected route to ip, else 32"},
			{Name: "nic", Short: "Interface; default: the one with a directly connected route to ip"},
			{Name: "label", Short: "Address label: a suffix (\"vip\" gives nic:vip) or a full label starting with the interface name"},
			{Name: "arp_count", Type: "integer", Default: "5", Short: "Number of gratuitous ARP announcements (each a request and a reply); 0 disables"},
			{Name: "arp_interval", Type: "duration", Default: "200ms", Short: "Time between announcements (an integer is milliseconds, as in IPaddr2)"},
			{Name: "probe", Type: "boolean", Default: "false", Short: "Probe for a duplicate address (RFC 5227) before adding it: the start then refuses an address another host answers for, at the cost of probe_timeout on every start (off by default, as in IPaddr2 and keepalived: with fencing the previous holder is known to be gone)"},
			{Name: "probe_timeout", Type: "duration", Default: "300ms", Short: "How long to wait for an answer to the probes (three probes spread over this time; an integer is milliseconds)"},
		},
		[]lrmd.Action{
			{Name: "start", Timeout: "20s"},
			{Name: "stop", Timeout: "20s"},
			{Name: "monitor", Timeout: "20s", Interval: "10s"},
			{Name: "validate-all", Timeout: "20s"},
			{Name: "meta-data", Timeout: "5s"},
		})
}

// announcement is a running background announcer.
type announcement struct{ cancel context.CancelFunc }

// config is the parsed parameters.
type config struct {
	ip          netip.Addr
	bits        int // -1: not given
	nic         string
	label       string
	arpCount    int
	arpInterval time.Duration
	probe       bool
	probeWait   time.Duration
}

// ErrConfig wraps parameter errors (rc 6).
var ErrConfig = errors.New("invalid configuration")

func parseConfig(p map[string]string) (config, error) {
	c := config{bits: -1, nic: p["nic"], label: p["label"]}
	ip, err := netip.ParseAddr(strings.TrimSpace(p["ip"]))
	if err != nil || !ip.Is4() {
		return c, fmt.Errorf("%w: ip=%q is not an IPv4 address (use IPv6addr-style agents for IPv6)", ErrConfig, p["ip"])
	}
	c.ip = ip
	if m := strings.TrimSpace(p["cidr_netmask"]); m != "" {
		bits, err := ParseMask(m)
		if err != nil {
			return c, fmt.Errorf("%w: cidr_netmask: %v", ErrConfig, err)
		}
		c.bits = bits
	}
	if i := strings.IndexByte(c.nic, ':'); i >= 0 {
		// Legacy IPaddr "eth0:1" spelling: the part after ':' is a label.
		if c.label == "" {
			c.label = c.nic[i+1:]
		}
		c.nic = c.nic[:i]
	}
	if c.arpCount, err = strconv.Atoi(orDefault(p["arp_count"], "5")); err != nil || c.arpCount < 0 {
		return c, fmt.Errorf("%w: arp_count=%q", ErrConfig, p["arp_count"])
	}
	if c.arpInterval, err = ParseDuration(orDefault(p["arp_interval"], "200ms"), time.Millisecond); err != nil {
		return c, fmt.Errorf("%w: arp_interval: %v", ErrConfig, err)
	}
	c.probe = lrmd.IsTrue(orDefault(p["probe"], "false"))
	if c.probeWait, err = ParseDuration(orDefault(p["probe_timeout"], "300ms"), time.Millisecond); err != nil {
		return c, fmt.Errorf("%w: probe_timeout: %v", ErrConfig, err)
	}
	return c, nil
}

func orDefault(v, d string) string {
	if strings.TrimSpace(v) == "" {
		return d
	}
	return strings.TrimSpace(v)
}

// ParseMask accepts a prefix length ("24") or a dotted netmask
// ("255.255.255.0").
func ParseMask(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > 32 {
			return 0, fmt.Errorf("prefix length %d out of range 0-32", n)
		}
		return n, nil
	}
	ip := net.ParseIP(s).To4()
	if ip == nil {
		return 0, fmt.Errorf("%q is neither a prefix length nor a dotted netmask", s)
	}
	ones, bits := net.IPMask(ip).Size()
	if bits == 0 {
		return 0, fmt.Errorf("%q is not a contiguous netmask", s)
	}
	return ones, nil
}

// ParseDuration parses a Go duration ("200ms"); a bare integer is taken in
// unit (IPaddr2 and keepalived give such values as plain numbers).
func ParseDuration(s string, unit time.Duration) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return time.Duration(n) * unit, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration", s)
	}
	return d, nil
}

// Exec implements lrmd.Builtin.
func (a *Agent) Exec(ctx context.Context, req lrmd.Request) lrmd.Result {
	var out lrmd.Output
	c, err := parseConfig(req.Params)
	if err != nil {
		return out.Result(lrmd.RCErrConfigured, err.Error())
	}
	switch req.Action {
	case lrmd.ActionStart:
		return a.start(ctx, c, &out)
	case lrmd.ActionStop:
		return a.stop(c, &out)
	case lrmd.ActionMonitor, lrmd.ActionStatus:
		return a.monitor(c, &out)
	case lrmd.ActionValidateAll:
		if c.nic != "" {
			if _, err := a.k.LinkByName(c.nic); err != nil {
				return out.Result(lrmd.RCErrArgs, err.Error())
			}
		}
		return out.Result(lrmd.RCOK, "")
	}
	return out.Result(lrmd.RCErrUnimplemented, "vip has no action "+req.Action)
}

// find returns where c.ip is configured (on c.nic if given).
func (a *Agent) find(c config) (Addr, bool, error) {
	addrs, err := a.k.Addrs()
	if err != nil {
		return Addr{}, false, err
	}
	var want int
	if c.nic != "" {
		l, err := a.k.LinkByName(c.nic)
		if err != nil {
			return Addr{}, false, err
		}
		want = l.Index
	}
	for _, ad := range addrs {
		if ad.Prefix.Addr() == c.ip && (want == 0 || ad.Link == want) {
			return ad, true, nil
		}
	}
	return Addr{}, false, nil
}

func (a *Agent) monitor(c config, out *lrmd.Output) lrmd.Result {
	ad, ok, err := a.find(c)
	if errors.Is(err, ErrNoLink) {
		return out.Result(lrmd.RCNotRunning, err.Error())
	}
	if err != nil {
		return out.Result(lrmd.RCErrGeneric, err.Error())
	}
	if !ok {
		return out.Result(lrmd.RCNotRunning, "")
	}
	out.Printf("%s is on interface index %d", ad.Prefix, ad.Link)
	return out.Result(lrmd.RCOK, "")
}

func (a *Agent) stop(c config, out *lrmd.Output) lrmd.Result {
	a.cancelAnnouncements(c.ip)
	ad, ok, err := a.find(c)
	if errors.Is(err, ErrNoLink) {
		out.Printf("interface %s is gone; %s cannot be on it", c.nic, c.ip)
		return out.Result(lrmd.RCOK, "")
	}
	if err != nil {
		return out.Result(lrmd.RCErrGeneric, err.Error())
	}
	if !ok {
		out.Printf("%s is not configured", c.ip)
		return out.Result(lrmd.RCOK, "")
	}
	l, err := a.k.LinkByIndex(ad.Link)
	if err != nil {
		return out.Result(lrmd.RCErrGeneric, err.Error())
	}
	if err := a.k.DelAddr(l, ad.Prefix); err != nil {
		return out.Result(lrmd.RCErrGeneric, err.Error())
	}
	out.Printf("removed %s from %s", ad.Prefix, l.Name)
	return out.Result(lrmd.RCOK, "")
}

// resolve picks the interface and prefix length: nic if given, else the
// interface of the most specific directly connected route containing ip
// (IPaddr2's findif); the prefix length defaults to that route's.
func (a *Agent) resolve(c config) (Link, int, error) {
	routes, err := a.k.LinkRoutes()
	if err != nil {
		return Link{}, 0, err
	}
	best := -1
	for i, r := range routes {
		if r.Dst.Contains(c.ip) && (best < 0 || r.Dst.Bits() > routes[best].Dst.Bits()) {
			if c.nic != "" {
				if l, err := a.k.LinkByIndex(r.Link); err != nil || l.Name != c.nic {
					continue
				}
			}
			best = i
		}
	}
	bits := c.bits
	if c.nic != "" {
		l, err := a.k.LinkByName(c.nic)
		if err != nil {
			return Link{}, 0, err
		}
		if bits < 0 {
			bits = 32
			if best >= 0 {
				bits = routes[best].Dst.Bits()
			}
		}
		return l, bits, nil
	}
	if best < 0 {
		return Link{}, 0, fmt.Errorf("%w: no interface has a directly connected route to %s; set nic", ErrConfig, c.ip)
	}
	l, err := a.k.LinkByIndex(routes[best].Link)
	if err != nil {
		return Link{}, 0, err
	}
	if bits < 0 {
		bits = routes[best].Dst.Bits()
	}
	return l, bits, nil
}

func (a *Agent) start(ctx context.Context, c config, out *lrmd.Output) lrmd.Result {
	if ad, ok, err := a.find(config{ip: c.ip}); err != nil {
		return out.Result(lrmd.RCErrGeneric, err.Error())
	} else if ok {
		l, err := a.k.LinkByIndex(ad.Link)
		if err != nil {
			return out.Result(lrmd.RCErrGeneric, err.Error())
		}
		if c.nic != "" && l.Name != c.nic {
			return out.Result(lrmd.RCErrGeneric, fmt.Sprintf("%s is already configured on %s, not on %s", c.ip, l.Name, c.nic))
		}
		out.Printf("%s is already on %s", ad.Prefix, l.Name)
		if err := a.announce(ctx, l, c, out); err != nil {
			return out.Result(lrmd.RCErrGeneric, err.Error())
		}
		return out.Result(lrmd.RCOK, "")
	}
	l, bits, err := a.resolve(c)
	switch {
	case errors.Is(err, ErrConfig):
		return out.Result(lrmd.RCErrConfigured, err.Error())
	case errors.Is(err, ErrNoLink):
		// The interface exists on other nodes, maybe: hard error here only.
		return out.Result(lrmd.RCErrArgs, err.Error())
	case err != nil:
		return out.Result(lrmd.RCErrGeneric, err.Error())
	}
	if l.Loopback {
		return out.Result(lrmd.RCErrConfigured, fmt.Sprintf("%s is a loopback interface; use builtin:lvs-realserver for a VIP on lo", l.Name))
	}
	if !l.Up {
		// IPaddr2 brings the interface up too: a VIP on a down link is useless.
		if err := a.k.SetLinkUp(l); err != nil {
			return out.Result(lrmd.RCErrGeneric, fmt.Sprintf("bring %s up: %v", l.Name, err))
		}
		out.Printf("brought %s up", l.Name)
	}
	label, err := makeLabel(l.Name, c.label)
	if err != nil {
		return out.Result(lrmd.RCErrConfigured, err.Error())
	}
	if c.probe {
		conn, err := a.k.OpenARP(l)
		if err != nil {
			return out.Result(lrmd.RCErrGeneric, err.Error())
		}
		who, err := Probe(ctx, conn, l.MAC, c.ip, 3, c.probeWait)
		conn.Close()
		if err != nil {
			return out.Result(lrmd.RCErrGeneric, fmt.Sprintf("ARP probe for %s on %s: %v", c.ip, l.Name, err))
		}
		if who != nil {
			return out.Result(lrmd.RCErrGeneric, fmt.Sprintf("%s is already in use on %s by %s (answered our ARP probe); not taking it", c.ip, l.Name, who))
		}
	}
	p := netip.PrefixFrom(c.ip, bits)
	if err := a.k.AddAddr(l, p, label); err != nil {
		return out.Result(lrmd.RCErrGeneric, err.Error())
	}
	out.Printf("added %s to %s", p, l.Name)
	if err := a.announce(ctx, l, c, out); err != nil {
		return out.Result(lrmd.RCErrGeneric, err.Error())
	}
	return out.Result(lrmd.RCOK, "")
}

// makeLabel builds the kernel address label: the kernel requires it to
// start with the interface name and to fit IFNAMSIZ.
func makeLabel(nic, label string) (string, error) {
	if label == "" {
		return "", nil
	}
	if !strings.HasPrefix(label, nic) {
		label = nic + ":" + label
	}
	if len(label) > 15 {
		return "", fmt.Errorf("%w: label %q is longer than 15 characters", ErrConfig, label)
	}
	return label, nil
}

// announce sends the first gratuitous ARP now and schedules the rest.
func (a *Agent) announce(ctx context.Context, l Link, c config, out *lrmd.Output) error {
	if c.arpCount == 0 {
		return nil
	}
	conn, err := a.k.OpenARP(l)
	if err != nil {
		return err
	}
	if err := SendGratuitous(conn, l.MAC, c.ip); err != nil {
		conn.Close()
		return fmt.Errorf("gratuitous ARP on %s: %w", l.Name, err)
	}
	if c.arpCount == 1 {
		conn.Close()
		out.Printf("sent gratuitous ARP for %s on %s", c.ip, l.Name)
		return nil
	}
	out.Printf("sent gratuitous ARP for %s on %s; %d more every %s", c.ip, l.Name, c.arpCount-1, c.arpInterval)
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ann := &announcement{cancel: cancel}
	a.mu.Lock()
	if old := a.pending[c.ip]; old != nil {
		old.cancel()
	}
	a.pending[c.ip] = ann
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		defer conn.Close()
		t := time.NewTicker(c.arpInterval)
		defer t.Stop()
		for i := 1; i < c.arpCount; i++ {
			select {
			case <-bg.Done():
				return
			case <-t.C:
			}
			_ = SendGratuitous(conn, l.MAC, c.ip) // best effort, as send_arp
		}
		cancel()
		a.mu.Lock()
		if a.pending[c.ip] == ann {
			// Only clear our own entry: a later start may have replaced it.
			delete(a.pending, c.ip)
		}
		a.mu.Unlock()
	}()
	return nil
}

func (a *Agent) cancelAnnouncements(ip netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ann := a.pending[ip]; ann != nil {
		ann.cancel()
		delete(a.pending, ip)
	}
}

// Close waits for outstanding announcements (at most arp_count ×
// arp_interval) and releases the kernel handle.
func (a *Agent) Close() error {
	a.wg.Wait()
	if c, ok := a.k.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// SendGratuitous sends one announcement: a gratuitous ARP request and a
// gratuitous ARP reply (both with sender and target IP = ip), since some
// stacks only update their caches from one of the two (send_arp does the
// same).
func SendGratuitous(conn ARPConn, mac net.HardwareAddr, ip netip.Addr) error {
	zero := make(net.HardwareAddr, 6)
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	req, err := arp.NewPacket(arp.OperationRequest, mac, ip, zero, ip)
	if err != nil {
		return err
	}
	rep, err := arp.NewPacket(arp.OperationReply, mac, ip, bcast, ip)
	if err != nil {
		return err
	}
	if err := conn.Send(req); err != nil {
		return err
	}
	return conn.Send(rep)
}

// Probe runs RFC 5227 duplicate address detection: count ARP probes
// (sender IP 0.0.0.0) for ip spread over wait, listening for any other
// host that claims ip (a reply, or its own probe/announcement). It returns
// the claimant's MAC, or nil when nobody answered.
//
// RFC 5227 spaces probes 1-2 s apart for link-local configuration at
// boot; for a failover every second counts, and hosts answer probes in
// well under a millisecond, so the spacing here is wait/count.
func Probe(ctx context.Context, conn ARPConn, mac net.HardwareAddr, ip netip.Addr, count int, wait time.Duration) (net.HardwareAddr, error) {
	zero := make(net.HardwareAddr, 6)
	probe, err := arp.NewPacket(arp.OperationRequest, mac, netip.IPv4Unspecified(), zero, ip)
	if err != nil {
		return nil, err
	}
	if count < 1 {
		count = 1
	}
	step := wait / time.Duration(count)
	end := time.Now().Add(wait)
	next := time.Now()
	for sent := 0; ; {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		now := time.Now()
		if sent < count && !now.Before(next) {
			if err := conn.Send(probe); err != nil {
				return nil, err
			}
			sent++
			next = now.Add(step)
		}
		if !now.Before(end) {
			return nil, nil
		}
		deadline := end
		if sent < count && next.Before(deadline) {
			deadline = next
		}
		if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
			deadline = dl
		}
		p, err := conn.Receive(deadline)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if claims(p, mac, ip) {
			return p.SenderHardwareAddr, nil
		}
	}
}

// claims reports whether p shows another host using (or probing for) ip.
func claims(p *arp.Packet, mac net.HardwareAddr, ip netip.Addr) bool {
	if p.SenderHardwareAddr.String() == mac.String() {
		return false // our own packet, seen on the way out
	}
	if p.SenderIP == ip {
		return true // reply to our probe, or an announcement
	}
	// Another host probing for the same address at the same time.
	return p.Operation == arp.OperationRequest && p.SenderIP == netip.IPv4Unspecified() && p.TargetIP == ip
}
