package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"ringmaster/totem"
)

// Default socket buffer sizes. A Totem window (window_size 50 by default,
// more on big rings) arrives as a burst; with 1.5 KB datagrams 4 MiB holds
// well over a thousand of them, so a driver that is briefly descheduled on
// a busy 2-core machine does not lose a window to a full socket buffer.
const (
	DefaultRecvBuffer = 8 << 20
	DefaultSendBuffer = 4 << 20
)

// UDPConfig configures NewUDP and NewUDPU.
type UDPConfig struct {
	// Bind is the local ring0 address and port. The unicast socket is
	// bound to it, so datagrams leave with it as their source. Its
	// family (IPv4, or IPv6 without a zone) is the transport's: the
	// sockets are udp4 or udp6 (IPV6_V6ONLY), and Peers and Mcast must
	// have the same family.
	Bind netip.AddrPort
	// Peers maps every configured node (self included) to its address.
	// udpu broadcasts to all of them; both transports send unicast
	// datagrams (the token) through it.
	Peers map[totem.NodeID]netip.AddrPort
	// Mcast is the multicast group and port (udp only): 224.0.0.0/4 with
	// an IPv4 Bind, ff00::/8 with an IPv6 one.
	Mcast netip.AddrPort
	// TTL of multicast datagrams (udp only; 0 means 1): the hop limit
	// for IPv6.
	TTL int
	// RecvBuffer and SendBuffer size the sockets' kernel buffers (0: the
	// defaults above). As root SO_RCVBUFFORCE/SO_SNDBUFFORCE lift the
	// net.core.[rw]mem_max ceiling; otherwise the kernel caps them.
	RecvBuffer, SendBuffer int
}

// UDP is the udp (multicast) and udpu (unicast) transport.
type UDP struct {
	ucast *net.UDPConn
	mcast *net.UDPConn // nil for udpu
	six   bool         // IPv6 sockets (udp6)

	self  totem.NodeID // the peer whose address is Bind (0: none)
	peers map[totem.NodeID]*sockaddr
	all   []*sockaddr // udpu: broadcast destinations (every peer but self), by node id
	group *sockaddr   // udp: multicast destination
	mtu   int         // of the interface holding Bind

	recv []Receiver

	// Send scratch, reused: Send is called by one goroutine at a time.
	w mmsgWriter
	// sentBytes is read by any goroutine (SentBytes).
	sentBytes atomic.Uint64
}

var (
	_ Transport   = (*UDP)(nil)
	_ ByteCounter = (*UDP)(nil)
)

// NewUDPU opens the udpu transport: one socket bound to cfg.Bind, and every
// broadcast sent once to each peer.
func NewUDPU(cfg UDPConfig) (*UDP, error) {
	u, err := newUDP(cfg)
	if err != nil {
		return nil, err
	}
	ids := make([]totem.NodeID, 0, len(u.peers))
	for id := range u.peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if id != u.self {
			// Never to ourselves: the protocol handles its own
			// broadcasts internally, and on one host the copy costs
			// a third of a 3-node ring's datagrams.
			u.all = append(u.all, u.peers[id])
		}
	}
	u.recv = []Receiver{newReceiver(u.ucast, netip.AddrPort{})}
	return u, nil
}

// NewUDP opens the udp (multicast) transport: a unicast socket bound to
// cfg.Bind (sends everything, receives the token), and a socket bound to the
// group that joins it on the interface holding cfg.Bind's address. Multicast
// leaves through that interface (IP_MULTICAST_IF) with cfg.TTL, and loops
// back to local sockets (IP_MULTICAST_LOOP) when another configured node's
// address is local, so several nodes can share a host. An IPv6 Bind gets
// the same with IPv6's options: IPV6_JOIN_GROUP, IPV6_MULTICAST_IF,
// IPV6_MULTICAST_HOPS (cfg.TTL), IPV6_MULTICAST_LOOP, IPV6_MULTICAST_ALL.
//
// Linux refuses to bind the group and a unicast address to the same port,
// so, as corosync does (mcastport for the group, mcastport − 1 for
// unicast), when cfg.Bind or a peer has the group's port its unicast
// socket uses that port − 1.
func NewUDP(cfg UDPConfig) (*UDP, error) {
	six := cfg.Bind.Addr().Is6()
	if !sameFamily(cfg.Mcast.Addr(), six) || !cfg.Mcast.Addr().IsMulticast() {
		return nil, fmt.Errorf("%w: mcast address %s is not %s multicast", ErrConfig, cfg.Mcast, family(six))
	}
	if cfg.Mcast.Port() < 2 {
		return nil, fmt.Errorf("%w: mcast port %d", ErrConfig, cfg.Mcast.Port())
	}
	cfg.Bind = UnicastAddr(cfg.Bind, cfg.Mcast)
	peers := make(map[totem.NodeID]netip.AddrPort, len(cfg.Peers))
	for id, ap := range cfg.Peers {
		peers[id] = UnicastAddr(ap, cfg.Mcast)
	}
	cfg.Peers = peers
	u, err := newUDP(cfg)
	if err != nil {
		return nil, err
	}
	ifi, err := interfaceOf(cfg.Bind.Addr())
	if err != nil {
		u.Close()
		return nil, err
	}
	fail := func(err error) (*UDP, error) {
		u.Close()
		return nil, err
	}
	ttl := cfg.TTL
	if ttl <= 0 {
		ttl = 1
	}
	if err := setMulticastOpts(u.ucast, six, ifi, ttl, localPeers(cfg)); err != nil {
		return fail(err)
	}
	// Binding to the group address (not INADDR_ANY) keeps unicast
	// datagrams of other local nodes out of this socket; SO_REUSEADDR lets
	// every local node bind the same group and port and get its own copy.
	mc, err := listen(cfg.Mcast, cfg, true)
	if err != nil {
		return fail(err)
	}
	u.mcast = mc
	group := &net.UDPAddr{IP: cfg.Mcast.Addr().AsSlice()}
	if six {
		err = ipv6.NewPacketConn(mc).JoinGroup(ifi, group)
	} else {
		err = ipv4.NewPacketConn(mc).JoinGroup(ifi, group)
	}
	if err != nil {
		return fail(fmt.Errorf("join %s on %s: %w", cfg.Mcast.Addr(), ifi.Name, err))
	}
	// Only the groups this socket joined, not every group joined on the
	// host (Linux's default for sockets bound to a group is lax).
	if six {
		err = setsockopt(mc, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0)
		if errors.Is(err, unix.ENOPROTOOPT) {
			// Before Linux 4.20: the socket bound to the group still
			// takes only datagrams sent to it.
			err = nil
		}
	} else {
		err = setsockopt(mc, unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0)
	}
	if err != nil {
		return fail(fmt.Errorf("%s_MULTICAST_ALL: %w", ipOpt(six), err))
	}
	g := newSockaddr(cfg.Mcast)
	u.group = &g
	// Our own multicasts loop back when other nodes share this host's
	// network stack (localPeers): they come from our unicast address, and
	// are dropped unread.
	u.recv = []Receiver{newReceiver(mc, cfg.Bind), newReceiver(u.ucast, netip.AddrPort{})}
	return u, nil
}

// setMulticastOpts sets how the unicast socket c sends to the group:
// through ifi, with ttl (hop limit), looped back to this host or not.
func setMulticastOpts(c *net.UDPConn, six bool, ifi *net.Interface, ttl int, loop bool) error {
	name := ipOpt(six)
	var errIf, errTTL, errLoop error
	if six {
		pc := ipv6.NewPacketConn(c)
		errIf, errTTL, errLoop = pc.SetMulticastInterface(ifi), pc.SetMulticastHopLimit(ttl), pc.SetMulticastLoopback(loop)
	} else {
		pc := ipv4.NewPacketConn(c)
		errIf, errTTL, errLoop = pc.SetMulticastInterface(ifi), pc.SetMulticastTTL(ttl), pc.SetMulticastLoopback(loop)
	}
	switch {
	case errIf != nil:
		return fmt.Errorf("%s_MULTICAST_IF %s: %w", name, ifi.Name, errIf)
	case errTTL != nil && six:
		return fmt.Errorf("IPV6_MULTICAST_HOPS: %w", errTTL)
	case errTTL != nil:
		return fmt.Errorf("IP_MULTICAST_TTL: %w", errTTL)
	case errLoop != nil:
		return fmt.Errorf("%s_MULTICAST_LOOP: %w", name, errLoop)
	}
	return nil
}

// ipOpt is the prefix of the family's socket options' names.
func ipOpt(six bool) string {
	if six {
		return "IPV6"
	}
	return "IP"
}

// family names an address family.
func family(six bool) string {
	if six {
		return "IPv6"
	}
	return "IPv4"
}

// sameFamily reports whether a belongs on a socket of the family six
// selects: IPv4, or IPv6 without a zone and not IPv4-mapped (an IPv6
// socket is IPV6_V6ONLY, so a mapped address reaches nobody).
func sameFamily(a netip.Addr, six bool) bool {
	if six {
		return a.Is6() && !a.Is4In6() && a.Zone() == ""
	}
	return a.Is4()
}

// UnicastAddr is the address of a node's unicast socket with transport udp:
// addr, or port − 1 when addr has the multicast group's port.
func UnicastAddr(addr, mcast netip.AddrPort) netip.AddrPort {
	if addr.Port() == mcast.Port() {
		return netip.AddrPortFrom(addr.Addr(), addr.Port()-1)
	}
	return addr
}

func newUDP(cfg UDPConfig) (*UDP, error) {
	six := cfg.Bind.Addr().Is6()
	if !sameFamily(cfg.Bind.Addr(), six) || cfg.Bind.Port() == 0 {
		return nil, fmt.Errorf("%w: bind address %s: want an IPv4 or IPv6 address (no zone) and port", ErrConfig, cfg.Bind)
	}
	u := &UDP{peers: make(map[totem.NodeID]*sockaddr, len(cfg.Peers)), mtu: 1500, six: six}
	for id, ap := range cfg.Peers {
		if id == 0 || !sameFamily(ap.Addr(), six) || ap.Port() == 0 {
			return nil, fmt.Errorf("%w: peer %d address %s (want %s like the bind address)", ErrConfig, id, ap, family(six))
		}
		sa := newSockaddr(ap)
		u.peers[id] = &sa
		if ap == cfg.Bind {
			u.self = id
		}
	}
	if ifi, err := interfaceOf(cfg.Bind.Addr()); err == nil && ifi.MTU > 0 {
		u.mtu = ifi.MTU
		if six {
			u.mtu = ipv6MTU(ifi.Name, u.mtu)
		}
	}
	c, err := listen(cfg.Bind, cfg, false)
	if err != nil {
		return nil, err
	}
	u.ucast = c
	rc, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	u.w.init(rc)
	return u, nil
}

// ipv6MTU is the interface's IPv6 MTU when the kernel reports one below
// the link's (router advertisements and sysctl lower it per interface:
// /proc/sys/net/ipv6/conf/NAME/mtu), else linkMTU: frames sized from the
// link MTU would then be fragmented, or refused when sent segmented.
func ipv6MTU(name string, linkMTU int) int {
	b, err := os.ReadFile(filepath.Join("/proc/sys/net/ipv6/conf", filepath.Base(name), "mtu"))
	if err != nil {
		return linkMTU
	}
	if m, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && m >= ipv6MinMTU && m < linkMTU {
		return m
	}
	return linkMTU
}

// ipv6MinMTU is the least MTU IPv6 allows (RFC 8200).
const ipv6MinMTU = 1280

// MTU is the MTU of the interface holding the bind address (1500 when it
// cannot be found): the driver sizes its frames from it when netmtu is 0.
func (u *UDP) MTU() int { return u.mtu }

// IPHeader is the size of the IP header of the transport's datagrams (no
// options or extension headers): 20 bytes for IPv4, 40 for IPv6. A
// datagram of MTU bytes carries MTU − IPHeader − 8 (UDP) bytes of data.
func (u *UDP) IPHeader() int {
	if u.six {
		return IPv6Header
	}
	return IPv4Header
}

// The IP headers of IPHeader.
const (
	IPv4Header = 20
	IPv6Header = 40
)

// RecvBuffer is the receive buffer the kernel granted the unicast socket
// (as SO_RCVBUF reports it: twice what was asked, for its bookkeeping).
func (u *UDP) RecvBuffer() int {
	rc, err := u.ucast.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = rc.Control(func(fd uintptr) { n, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) })
	return n
}

// listen opens a UDP socket of addr's family with large buffers (and
// SO_REUSEADDR for the shared multicast socket). An IPv6 socket is
// IPV6_V6ONLY (Go sets it for "udp6"): it never sees IPv4 datagrams (as
// IPv4-mapped sources, which are no node's address), and an IPv4 link may
// use the same port.
func listen(addr netip.AddrPort, cfg UDPConfig, reuse bool) (*net.UDPConn, error) {
	rb, sb := cfg.RecvBuffer, cfg.SendBuffer
	if rb <= 0 {
		rb = DefaultRecvBuffer
	}
	if sb <= 0 {
		sb = DefaultSendBuffer
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if reuse {
				if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
					return
				}
			}
			setBuf(int(fd), unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, rb)
			setBuf(int(fd), unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, sb)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	network := "udp4"
	if addr.Addr().Is6() {
		network = "udp6"
	}
	pc, err := lc.ListenPacket(context.Background(), network, addr.String())
	// An IPv6 address is tentative until duplicate address detection
	// ends (about a second after it is added or its interface comes
	// up) and cannot be bound before: a ringd started with the network
	// waits for it rather than failing. An address on no interface at
	// all (a typo in the configuration) fails at once.
	for deadline := time.Now().Add(dadWait); err != nil && addr.Addr().Is6() &&
		errors.Is(err, unix.EADDRNOTAVAIL) && time.Now().Before(deadline) && assigned(addr.Addr()); {
		dadRetries.Add(1)
		time.Sleep(dadPoll)
		pc, err = lc.ListenPacket(context.Background(), network, addr.String())
	}
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return pc.(*net.UDPConn), nil
}

// dadWait bounds how long listen waits for a tentative IPv6 address
// (duplicate address detection: one probe and a second's wait by
// default, dad_transmits × retrans_time_ms); dadPoll is how often it
// tries again.
const (
	dadWait = 5 * time.Second
	dadPoll = 50 * time.Millisecond
)

// dadRetries counts listen's waits for a tentative address (for tests:
// the wait is for addresses under duplicate address detection only).
var dadRetries atomic.Int64

// assigned reports whether a is an address of one of this host's
// interfaces, tentative ones included (the kernel lists them).
func assigned(a netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true // cannot tell: keep the bounded wait
	}
	a = a.WithZone("")
	for _, x := range addrs {
		if n, ok := x.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == a.Unmap() {
				return true
			}
		}
	}
	return false
}

// setBuf asks for a socket buffer: the FORCE variant works as root
// (CAP_NET_ADMIN) beyond net.core.*mem_max; otherwise the plain one, which
// the kernel caps silently. A smaller buffer is not fatal, only lossier.
func setBuf(fd, force, plain, size int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, size) == nil {
		return
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, size)
}

func setsockopt(c *net.UDPConn, level, opt, v int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, v) }); err != nil {
		return err
	}
	return serr
}

// localPeers reports whether another configured node's address is local
// (several nodes on one host, as in the demo, or in one namespace): only
// then must multicasts loop back to this host. Without loopback a node
// no longer receives a copy of each of its own datagrams only to drop it,
// which on a busy ring is as many extra receives as it sends.
func localPeers(cfg UDPConfig) bool {
	for _, ap := range cfg.Peers {
		if ap == cfg.Bind {
			continue
		}
		if _, err := interfaceOf(ap.Addr()); err == nil {
			return true
		}
	}
	return false
}

// interfaceOf finds the interface that holds addr (the ring0 address), or
// for a loopback address the loopback interface (127.0.0.0/8 is all local
// on lo though only 127.0.0.1 is listed).
func interfaceOf(addr netip.Addr) (*net.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var prefixMatch *net.Interface
	for i := range ifs {
		addrs, err := ifs[i].Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			if ip.Unmap() == addr {
				return &ifs[i], nil
			}
			ones, _ := ipn.Mask.Size()
			if ifs[i].Flags&net.FlagLoopback != 0 && netip.PrefixFrom(ip.Unmap(), ones).Contains(addr) {
				prefixMatch = &ifs[i]
			}
		}
	}
	if prefixMatch != nil {
		return prefixMatch, nil
	}
	return nil, fmt.Errorf("%w: no interface holds %s", ErrConfig, addr)
}

// Receivers returns the sockets to read: the multicast one (udp only) and
// the unicast one.
func (u *UDP) Receivers() []Receiver { return u.recv }

// LocalAddr is the address the unicast socket is bound to.
func (u *UDP) LocalAddr() netip.AddrPort { return u.ucast.LocalAddr().(*net.UDPAddr).AddrPort() }

// Send batches pkts into sendmmsg calls. A datagram that fails (no route,
// no address for the node) is skipped and the others are still sent.
// Broadcasts go to every other configured node (udpu) or to the group
// (udp), never to this node itself. Consecutive datagrams for the same
// destination(s) of one size (a burst of full frames) travel in one
// segmented message per destination (see maxGSOSegs).
func (u *UDP) Send(pkts []Packet) (int, error) {
	u.w.begin()
	var lastErr error
	for i := 0; i < len(pkts); {
		p := pkts[i]
		j := i + 1
		if size := len(p.Data); size >= minGSOSize && !u.w.noGSO {
			for j < len(pkts) && pkts[j].To == p.To && j-i < maxGSOSegs && (j-i+1)*size <= maxGSOBytes && len(pkts[j].Data) <= size {
				j++
				if len(pkts[j-1].Data) < size {
					break // a shorter one ends a run
				}
			}
		}
		run := pkts[i:j]
		i = j
		switch {
		case p.To != Broadcast:
			a, ok := u.peers[p.To]
			if !ok {
				lastErr = fmt.Errorf("%w: %d", ErrUnknownNode, p.To)
				continue
			}
			u.w.add(a, run)
		case u.group != nil:
			u.w.add(u.group, run)
		default:
			for _, a := range u.all {
				u.w.add(a, run)
			}
		}
	}
	sent, bytes, err := u.w.send()
	u.sentBytes.Add(uint64(bytes))
	if err != nil {
		lastErr = err
	}
	return sent, lastErr
}

// SentBytes is the total size of the datagrams Send handed to the kernel.
func (u *UDP) SentBytes() uint64 { return u.sentBytes.Load() }

// Backlog reports whether a datagram waits in a socket's receive queue
// (SIOCINQ: for UDP, the size of the next datagram).
func (u *UDP) Backlog() bool {
	for _, c := range []*net.UDPConn{u.ucast, u.mcast} {
		if c == nil {
			continue
		}
		rc, err := c.SyscallConn()
		if err != nil {
			continue
		}
		n := 0
		_ = rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
		if n > 0 {
			return true
		}
	}
	return false
}

// GroupBacklog reports whether a datagram waits on the multicast socket
// (always false for udpu).
func (u *UDP) GroupBacklog() bool {
	if u.mcast == nil {
		return false
	}
	return inq(u.mcast) > 0
}

func inq(c *net.UDPConn) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	return n
}

// Close closes the sockets; pending Recv calls return ErrClosed.
func (u *UDP) Close() error {
	var errs []error
	if u.mcast != nil {
		if err := u.mcast.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if err := u.ucast.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// IsGroupReceiver reports whether Receivers()[i] is the multicast socket
// (the first one, udp only).
func (u *UDP) IsGroupReceiver(i int) bool { return u.group != nil && i == 0 }
