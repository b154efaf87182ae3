package transport

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"

	"ringmaster/totem"
	"ringmaster/totem/link"
)

// Redundant links (corosync 3's knet links): a node reaches its peers over
// up to link.MaxLinks networks. Links runs one UDP transport (udpu or udp)
// per link and sends each datagram on the link(s) a link.Table chooses for
// its destination; the table comes from the ring driver's heartbeat monitor
// (totem/link), which is where link health is decided. Links itself keeps
// no health state and sends no heartbeats: SendOn is the driver's way to
// put a heartbeat on one given link.
//
//	datagram            udpu                              udp
//	to one node         on Choose(node)                   on Choose(node)
//	broadcast           one unicast per other node, each  one multicast on every link some
//	                    on Choose(node)                   node's Choose names
//
// Received datagrams carry the number of the link they arrived on
// (Msg.Link), so that a heartbeat proves the link it came on and nothing
// else. Each link has its own address family (IPv4 or IPv6, from its
// Bind): link 0 may be IPv4 and link 1 IPv6.

// LinkConfig is one link of NewLinks.
type LinkConfig struct {
	Number uint8
	// UDP is the link's own transport: its local address (Bind), every
	// node's address on this link (Peers, self included), and for udp
	// its multicast group (Mcast, distinct per link) and TTL.
	UDP UDPConfig
}

// LinksConfig configures NewLinks.
type LinksConfig struct {
	// Multicast selects transport udp on every link (udpu otherwise).
	Multicast bool
	Links     []LinkConfig
}

// Links is the multi-link transport (see above). Send is called by one
// goroutine at a time (whoever holds the driver's runMu: Run, a Flush or
// a reader stepping inline); SendOn, SetTable and the read-only accessors
// by any goroutine.
type Links struct {
	multicast bool
	nums      []uint8             // configured link numbers, ascending
	byNum     [link.MaxLinks]*UDP // nil: not configured
	self      totem.NodeID
	peers     []totem.NodeID // the other nodes, ascending (udpu broadcasts)
	table     atomic.Pointer[link.Table]
	// addrs[k] maps every node to its unicast address on link k (what
	// SendOn sends to), replaced whole by SetLinkPeers.
	addrs  atomic.Pointer[[link.MaxLinks]map[totem.NodeID]netip.AddrPort]
	recv   []Receiver
	groups []bool // recv[i] is a multicast socket

	// Send scratch (one goroutine at a time).
	turn    uint64
	scratch [link.MaxLinks][]Packet
}

var (
	_ Transport       = (*Links)(nil)
	_ ByteCounter     = (*Links)(nil)
	_ Backlogger      = (*Links)(nil)
	_ GroupBacklogger = (*Links)(nil)
)

// NewLinks opens every link's sockets. Until SetTable is called, every
// datagram goes on every link.
func NewLinks(cfg LinksConfig) (*Links, error) {
	if len(cfg.Links) == 0 || len(cfg.Links) > link.MaxLinks {
		return nil, fmt.Errorf("%w: %d links (want 1-%d)", ErrConfig, len(cfg.Links), link.MaxLinks)
	}
	l := &Links{multicast: cfg.Multicast}
	fail := func(err error) (*Links, error) {
		l.Close()
		return nil, err
	}
	var self totem.NodeID
	var addrs [link.MaxLinks]map[totem.NodeID]netip.AddrPort
	for _, lc := range cfg.Links {
		if lc.Number >= link.MaxLinks || l.byNum[lc.Number] != nil {
			return fail(fmt.Errorf("%w: link number %d (0-%d, each once)", ErrConfig, lc.Number, link.MaxLinks-1))
		}
		var u *UDP
		var err error
		if cfg.Multicast {
			u, err = NewUDP(lc.UDP)
		} else {
			u, err = NewUDPU(lc.UDP)
		}
		if err != nil {
			return fail(fmt.Errorf("link %d: %w", lc.Number, err))
		}
		l.byNum[lc.Number] = u
		l.nums = append(l.nums, lc.Number)
		addrs[lc.Number] = UnicastAddrs(lc.UDP.Peers, lc.UDP.Mcast, cfg.Multicast)
		if u.self == 0 || (self != 0 && u.self != self) {
			return fail(fmt.Errorf("%w: link %d: the local address %s is not one node's address on this link", ErrConfig, lc.Number, lc.UDP.Bind))
		}
		self = u.self
		for i, rc := range u.Receivers() {
			l.recv = append(l.recv, linkReceiver{Receiver: rc, num: lc.Number})
			l.groups = append(l.groups, u.group != nil && i == 0)
		}
	}
	slices.Sort(l.nums)
	l.self = self
	l.peers = otherNodes(slices.Collect(maps.Keys(addrs[l.nums[0]])), self)
	l.addrs.Store(&addrs)
	l.table.Store(link.NewTable(l.nums))
	return l, nil
}

// UnicastAddrs are the addresses of the nodes' unicast sockets, where
// unicasts go and datagrams come from: peers themselves with udpu; with
// udp (multicast) each one's UnicastAddr (port − 1 when it has the
// group's port).
func UnicastAddrs(peers map[totem.NodeID]netip.AddrPort, mcast netip.AddrPort, multicast bool) map[totem.NodeID]netip.AddrPort {
	m := make(map[totem.NodeID]netip.AddrPort, len(peers))
	for id, ap := range peers {
		if multicast {
			ap = UnicastAddr(ap, mcast)
		}
		m[id] = ap
	}
	return m
}

func otherNodes(ids []totem.NodeID, self totem.NodeID) []totem.NodeID {
	ids = slices.DeleteFunc(ids, func(id totem.NodeID) bool { return id == self })
	slices.Sort(ids)
	return ids
}

// linkReceiver tags what a link's socket receives with the link number.
type linkReceiver struct {
	Receiver
	num uint8
}

func (r linkReceiver) Recv(msgs []Msg) (int, error) {
	n, err := r.Receiver.Recv(msgs)
	for i := range n {
		msgs[i].Link = r.num
	}
	return n, err
}

// SetTable installs the routing snapshot Send follows from now on.
func (l *Links) SetTable(t *link.Table) { l.table.Store(t) }

// Numbers are the configured link numbers, ascending.
func (l *Links) Numbers() []uint8 { return l.nums }

// Self is the local node (the one whose address every link is bound to).
func (l *Links) Self() totem.NodeID { return l.self }

// LocalAddr is link num's unicast address (the zero AddrPort for a link
// that is not configured).
func (l *Links) LocalAddr(num uint8) netip.AddrPort {
	if u := l.link(num); u != nil {
		return u.LocalAddr()
	}
	return netip.AddrPort{}
}

func (l *Links) link(num uint8) *UDP {
	if int(num) >= len(l.byNum) {
		return nil
	}
	return l.byNum[num]
}

// Send hands pkts to the links their destinations' Choose names (see the
// table above), with one turn of the active mode's round robin for the
// whole call, so that a destination's datagrams of one call travel on one
// link and keep their order. It returns the datagrams handed over on all
// links.
func (l *Links) Send(pkts []Packet) (int, error) {
	t := l.table.Load()
	for i := range l.scratch {
		l.scratch[i] = l.scratch[i][:0]
	}
	// Active mode takes turns per call, not per datagram: a call is one
	// step of the ring (the messages it multicasts, then the token), and
	// spread over links read by different goroutines the token would
	// overtake the messages it counts, and the receiver would ask for
	// retransmissions of datagrams still on their way.
	l.turn++
	// serves[k]: how many peers a broadcast reaches on link k in this
	// call (computed at the first broadcast). A link that serves every
	// peer takes the broadcast as it is (the link's own udpu fan-out, or
	// its group); udpu expands it per node only on a link that serves
	// some peers (their links differ), and sorts only those links.
	var serves [link.MaxLinks]int
	var spread [link.MaxLinks]bool
	planned := false
	for _, p := range pkts {
		if p.To != Broadcast {
			for _, k := range t.Choose(p.To, l.turn) {
				l.scratch[k] = append(l.scratch[k], p)
			}
			continue
		}
		if !planned {
			for _, id := range l.peers {
				for _, k := range t.Choose(id, l.turn) {
					serves[k]++
				}
			}
			planned = true
		}
		for _, k := range l.nums {
			switch {
			case serves[k] == 0:
			case l.multicast || serves[k] == len(l.peers):
				l.scratch[k] = append(l.scratch[k], p)
			default:
				spread[k] = true
				for _, id := range l.peers {
					if slices.Contains(t.Choose(id, l.turn), k) {
						l.scratch[k] = append(l.scratch[k], Packet{To: id, Data: p.Data})
					}
				}
			}
		}
	}
	sent := 0
	var errs []error
	for _, k := range l.nums {
		s := l.scratch[k]
		if len(s) == 0 {
			continue
		}
		if spread[k] {
			// Per destination together, in order: consecutive
			// datagrams of one size for one node travel as one
			// segmented message (UDP.Send).
			slices.SortStableFunc(s, func(a, b Packet) int { return int(a.To) - int(b.To) })
		}
		n, err := l.byNum[k].Send(s)
		sent += n
		if err != nil {
			if errors.Is(err, ErrClosed) {
				return sent, err
			}
			errs = append(errs, fmt.Errorf("link %d: %w", k, err))
		}
		clear(s) // drop the references to the caller's buffers
	}
	if len(errs) > 0 {
		return sent, errs[len(errs)-1]
	}
	return sent, nil
}

// SendOn sends one datagram to node to on link num, whatever the table
// says (heartbeats). Safe for concurrent use with Send.
func (l *Links) SendOn(num uint8, to totem.NodeID, data []byte) error {
	u := l.link(num)
	if u == nil {
		return fmt.Errorf("%w: link %d", ErrConfig, num)
	}
	ap, ok := l.addrs.Load()[num][to]
	if !ok {
		return fmt.Errorf("%w: %d on link %d", ErrUnknownNode, to, num)
	}
	if _, err := u.ucast.WriteToUDPAddrPort(data, ap); err != nil {
		if errors.Is(err, net.ErrClosed) {
			return ErrClosed
		}
		return fmt.Errorf("link %d: %w", num, err)
	}
	return nil
}

// Receivers returns every link's sockets; each Msg carries its link.
func (l *Links) Receivers() []Receiver { return l.recv }

// IsGroupReceiver reports whether Receivers()[i] is a multicast socket.
func (l *Links) IsGroupReceiver(i int) bool { return i < len(l.groups) && l.groups[i] }

// MTU is the smallest MTU of the links: a frame must fit each of them.
func (l *Links) MTU() int { return l.least((*UDP).MTU) }

// least is the smallest of f over the links.
func (l *Links) least(f func(*UDP) int) int {
	m := 0
	for _, k := range l.nums {
		if v := f(l.byNum[k]); m == 0 || v < m {
			m = v
		}
	}
	return m
}

// IPHeader is the largest IP header of the links (each link has its own
// family): 40 when one of them is IPv6, else 20. With MTU it sizes frames
// that fit every link.
func (l *Links) IPHeader() int {
	m := 0
	for _, k := range l.nums {
		m = max(m, l.byNum[k].IPHeader())
	}
	return m
}

// RecvBuffer is the smallest receive buffer the kernel granted a link.
func (l *Links) RecvBuffer() int { return l.least((*UDP).RecvBuffer) }

// SentBytes sums the links' counts.
func (l *Links) SentBytes() uint64 {
	var n uint64
	for _, k := range l.nums {
		n += l.byNum[k].SentBytes()
	}
	return n
}

// Backlog reports whether a datagram waits on any link's sockets.
func (l *Links) Backlog() bool {
	for _, k := range l.nums {
		if l.byNum[k].Backlog() {
			return true
		}
	}
	return false
}

// GroupBacklog reports whether a datagram waits on any link's multicast
// socket.
func (l *Links) GroupBacklog() bool {
	for _, k := range l.nums {
		if l.byNum[k].GroupBacklog() {
			return true
		}
	}
	return false
}

// SetLinkPeers replaces the nodes of every link (a node list changed by a
// reload): peers[k] is link k's map, as LinkConfig.UDP.Peers (before the
// multicast port adjustment), for exactly
// the configured links. Called by Send's goroutine (like PeerSetter). On
// error a link may already have changed; the local node's addresses
// cannot.
func (l *Links) SetLinkPeers(peers map[uint8]map[totem.NodeID]netip.AddrPort) error {
	if len(peers) != len(l.nums) {
		return fmt.Errorf("%w: %d links given, %d configured", ErrConfig, len(peers), len(l.nums))
	}
	for _, k := range l.nums {
		if _, ok := peers[k]; !ok {
			return fmt.Errorf("%w: link %d missing", ErrConfig, k)
		}
	}
	// Every link's list is checked before any is applied: links never
	// disagree about the node list.
	var addrs [link.MaxLinks]map[totem.NodeID]netip.AddrPort
	var checked [link.MaxLinks]map[totem.NodeID]*sockaddr
	for _, k := range l.nums {
		u := l.byNum[k]
		var group netip.AddrPort
		if u.group != nil {
			group = u.group.addrPort()
		}
		dst := UnicastAddrs(peers[k], group, u.group != nil)
		m, err := u.checkPeers(dst)
		if err != nil {
			return fmt.Errorf("link %d: %w", k, err)
		}
		addrs[k], checked[k] = dst, m
	}
	for _, k := range l.nums {
		l.byNum[k].applyPeers(checked[k])
	}
	l.addrs.Store(&addrs)
	l.peers = otherNodes(slices.Collect(maps.Keys(addrs[l.nums[0]])), l.self)
	return nil
}

// Close closes every link's sockets.
func (l *Links) Close() error {
	var errs []error
	for _, u := range l.byNum {
		if u != nil {
			if err := u.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
