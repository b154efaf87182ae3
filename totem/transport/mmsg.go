package transport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batched UDP I/O with sendmmsg/recvmmsg straight on the socket (through
// syscall.RawConn, so the Go netpoller still parks the caller while the
// socket is not ready). Headers, iovecs and addresses are kept and reused:
// a batch costs one system call and no allocation. (golang.org/x/net's
// ReadBatch allocates a net.UDPAddr for every datagram and re-encodes every
// destination at every WriteBatch.)

// sockaddr is an address as the kernel reads and writes it: a sockaddr_in
// (IPv4) or a sockaddr_in6 (IPv6) in storage that holds either, and its
// length. A link's sockets are of one family (udp4 or udp6), so every
// sockaddr of one UDP transport has its family.
type sockaddr struct {
	raw unix.RawSockaddrInet6 // an IPv4 address uses the first 16 bytes
	len uint32
}

// newSockaddr encodes ap (IPv4, or IPv6 without a zone: the ring's
// addresses are checked by the callers) with the port in network order.
func newSockaddr(ap netip.AddrPort) sockaddr {
	var s sockaddr
	if ap.Addr().Is4() {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&s.raw))
		sa.Family, sa.Addr = unix.AF_INET, ap.Addr().As4()
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(ap.Port()>>8), byte(ap.Port())
		s.len = unix.SizeofSockaddrInet4
		return s
	}
	s.raw.Family, s.raw.Addr = unix.AF_INET6, ap.Addr().As16()
	p := (*[2]byte)(unsafe.Pointer(&s.raw.Port))
	p[0], p[1] = byte(ap.Port()>>8), byte(ap.Port())
	s.len = unix.SizeofSockaddrInet6
	return s
}

// addrPort decodes the address (see decodeSockaddr).
func (s *sockaddr) addrPort() netip.AddrPort { return decodeSockaddr(&s.raw, s.len) }

// decodeSockaddr decodes the first n bytes of raw as the kernel wrote them
// (recvmmsg's msg_name and msg_namelen). Anything but a whole AF_INET or
// AF_INET6 address gives the zero AddrPort, which is no node's address
// (the kernel always reports one for UDP; the driver's source check
// skips a zero source, which only the in-memory test transport gives).
// An IPv6 source's
// scope ID is not kept (the ring's addresses have no zone, see
// config.checkRingAddr), nor is its flow label.
func decodeSockaddr(raw *unix.RawSockaddrInet6, n uint32) netip.AddrPort {
	switch {
	case raw.Family == unix.AF_INET && n >= unix.SizeofSockaddrInet4:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(raw))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	case raw.Family == unix.AF_INET6 && n >= unix.SizeofSockaddrInet6:
		p := (*[2]byte)(unsafe.Pointer(&raw.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(raw.Addr), uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

// UDP generic segmentation offload (UDP_SEGMENT, Linux 4.18): one
// message carries several datagrams of one size (the last may be shorter)
// for one destination, and the kernel cuts them apart as late as it can —
// at the device, or not at all across a veth and a bridge. A burst of
// MTU-sized frames then costs one trip through the stack per destination
// instead of one per datagram. The receiver sees ordinary datagrams.
const (
	maxGSOSegs  = 64    // UDP_MAX_SEGMENTS of the oldest kernels with GSO
	maxGSOBytes = 65000 // the datagrams of one message together (a UDP length)
	minGSOSize  = 512   // below this, runs are tokens and joins: not worth it
	cmsgSlot    = 24    // unix.CmsgSpace(2): one UDP_SEGMENT control message
)

// wslot is one message of a batch: n datagrams (parts[first:first+n]) for
// one destination, cut every gso bytes when n > 1.
type wslot struct {
	to       *sockaddr
	first, n int
	gso      int
}

// mmsgWriter sends batches on one socket. Not safe for concurrent use.
type mmsgWriter struct {
	rc    syscall.RawConn
	parts [][]byte // datagrams of the batch being built
	slots []wslot
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec // one per part
	cmsgs []byte       // cmsgSlot bytes per slot
	// noGSO is set for good when the kernel or the route refuses
	// UDP_SEGMENT; every message then carries one datagram.
	noGSO bool

	// The call in progress: fn (bound once, so that a send allocates no
	// closure) sends hdrs[off:n] and leaves the result in k and errno.
	fn     func(fd uintptr) bool
	off, n int
	k      int
	errno  syscall.Errno
}

func (w *mmsgWriter) init(rc syscall.RawConn) {
	w.rc = rc
	w.fn = w.call
}

func (w *mmsgWriter) call(fd uintptr) bool {
	r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.hdrs[w.off])), uintptr(w.n-w.off), 0, 0, 0)
	if e == unix.EAGAIN {
		return false
	}
	w.k, w.errno = int(r), e
	return true
}

// begin starts a new batch.
func (w *mmsgWriter) begin() {
	clear(w.parts)
	w.parts, w.slots = w.parts[:0], w.slots[:0]
}

// add queues datagrams for to: several in one message when they qualify
// for segmentation (all of the first one's size but the last, which may
// be shorter; see UDP.Send), else one message each. The data must stay
// valid until send returns.
func (w *mmsgWriter) add(to *sockaddr, run []Packet) {
	gso := len(run) > 1 && !w.noGSO
	if gso {
		w.slots = append(w.slots, wslot{to: to, first: len(w.parts), n: len(run), gso: len(run[0].Data)})
	}
	for _, p := range run {
		if !gso {
			w.slots = append(w.slots, wslot{to: to, first: len(w.parts), n: 1})
		}
		w.parts = append(w.parts, p.Data)
	}
}

// build fills the system call's headers for slots[from:].
func (w *mmsgWriter) build(from int) {
	if len(w.parts) > len(w.iovs) {
		w.iovs = make([]unix.Iovec, 2*len(w.parts))
	}
	if len(w.slots) > len(w.hdrs) {
		w.hdrs = make([]unix.Mmsghdr, 2*len(w.slots))
		w.cmsgs = make([]byte, cmsgSlot*2*len(w.slots))
	}
	for i, p := range w.parts {
		iov := &w.iovs[i]
		iov.Base = nil
		if len(p) > 0 {
			iov.Base = &p[0]
		}
		iov.SetLen(len(p))
	}
	for i := from; i < len(w.slots); i++ {
		s := &w.slots[i]
		h := &w.hdrs[i].Hdr
		*h = unix.Msghdr{}
		h.Name = (*byte)(unsafe.Pointer(&s.to.raw))
		h.Namelen = s.to.len
		h.Iov = &w.iovs[s.first]
		h.SetIovlen(s.n)
		if s.n > 1 {
			c := w.cmsgs[i*cmsgSlot : (i+1)*cmsgSlot]
			clear(c)
			ch := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
			ch.Level, ch.Type = unix.SOL_UDP, unix.UDP_SEGMENT
			ch.SetLen(unix.CmsgLen(2))
			*(*uint16)(unsafe.Pointer(&c[unix.CmsgLen(0)])) = uint16(s.gso)
			h.Control = &c[0]
			h.SetControllen(unix.CmsgSpace(2))
		}
		w.hdrs[i].Len = 0
	}
}

// send sends the batch. A datagram the kernel refuses (no route, for
// example) is skipped and the others are still sent; it returns how many
// datagrams were sent and the last such error, or ErrClosed. If the
// kernel refuses segmentation, the rest goes out one datagram per message
// and segmentation stays off.
func (w *mmsgWriter) send() (sent, bytes int, err error) {
	var lastErr error
	w.build(0)
	w.n = len(w.slots)
	for w.off = 0; w.off < w.n; {
		w.k, w.errno = 0, 0
		if err := w.rc.Write(w.fn); err != nil {
			w.clear()
			if errors.Is(err, net.ErrClosed) {
				return sent, bytes, ErrClosed
			}
			return sent, bytes, err
		}
		switch {
		case w.errno == unix.EINTR:
		case w.errno != 0 && w.slots[w.off].n > 1 && !w.noGSO:
			// EIO (no checksum offload on the route), EINVAL (old
			// kernel), ...: split the rest and carry on.
			w.noGSO = true
			w.split(w.off)
			w.n = len(w.slots)
		case w.errno != 0:
			lastErr = fmt.Errorf("sendmmsg: %w", w.errno)
			w.off++ // skip the one that failed
		default:
			for _, s := range w.slots[w.off : w.off+w.k] {
				sent += s.n
				for _, p := range w.parts[s.first : s.first+s.n] {
					bytes += len(p)
				}
			}
			w.off += w.k
		}
	}
	w.clear()
	return sent, bytes, lastErr
}

// split turns slots[from:] into one message per datagram.
func (w *mmsgWriter) split(from int) {
	rest := append([]wslot(nil), w.slots[from:]...)
	w.slots = w.slots[:from]
	for _, s := range rest {
		for k := range s.n {
			w.slots = append(w.slots, wslot{to: s.to, first: s.first + k, n: 1})
		}
	}
	w.build(from)
}

// clear drops the references to the caller's buffers.
func (w *mmsgWriter) clear() {
	for i := range w.parts {
		w.iovs[i].Base = nil
	}
	for i := range w.slots {
		w.hdrs[i].Hdr.Name = nil
	}
	w.begin()
}

// udpReceiver reads batches from one socket. Not safe for concurrent use.
type udpReceiver struct {
	rc    syscall.RawConn
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // room for either family
	// gro: the socket has UDP_GRO, so a segmented burst arrives as one
	// buffer with its segment size in a control message (cmsgs, one
	// groSlot per message).
	gro      bool
	groTried bool // the first Recv decides (the caller's slot sizes)
	cmsgs    []byte
	// self, when valid, is this node's own unicast address: datagrams
	// from it (our own multicasts, looped back for the other nodes of
	// this host) are dropped before anybody decrypts them.
	self netip.AddrPort

	// The call in progress (see mmsgWriter).
	fn    func(fd uintptr) bool
	want  int
	n     int
	errno syscall.Errno
}

// groSlot is room for one UDP_GRO control message (an int).
const groSlot = 24 // unix.CmsgSpace(4)

// maxUDP is the largest UDP payload, and so the largest coalesced burst.
const maxUDP = 65507

func newReceiver(c *net.UDPConn, self netip.AddrPort) *udpReceiver {
	rc, err := c.SyscallConn()
	if err != nil {
		panic(err) // *net.UDPConn always has one
	}
	r := &udpReceiver{rc: rc, self: self}
	r.fn = r.call
	return r
}

// groSize extracts the segment size from message i's control data (0 when
// the kernel did not coalesce it).
func (r *udpReceiver) groSize(i int) int {
	h := &r.hdrs[i].Hdr
	if !r.gro || h.Controllen == 0 {
		return 0
	}
	c := r.cmsgs[i*groSlot : i*groSlot+min(int(h.Controllen), groSlot)]
	for len(c) >= unix.CmsgLen(0) {
		ch := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
		l := int(ch.Len)
		if l < unix.CmsgLen(0) || l > len(c) {
			return 0
		}
		if ch.Level == unix.SOL_UDP && ch.Type == unix.UDP_GRO && l >= unix.CmsgLen(4) {
			return int(*(*int32)(unsafe.Pointer(&c[unix.CmsgLen(0)])))
		}
		c = c[min(len(c), unix.CmsgSpace(l-unix.CmsgLen(0))):]
	}
	return 0
}

func (r *udpReceiver) call(fd uintptr) bool {
	res, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(r.want), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN {
		return false
	}
	r.n, r.errno = int(res), e
	return true
}

// Recv reads a batch with recvmmsg.
func (r *udpReceiver) Recv(msgs []Msg) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	if !r.groTried {
		// A segmented burst (UDP_SEGMENT) can then stay one buffer from
		// the sender's socket to ours: one trip through the stack, one
		// slot. Only if every slot can hold a whole one: the kernel
		// would cut a bigger burst short and the rest would be lost.
		// Without UDP_GRO (old kernel) bursts are cut apart on arrival.
		r.groTried = true
		big := true
		for i := range msgs {
			big = big && len(msgs[i].Buf) >= maxUDP
		}
		if big {
			_ = r.rc.Control(func(fd uintptr) {
				r.gro = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO, 1) == nil
			})
		}
	}
	if len(msgs) > len(r.hdrs) {
		r.hdrs = make([]unix.Mmsghdr, len(msgs))
		r.iovs = make([]unix.Iovec, len(msgs))
		r.names = make([]unix.RawSockaddrInet6, len(msgs))
		r.cmsgs = make([]byte, groSlot*len(msgs))
	}
	for {
		for i := range msgs {
			iov := &r.iovs[i]
			iov.Base = &msgs[i].Buf[:1][0]
			iov.SetLen(len(msgs[i].Buf))
			h := &r.hdrs[i].Hdr
			h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
			h.Namelen = unix.SizeofSockaddrInet6
			h.Iov = iov
			h.SetIovlen(1)
			h.Flags = 0
			h.Control, h.Controllen = nil, 0
			if r.gro {
				h.Control = &r.cmsgs[i*groSlot]
				h.SetControllen(groSlot)
			}
		}
		r.want, r.n, r.errno = len(msgs), 0, 0
		err := r.rc.Read(r.fn)
		n, errno := r.n, r.errno
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return 0, ErrClosed
			}
			return 0, fmt.Errorf("recvmmsg: %w", err)
		}
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, fmt.Errorf("recvmmsg: %w", errno)
		}
		k := 0
		for i := range n {
			from := decodeSockaddr(&r.names[i], r.hdrs[i].Hdr.Namelen)
			if r.self.IsValid() && from == r.self {
				continue
			}
			if k != i {
				msgs[k].Buf, msgs[i].Buf = msgs[i].Buf, msgs[k].Buf
			}
			msgs[k].N = int(r.hdrs[i].Len)
			msgs[k].Truncated = r.hdrs[i].Hdr.Flags&unix.MSG_TRUNC != 0
			msgs[k].Seg = r.groSize(i)
			msgs[k].From = from
			k++
		}
		if k > 0 {
			return k, nil
		}
	}
}
