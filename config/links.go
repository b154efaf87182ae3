package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"ringmaster/totem/link"
)

// MaxLinks is the number of links a node may have: ring0_addr … ring7_addr.
const MaxLinks = 8

// DefaultLinkPriority is a link's priority without link_priority (knet's
// default).
const DefaultLinkPriority = 1

// RingAddr is the node's ringK_addr ("" when unset or k out of range).
func (n *Node) RingAddr(k int) string {
	switch k {
	case 0:
		return n.Ring0Addr
	case 1:
		return n.Ring1Addr
	case 2:
		return n.Ring2Addr
	case 3:
		return n.Ring3Addr
	case 4:
		return n.Ring4Addr
	case 5:
		return n.Ring5Addr
	case 6:
		return n.Ring6Addr
	case 7:
		return n.Ring7Addr
	}
	return ""
}

// Links are the link numbers the node list uses, ascending: those the
// first node has a ringK_addr for (Validate makes every node agree).
func (c *Config) Links() []int {
	var out []int
	if len(c.Nodes) == 0 {
		return []int{0}
	}
	for k := range MaxLinks {
		if c.Nodes[0].RingAddr(k) != "" {
			out = append(out, k)
		}
	}
	return out
}

// Interface returns the [[totem.interface]] of link k (nil: none).
func (c *Config) Interface(k int) *Interface {
	for i := range c.Totem.Interfaces {
		if c.Totem.Interfaces[i].LinkNumber == k {
			return &c.Totem.Interfaces[i]
		}
	}
	return nil
}

// LinkPort is the port of link k's addresses that name none: its
// interface's port, else totem.port.
func (c *Config) LinkPort(k int) int {
	if i := c.Interface(k); i != nil && i.Port != 0 {
		return i.Port
	}
	return c.Totem.Port
}

// LinkPriority is link k's link_priority (default DefaultLinkPriority).
func (c *Config) LinkPriority(k int) int {
	if i := c.Interface(k); i != nil && i.LinkPriority != nil {
		return *i.LinkPriority
	}
	return DefaultLinkPriority
}

// LinkTTL is link k's multicast TTL (its interface's, else totem.ttl).
func (c *Config) LinkTTL(k int) int {
	if i := c.Interface(k); i != nil && i.TTL != 0 {
		return i.TTL
	}
	return c.Totem.TTL
}

// LinkMcast is link k's multicast group and port (transport udp): its
// interface's mcast_addr, else totem.mcast_addr with k added to the last
// byte (each link needs its own group: a socket bound to a group hears it
// on every interface). A link whose addresses are IPv6 while
// totem.mcast_addr is IPv4 (the default, 239.192.7.1) uses the group's
// IPv6 form, McastAddr6: the 32 bits of the IPv4 group under ff18::/96,
// organization-local like 239.192.0.0/14 (so the default is ff18::efc0:701
// on link 0, ff18::efc0:702 on link 1). An IPv4 link has no such form of
// an IPv6 totem.mcast_addr: it needs its own group in its interface.
func (c *Config) LinkMcast(k int) (netip.AddrPort, error) {
	six := c.LinkIs6(k)
	s := c.Totem.McastAddr
	if i := c.Interface(k); i != nil && i.McastAddr != "" {
		a, err := netip.ParseAddr(i.McastAddr)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("mcast_addr %q: %w", i.McastAddr, err)
		}
		return netip.AddrPortFrom(a, uint16(c.LinkPort(k))), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("totem.mcast_addr %q: %w", s, err)
	}
	switch {
	case six && a.Is4():
		a = McastAddr6(a)
	case !six && !a.Is4():
		return netip.AddrPort{}, fmt.Errorf("totem.mcast_addr %q is IPv6 and link %d is IPv4: set the link's IPv4 group ([[totem.interface]] mcast_addr)", s, k)
	}
	if k > 0 && a.Is4() {
		b := a.As4()
		b[3] += byte(k)
		a = netip.AddrFrom4(b)
	} else if k > 0 {
		b := a.As16()
		b[15] += byte(k)
		a = netip.AddrFrom16(b)
	}
	return netip.AddrPortFrom(a, uint16(c.LinkPort(k))), nil
}

// McastAddr6 is the IPv6 form of an IPv4 multicast group a, for IPv6
// links of a configuration whose totem.mcast_addr is IPv4: ff18::/96 (the
// transient flag, organization-local scope, as 239.192.0.0/14 is in IPv4,
// RFC 2365) with a's 32 bits as its group ID, so that clusters with
// different IPv4 groups keep different IPv6 groups.
func McastAddr6(a netip.Addr) netip.Addr {
	b := [16]byte{0: 0xff, 1: 0x18}
	v4 := a.As4()
	copy(b[12:], v4[:])
	return netip.AddrFrom16(b)
}

// LinkIs6 reports whether link k's addresses are IPv6: those of the first
// node whose ringK_addr parses (Validate makes every node's agree).
// Different links may have different families.
func (c *Config) LinkIs6(k int) bool {
	six, _ := c.linkFamily(k)
	return six
}

// linkFamily is LinkIs6 and the key of the address that decided it
// ("node[0].ring1_addr").
func (c *Config) linkFamily(k int) (six bool, of string) {
	for i := range c.Nodes {
		if s := c.Nodes[i].RingAddr(k); s != "" {
			if ap, err := parseRingAddr(s, 1); err == nil {
				return !ap.Addr().Is4(), "node[" + strconv.Itoa(i) + "].ring" + strconv.Itoa(k) + "_addr"
			}
		}
	}
	return false, ""
}

// familyName names an address family for error messages.
func familyName(six bool) string {
	if six {
		return "IPv6"
	}
	return "IPv4"
}

// checkRingAddr returns why s (parsed as ap) cannot be a node's address on
// a link whose family is IPv6 when six ("" when it can). of names where
// the link's family comes from ("node[0].ring1_addr"). IPv6 addresses
// must be literal and global or unique local: a link-local address
// (fe80::/10) is only unique with its interface (a zone, "%eth0"), which
// ringmaster does not carry to the sockets; an IPv4-mapped one
// (::ffff:a.b.c.d) is an IPv4 address in disguise.
func checkRingAddr(s string, ap netip.AddrPort, six bool, of string) string {
	a := ap.Addr()
	switch {
	case a.Zone() != "" || a.IsLinkLocalUnicast() && a.Is6():
		return fmt.Sprintf("link-local IPv6 addresses (fe80::/10, zones) are not supported: use a global or unique local (fd00::/8) address, got %q", s)
	case a.Is4In6():
		return fmt.Sprintf("an IPv4-mapped IPv6 address: write it as IPv4 (%s), got %q", a.Unmap(), s)
	case a.Is6() && (a.IsUnspecified() || a.IsMulticast()):
		return fmt.Sprintf("must be a unicast address, got %q", s)
	case a.Is4() == six:
		return fmt.Sprintf("must be an %s address like %s (every node's address on one link has the same family), got %q",
			familyName(six), of, s)
	}
	return ""
}

// checkGroup returns why a cannot be the multicast group of a link whose
// family is IPv6 when six ("" when it can). An IPv6 group needs a scope
// beyond the link (ff05:: site, ff08:: organization, ff0e:: global, or
// the transient ff1x::): interface- and link-local groups need a zone to
// be bound, which ringmaster does not configure.
func checkGroup(a netip.Addr, six bool) string {
	switch {
	case !six && (!a.Is4() || !a.IsMulticast()):
		return "must be an IPv4 multicast address (224.0.0.0/4)"
	case six && (a.Is4() || a.Is4In6() || !a.IsMulticast()):
		return "must be an IPv6 multicast address (ff00::/8): the link's addresses are IPv6"
	case six && a.As16()[1]&0x0f <= 2:
		return "must have a scope beyond the link (ff05::/16 site, ff08::/16 organization, ff15::/16, ff18::/16, ...): interface- and link-local groups need a zone"
	}
	return ""
}

// NodeLinkAddr is node n's UDP address on link k: ringK_addr with its own
// port, or the link's (LinkPort).
func (c *Config) NodeLinkAddr(n *Node, k int) (netip.AddrPort, error) {
	return parseRingAddr(n.RingAddr(k), c.LinkPort(k))
}

// validateLinks checks the redundant links: every node has the same
// ringK_addr keys, addresses parse and are unique per link, the
// [[totem.interface]] entries name configured links, udp groups differ.
func (c *Config) validateLinks(bad func(key, format string, args ...any)) {
	t := &c.Totem
	switch t.LinkMode {
	case "passive", "active":
	default:
		bad("totem.link_mode", `must be "passive" or "active", got %q`, t.LinkMode)
	}
	if t.KnetPingInterval < 0 {
		bad("totem.knet_ping_interval", "must not be negative (0 derives it from the token), got %d", t.KnetPingInterval)
	}
	if t.KnetPingTimeout < 0 {
		bad("totem.knet_ping_timeout", "must not be negative (0 derives it from the token), got %d", t.KnetPingTimeout)
	}
	if t.KnetPongCount < 0 || t.KnetPongCount > 255 {
		bad("totem.knet_pong_count", "must be 0 (default 2) to 255, got %d", t.KnetPongCount)
	}
	if t.KnetPingInterval > 0 && t.KnetPingTimeout > 0 && t.KnetPingInterval >= t.KnetPingTimeout {
		bad("totem.knet_ping_interval", "must be below knet_ping_timeout (%d ms), got %d", t.KnetPingTimeout, t.KnetPingInterval)
	}
	if len(c.Nodes) == 0 {
		return
	}
	links := c.Links()
	if len(links) > 1 {
		c.validateHeartbeat(bad)
	}
	seenIf := map[int]int{}
	for i := range t.Interfaces {
		in := &t.Interfaces[i]
		k := func(f string) string { return "totem.interface[" + strconv.Itoa(i) + "]." + f }
		switch {
		case in.LinkNumber < 0 || in.LinkNumber >= MaxLinks:
			bad(k("linknumber"), "must be 0-%d, got %d", MaxLinks-1, in.LinkNumber)
		case !contains(links, in.LinkNumber):
			bad(k("linknumber"), "link %d has no address: no node sets ring%d_addr", in.LinkNumber, in.LinkNumber)
		}
		if j, dup := seenIf[in.LinkNumber]; dup {
			bad(k("linknumber"), "link %d is also configured by totem.interface[%d]", in.LinkNumber, j)
		}
		seenIf[in.LinkNumber] = i
		if in.Port != 0 && (in.Port < 1 || in.Port > 65535) {
			bad(k("port"), "must be 1-65535, got %d", in.Port)
		}
		if in.TTL != 0 && (in.TTL < 1 || in.TTL > 255) {
			bad(k("ttl"), "must be 1-255, got %d", in.TTL)
		}
		if in.LinkPriority != nil && (*in.LinkPriority < 0 || *in.LinkPriority > 255) {
			bad(k("link_priority"), "must be 0-255, got %d", *in.LinkPriority)
		}
		if in.McastAddr != "" {
			six := c.LinkIs6(in.LinkNumber)
			if a, err := netip.ParseAddr(in.McastAddr); err != nil {
				bad(k("mcast_addr"), "%s, got %q", checkGroup(netip.Addr{}, six), in.McastAddr)
			} else if why := checkGroup(a, six); why != "" {
				bad(k("mcast_addr"), "%s, got %q", why, in.McastAddr)
			}
		}
	}
	// Every node has the links of node[0], and no other.
	for i := range c.Nodes {
		n := &c.Nodes[i]
		for lk := range MaxLinks {
			key := "node[" + strconv.Itoa(i) + "].ring" + strconv.Itoa(lk) + "_addr"
			has := n.RingAddr(lk) != ""
			if lk == 0 {
				continue // ring0_addr: validateNodes
			}
			switch {
			case has && !contains(links, lk):
				bad(key, "link %d is not configured on node[0] (every node needs the same ringN_addr keys)", lk)
			case !has && contains(links, lk):
				bad(key, "must be set: node[0] has ring%d_addr, and every node needs an address on every link", lk)
			}
		}
	}
	groups := map[netip.AddrPort]int{}
	// owner: which node has an address on any link (an address is one
	// node's: the receive filter takes a datagram from it as that node's).
	type owner struct{ node, link int }
	owners := map[netip.AddrPort]owner{}
	for _, lk := range links {
		for i := range c.Nodes {
			if ap, err := c.NodeLinkAddr(&c.Nodes[i], lk); err == nil {
				if _, dup := owners[ap]; !dup {
					owners[ap] = owner{i, lk}
				}
			}
		}
	}
	for _, lk := range links {
		addrs := map[netip.AddrPort]int{}
		six, of := c.linkFamily(lk)
		for i := range c.Nodes {
			n := &c.Nodes[i]
			if lk == 0 || n.RingAddr(lk) == "" {
				continue // ring0_addr: validateNodes
			}
			key := "node[" + strconv.Itoa(i) + "].ring" + strconv.Itoa(lk) + "_addr"
			ap, err := c.NodeLinkAddr(n, lk)
			if err != nil {
				bad(key, "%v", err)
				continue
			}
			if why := checkRingAddr(n.RingAddr(lk), ap, six, of); why != "" {
				bad(key, "%s", why)
				continue
			}
			if j, dup := addrs[ap]; dup {
				bad(key, "%s is also the address of node[%d] on link %d", ap, j, lk)
			} else if o := owners[ap]; o.node != i {
				bad(key, "%s is also the address of node[%d] on link %d", ap, o.node, o.link)
			}
			addrs[ap] = i
			for o := range lk {
				if n.RingAddr(o) == "" {
					continue
				}
				if oap, err := c.NodeLinkAddr(n, o); err == nil && oap == ap {
					bad(key, "%s is also this node's address on link %d: each link needs its own address", ap, o)
				}
			}
		}
		if t.Transport == "udp" {
			own := c.Interface(lk) != nil && c.Interface(lk).McastAddr != ""
			if !own {
				if a, err := netip.ParseAddr(t.McastAddr); err != nil || !a.IsMulticast() {
					continue // reported as totem.mcast_addr
				}
			}
			g, err := c.LinkMcast(lk)
			key := "totem.mcast_addr"
			if c.Interface(lk) != nil {
				key = "totem.interface[" + strconv.Itoa(c.interfaceIndex(lk)) + "].mcast_addr"
			}
			switch {
			case own && (err != nil || checkGroup(g.Addr(), six) != ""):
				// reported with the interface
			case err != nil:
				bad(key, "link %d: %v", lk, err)
			case checkGroup(g.Addr(), six) != "":
				bad(key, "link %d: group %s: %s", lk, g.Addr(), checkGroup(g.Addr(), six))
			default:
				if j, dup := groups[g]; dup {
					bad(key, "link %d uses group %s like link %d: each link needs its own group or port", lk, g, j)
				}
				groups[g] = lk
			}
		}
	}
}

// validateHeartbeat checks the heartbeat settings of several links against
// the token, as totem/link derives what is not set (link.Derive): a dead
// link is noticed up to a ping timeout and an interval after it died, and
// that must happen before the ring declares the token lost on it, or one
// link's failure changes the membership; and pings further apart than the
// timeout never bring a link up.
func (c *Config) validateHeartbeat(bad func(key, format string, args ...any)) {
	t := &c.Totem
	if t.KnetPingInterval < 0 || t.KnetPingTimeout < 0 || t.KnetPongCount < 0 {
		return // reported above
	}
	key, v := "totem.knet_ping_interval", t.KnetPingInterval
	if t.KnetPingTimeout > 0 {
		key, v = "totem.knet_ping_timeout", t.KnetPingTimeout
	}
	eff := c.effectiveToken()
	if v == 0 || eff < 10 {
		return // derived from the token; a bad token is reported above
	}
	if t.KnetPingTimeout >= eff || t.KnetPingInterval >= eff { // before any arithmetic on them
		bad(key, "must be below the token (%d ms): a dead link must be noticed before the token is declared lost on it, got %d", eff, v)
		return
	}
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	d := link.Derive(link.Config{PingInterval: ms(t.KnetPingInterval), PingTimeout: ms(t.KnetPingTimeout), PongCount: t.KnetPongCount}, ms(eff))
	switch {
	case t.KnetPingTimeout == 0 && d.PingInterval >= d.PingTimeout:
		bad(key, "must be below the ping timeout (%d ms, derived from the token), got %d: a link would never come up", d.PingTimeout.Milliseconds(), v)
	case d.PingTimeout+d.PingInterval >= ms(eff):
		bad(key, "plus knet_ping_interval (%d ms) must stay below the token (%d ms): a dead link must be noticed before the token is declared lost on it, got %d",
			d.PingInterval.Milliseconds(), eff, v)
	}
}

func (c *Config) interfaceIndex(k int) int {
	for i := range c.Totem.Interfaces {
		if c.Totem.Interfaces[i].LinkNumber == k {
			return i
		}
	}
	return -1
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
