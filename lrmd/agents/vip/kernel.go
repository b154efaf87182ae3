package vip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"ringmaster/lrmd/internal/netnsx"
)

// Link is the part of a network interface the agents care about.
type Link struct {
	Index    int
	Name     string
	MAC      net.HardwareAddr
	Up       bool
	Loopback bool
}

// Addr is one IPv4 address on an interface.
type Addr struct {
	Prefix netip.Prefix
	Label  string
	Link   int // interface index
}

// Route is a directly connected (scope link) IPv4 route of the main table.
type Route struct {
	Dst  netip.Prefix
	Link int
}

// Kernel is every side effect the vip and lvs-realserver agents have: the
// narrow interface between the agents' logic and netlink, packet sockets
// and sysctl. The real implementation is NewKernel; tests of the logic use
// a fake, tests of the real one run as root in a network namespace.
// Implementations must be safe for concurrent use.
type Kernel interface {
	LinkByName(name string) (Link, error)
	LinkByIndex(index int) (Link, error)
	SetLinkUp(l Link) error
	// Addrs lists all IPv4 addresses of all interfaces.
	Addrs() ([]Addr, error)
	// AddAddr adds p to l; adding an address that is already there is
	// not an error.
	AddAddr(l Link, p netip.Prefix, label string) error
	// DelAddr removes p from l; removing an absent address is not an
	// error.
	DelAddr(l Link, p netip.Prefix) error
	// LinkRoutes lists the directly connected IPv4 routes.
	LinkRoutes() ([]Route, error)
	// OpenARP opens a raw ARP socket on l.
	OpenARP(l Link) (ARPConn, error)
	// Sysctl reads and SetSysctl writes /proc/sys/<path> (path uses
	// slashes, e.g. "net/ipv4/conf/all/arp_ignore").
	Sysctl(path string) (string, error)
	SetSysctl(path, value string) error
}

// ARPConn sends and receives ARP packets on one interface.
type ARPConn interface {
	// Send broadcasts p.
	Send(p *arp.Packet) error
	// Receive returns the next ARP packet, or an error wrapping
	// os.ErrDeadlineExceeded once deadline passes.
	Receive(deadline time.Time) (*arp.Packet, error)
	Close() error
}

// ErrNoLink: the named interface does not exist.
var ErrNoLink = errors.New("no such interface")

// kernel is the real Kernel, bound to one network namespace.
type kernel struct {
	ns netnsx.NS
	nl *netlink.Handle
}

// NewKernel returns the real Kernel acting in namespace ns (netnsx.None()
// for the caller's namespace). ns must stay open while the Kernel is used.
func NewKernel(ns netnsx.NS) (Kernel, error) {
	var h *netlink.Handle
	var err error
	if ns.IsOpen() {
		h, err = netlink.NewHandleAt(ns)
	} else {
		h, err = netlink.NewHandle()
	}
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &kernel{ns: ns, nl: h}, nil
}

func toLink(l netlink.Link) Link {
	a := l.Attrs()
	return Link{
		Index:    a.Index,
		Name:     a.Name,
		MAC:      a.HardwareAddr,
		Up:       a.Flags&net.FlagUp != 0,
		Loopback: a.Flags&net.FlagLoopback != 0,
	}
}

func (k *kernel) LinkByName(name string) (Link, error) {
	l, err := k.nl.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return Link{}, fmt.Errorf("%w %q", ErrNoLink, name)
		}
		return Link{}, fmt.Errorf("interface %q: %w", name, err)
	}
	return toLink(l), nil
}

func (k *kernel) LinkByIndex(index int) (Link, error) {
	l, err := k.nl.LinkByIndex(index)
	if err != nil {
		return Link{}, fmt.Errorf("%w: index %d: %v", ErrNoLink, index, err)
	}
	return toLink(l), nil
}

func (k *kernel) nlLink(l Link) (netlink.Link, error) {
	nl, err := k.nl.LinkByIndex(l.Index)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrNoLink, l.Name, err)
	}
	return nl, nil
}

func (k *kernel) SetLinkUp(l Link) error {
	nl, err := k.nlLink(l)
	if err != nil {
		return err
	}
	return k.nl.LinkSetUp(nl)
}

func (k *kernel) Addrs() ([]Addr, error) {
	as, err := k.nl.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	out := make([]Addr, 0, len(as))
	for _, a := range as {
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		if !ok {
			continue
		}
		bits, _ := a.Mask.Size()
		out = append(out, Addr{Prefix: netip.PrefixFrom(ip, bits), Label: a.Label, Link: a.LinkIndex})
	}
	return out, nil
}

func nlAddr(p netip.Prefix, label string) *netlink.Addr {
	return &netlink.Addr{
		IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)},
		Label: label,
	}
}

func (k *kernel) AddAddr(l Link, p netip.Prefix, label string) error {
	nl, err := k.nlLink(l)
	if err != nil {
		return err
	}
	if err := k.nl.AddrAdd(nl, nlAddr(p, label)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add %s to %s: %w", p, l.Name, err)
	}
	return nil
}

func (k *kernel) DelAddr(l Link, p netip.Prefix) error {
	nl, err := k.nlLink(l)
	if err != nil {
		return err
	}
	if err := k.nl.AddrDel(nl, nlAddr(p, "")); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("remove %s from %s: %w", p, l.Name, err)
	}
	return nil
}

func (k *kernel) LinkRoutes() ([]Route, error) {
	rs, err := k.nl.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	var out []Route
	for _, r := range rs {
		if r.Scope != netlink.SCOPE_LINK || r.Dst == nil || r.Gw != nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(r.Dst.IP.To4())
		if !ok {
			continue
		}
		bits, _ := r.Dst.Mask.Size()
		out = append(out, Route{Dst: netip.PrefixFrom(ip, bits), Link: r.LinkIndex})
	}
	return out, nil
}

func (k *kernel) OpenARP(l Link) (ARPConn, error) {
	var c *packet.Conn
	err := netnsx.Do(k.ns, func() error {
		var err error
		c, err = packet.Listen(&net.Interface{Index: l.Index, Name: l.Name, HardwareAddr: l.MAC}, packet.Raw, int(ethernet.EtherTypeARP), nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ARP socket on %s: %w", l.Name, err)
	}
	return &arpConn{c: c, mac: l.MAC}, nil
}

func (k *kernel) sysctlPath(path string) (string, error) {
	clean := filepath.Clean("/" + path)
	if strings.Contains(path, "..") {
		return "", fmt.Errorf("bad sysctl path %q", path)
	}
	return filepath.Join("/proc/sys", clean), nil
}

func (k *kernel) Sysctl(path string) (string, error) {
	p, err := k.sysctlPath(path)
	if err != nil {
		return "", err
	}
	var v []byte
	err = netnsx.Do(k.ns, func() error {
		var err error
		v, err = os.ReadFile(p)
		return err
	})
	return strings.TrimSpace(string(v)), err
}

func (k *kernel) SetSysctl(path, value string) error {
	p, err := k.sysctlPath(path)
	if err != nil {
		return err
	}
	// /proc/sys/net follows the namespace of the thread that opens it.
	return netnsx.Do(k.ns, func() error { return os.WriteFile(p, []byte(value), 0o644) })
}

type arpConn struct {
	c   *packet.Conn
	mac net.HardwareAddr
}

func (a *arpConn) Send(p *arp.Packet) error {
	pb, err := p.MarshalBinary()
	if err != nil {
		return err
	}
	f := ethernet.Frame{Destination: ethernet.Broadcast, Source: a.mac, EtherType: ethernet.EtherTypeARP, Payload: pb}
	fb, err := f.MarshalBinary()
	if err != nil {
		return err
	}
	_, err = a.c.WriteTo(fb, &packet.Addr{HardwareAddr: ethernet.Broadcast})
	return err
}

func (a *arpConn) Receive(deadline time.Time) (*arp.Packet, error) {
	if err := a.c.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	buf := make([]byte, 1500)
	for {
		n, _, err := a.c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return nil, err
		}
		var f ethernet.Frame
		if err := f.UnmarshalBinary(buf[:n]); err != nil || f.EtherType != ethernet.EtherTypeARP {
			continue
		}
		var p arp.Packet
		if err := p.UnmarshalBinary(f.Payload); err != nil {
			continue
		}
		return &p, nil
	}
}

func (a *arpConn) Close() error { return a.c.Close() }

// Close releases the netlink sockets.
func (k *kernel) Close() error {
	k.nl.Close()
	return nil
}
