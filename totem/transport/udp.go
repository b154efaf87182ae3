package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"syscall"

	"golang.org/x/net/ipv4"
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
	// bound to it, so datagrams leave with it as their source.
	Bind netip.AddrPort
	// Peers maps every configured node (self included) to its address.
	// udpu broadcasts to all of them; both transports send unicast
	// datagrams (the token) through it.
	Peers map[totem.NodeID]netip.AddrPort
	// Mcast is the multicast group and port (udp only).
	Mcast netip.AddrPort
	// TTL of multicast datagrams (udp only; 0 means 1).
	TTL int
	// RecvBuffer and SendBuffer size the sockets' kernel buffers (0: the
	// defaults above). As root SO_RCVBUFFORCE/SO_SNDBUFFORCE lift the
	// net.core.[rw]mem_max ceiling; otherwise the kernel caps them.
	RecvBuffer, SendBuffer int
}

// UDP is the udp (multicast) and udpu (unicast) transport.
type UDP struct {
	ucast *net.UDPConn
	upc   *ipv4.PacketConn
	mcast *net.UDPConn // nil for udpu
	mpc   *ipv4.PacketConn

	self  totem.NodeID // the peer whose address is Bind (0: none)
	peers map[totem.NodeID]*unix.RawSockaddrInet4
	all   []*unix.RawSockaddrInet4 // udpu: broadcast destinations (every peer but self), by node id
	group *unix.RawSockaddrInet4   // udp: multicast destination
	mtu   int                      // of the interface holding Bind

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
	u.recv = []Receiver{newReceiver(u.ucast, nil)}
	return u, nil
}

// NewUDP opens the udp (IPv4 multicast) transport: a unicast socket bound to
// cfg.Bind (sends everything, receives the token), and a socket bound to the
// group that joins it on the interface holding cfg.Bind's address. Multicast
// leaves through that interface (IP_MULTICAST_IF) with cfg.TTL, and loops
// back to local sockets (IP_MULTICAST_LOOP), so the node hears its own
// broadcasts and several nodes can share a host.
//
// Linux refuses to bind the group and a unicast address to the same port,
// so, as corosync does (mcastport for the group, mcastport − 1 for
// unicast), when cfg.Bind or a peer has the group's port its unicast
// socket uses that port − 1.
func NewUDP(cfg UDPConfig) (*UDP, error) {
	if !cfg.Mcast.Addr().Is4() || !cfg.Mcast.Addr().IsMulticast() {
		return nil, fmt.Errorf("%w: mcast address %s is not IPv4 multicast", ErrConfig, cfg.Mcast)
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
	if err := u.upc.SetMulticastInterface(ifi); err != nil {
		return fail(fmt.Errorf("IP_MULTICAST_IF %s: %w", ifi.Name, err))
	}
	if err := u.upc.SetMulticastTTL(ttl); err != nil {
		return fail(fmt.Errorf("IP_MULTICAST_TTL: %w", err))
	}
	if err := u.upc.SetMulticastLoopback(localPeers(cfg)); err != nil {
		return fail(fmt.Errorf("IP_MULTICAST_LOOP: %w", err))
	}
	// Binding to the group address (not INADDR_ANY) keeps unicast
	// datagrams of other local nodes out of this socket; SO_REUSEADDR lets
	// every local node bind the same group and port and get its own copy.
	mc, err := listen(cfg.Mcast, cfg, true)
	if err != nil {
		return fail(err)
	}
	u.mcast = mc
	u.mpc = ipv4.NewPacketConn(mc)
	if err := u.mpc.JoinGroup(ifi, &net.UDPAddr{IP: cfg.Mcast.Addr().AsSlice()}); err != nil {
		return fail(fmt.Errorf("join %s on %s: %w", cfg.Mcast.Addr(), ifi.Name, err))
	}
	// Only the groups this socket joined, not every group joined on the
	// host (Linux's default for sockets bound to a group is lax).
	if err := setsockopt(mc, unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0); err != nil {
		return fail(fmt.Errorf("IP_MULTICAST_ALL: %w", err))
	}
	g := sockaddr4(cfg.Mcast)
	u.group = &g
	// Our own multicasts loop back when other nodes share this host's
	// network stack (localPeers): they come from our unicast address, and
	// are dropped unread.
	self := sockaddr4(cfg.Bind)
	u.recv = []Receiver{newReceiver(mc, &self), newReceiver(u.ucast, nil)}
	return u, nil
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
	if !cfg.Bind.Addr().Is4() || cfg.Bind.Port() == 0 {
		return nil, fmt.Errorf("%w: bind address %s: want IPv4 address and port", ErrConfig, cfg.Bind)
	}
	u := &UDP{peers: make(map[totem.NodeID]*unix.RawSockaddrInet4, len(cfg.Peers)), mtu: 1500}
	for id, ap := range cfg.Peers {
		if id == 0 || !ap.Addr().Is4() || ap.Port() == 0 {
			return nil, fmt.Errorf("%w: peer %d address %s", ErrConfig, id, ap)
		}
		sa := sockaddr4(ap)
		u.peers[id] = &sa
		if ap == cfg.Bind {
			u.self = id
		}
	}
	if ifi, err := interfaceOf(cfg.Bind.Addr()); err == nil && ifi.MTU > 0 {
		u.mtu = ifi.MTU
	}
	c, err := listen(cfg.Bind, cfg, false)
	if err != nil {
		return nil, err
	}
	u.ucast = c
	u.upc = ipv4.NewPacketConn(c)
	rc, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	u.w.init(rc)
	return u, nil
}

// MTU is the MTU of the interface holding the bind address (1500 when it
// cannot be found): the driver sizes its frames from it when netmtu is 0.
func (u *UDP) MTU() int { return u.mtu }

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

// listen opens a UDP socket with large buffers (and SO_REUSEADDR for the
// shared multicast socket).
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
	pc, err := lc.ListenPacket(context.Background(), "udp4", addr.String())
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return pc.(*net.UDPConn), nil
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
	if u.mpc != nil {
		if err := u.mpc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if err := u.upc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// IsGroupReceiver reports whether Receivers()[i] is the multicast socket
// (the first one, udp only).
func (u *UDP) IsGroupReceiver(i int) bool { return u.group != nil && i == 0 }
