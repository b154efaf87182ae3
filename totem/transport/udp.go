package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
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

	peers map[totem.NodeID]*net.UDPAddr
	all   []*net.UDPAddr // udpu: broadcast destinations, by node id
	group *net.UDPAddr   // udp: multicast destination

	recv []Receiver

	// Send scratch, reused: Send is called by one goroutine at a time.
	wmsgs []ipv4.Message
	wbufs [][1][]byte
}

var _ Transport = (*UDP)(nil)

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
		u.all = append(u.all, u.peers[id])
	}
	u.recv = []Receiver{&udpReceiver{pc: u.upc}}
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
	ifi, err := interfaceOf(cfg.Bind.Addr())
	if err != nil {
		return nil, err
	}
	u, err := newUDP(cfg)
	if err != nil {
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
	if err := u.upc.SetMulticastLoopback(true); err != nil {
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
	u.group = net.UDPAddrFromAddrPort(cfg.Mcast)
	u.recv = []Receiver{&udpReceiver{pc: u.mpc}, &udpReceiver{pc: u.upc}}
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
	u := &UDP{peers: make(map[totem.NodeID]*net.UDPAddr, len(cfg.Peers))}
	for id, ap := range cfg.Peers {
		if id == 0 || !ap.Addr().Is4() || ap.Port() == 0 {
			return nil, fmt.Errorf("%w: peer %d address %s", ErrConfig, id, ap)
		}
		u.peers[id] = net.UDPAddrFromAddrPort(ap)
	}
	c, err := listen(cfg.Bind, cfg, false)
	if err != nil {
		return nil, err
	}
	u.ucast = c
	u.upc = ipv4.NewPacketConn(c)
	return u, nil
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
func (u *UDP) Send(pkts []Packet) (int, error) {
	need := 0
	for _, p := range pkts {
		if p.To == Broadcast && u.group == nil {
			need += len(u.all)
		} else {
			need++
		}
	}
	if need > len(u.wmsgs) {
		u.wmsgs = make([]ipv4.Message, 2*need)
		u.wbufs = make([][1][]byte, 2*need)
		for i := range u.wmsgs {
			u.wmsgs[i].Buffers = u.wbufs[i][:]
		}
	}
	var lastErr error
	n := 0
	add := func(data []byte, to *net.UDPAddr) {
		u.wbufs[n][0] = data
		u.wmsgs[n].Addr = to
		n++
	}
	for _, p := range pkts {
		switch {
		case p.To != Broadcast:
			a, ok := u.peers[p.To]
			if !ok {
				lastErr = fmt.Errorf("%w: %d", ErrUnknownNode, p.To)
				continue
			}
			add(p.Data, a)
		case u.group != nil:
			add(p.Data, u.group)
		default:
			for _, a := range u.all {
				add(p.Data, a)
			}
		}
	}
	ms := u.wmsgs[:n]
	sent := 0
	for len(ms) > 0 {
		k, err := u.upc.WriteBatch(ms, 0)
		sent += k
		ms = ms[k:]
		if err == nil && k == 0 {
			break // cannot happen with sendmmsg; do not spin if it does
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return sent, ErrClosed
			}
			lastErr = err
			if len(ms) > 0 {
				ms = ms[1:] // skip the one that failed
			}
		}
	}
	for i := range n {
		u.wbufs[i][0] = nil // do not pin the caller's buffers
	}
	return sent, lastErr
}

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

type udpReceiver struct {
	pc   *ipv4.PacketConn
	msgs []ipv4.Message
	bufs [][1][]byte
}

// Recv reads a batch with recvmmsg.
func (r *udpReceiver) Recv(msgs []Msg) (int, error) {
	if len(msgs) > len(r.msgs) {
		r.msgs = make([]ipv4.Message, len(msgs))
		r.bufs = make([][1][]byte, len(msgs))
	}
	ms := r.msgs[:len(msgs)]
	for i := range msgs {
		r.bufs[i][0] = msgs[i].Buf
		ms[i] = ipv4.Message{Buffers: r.bufs[i][:]}
	}
	n, err := r.pc.ReadBatch(ms, 0)
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return 0, ErrClosed
		}
		return 0, fmt.Errorf("recvmmsg: %w", err)
	}
	for i := 0; i < n; i++ {
		msgs[i].N = ms[i].N
		msgs[i].Truncated = ms[i].Flags&unix.MSG_TRUNC != 0
	}
	return n, nil
}
