package transport

import (
	"fmt"
	"net/netip"
	"slices"

	"ringmaster/totem"
)

// PeerSetter is implemented by transports whose destinations can change
// while they run: a cluster-wide reload that adds or removes a node of the
// node list (`ringctl config reload`) gives the ring driver the new list.
// Like Send, SetPeers is called by one goroutine at a time, holding the
// driver's runMu (Run, or a Flush or a reader stepping inline), so it
// needs no lock against Send.
type PeerSetter interface {
	// SetPeers replaces the configured nodes (self included), given as
	// NewUDPU/NewUDP's UDPConfig.Peers are, after the multicast port
	// adjustment (UnicastAddr) for udp. The local node's address cannot
	// change (the sockets are bound to it).
	SetPeers(peers map[totem.NodeID]netip.AddrPort) error
}

var _ PeerSetter = (*UDP)(nil)

// SetPeers implements PeerSetter. On error nothing changes.
func (u *UDP) SetPeers(peers map[totem.NodeID]netip.AddrPort) error {
	m, err := u.checkPeers(peers)
	if err != nil {
		return err
	}
	u.applyPeers(m)
	return nil
}

// checkPeers validates a new node list for SetPeers and encodes it,
// changing nothing (Links checks every link's list before applying any).
func (u *UDP) checkPeers(peers map[totem.NodeID]netip.AddrPort) (map[totem.NodeID]*sockaddr, error) {
	m := make(map[totem.NodeID]*sockaddr, len(peers))
	for id, ap := range peers {
		if id == 0 || !sameFamily(ap.Addr(), u.six) || ap.Port() == 0 {
			return nil, fmt.Errorf("%w: peer %d address %s (want %s like the bind address)", ErrConfig, id, ap, family(u.six))
		}
		sa := newSockaddr(ap)
		m[id] = &sa
	}
	if u.self != 0 {
		old, now := u.peers[u.self], m[u.self]
		if now == nil || *now != *old {
			return nil, fmt.Errorf("%w: the local node %d cannot change its address while it runs", ErrConfig, u.self)
		}
	}
	return m, nil
}

// applyPeers installs a node list checkPeers accepted.
func (u *UDP) applyPeers(m map[totem.NodeID]*sockaddr) {
	u.peers = m
	if u.group == nil {
		ids := make([]totem.NodeID, 0, len(m))
		for id := range m {
			if id != u.self {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		u.all = u.all[:0]
		for _, id := range ids {
			u.all = append(u.all, m[id])
		}
	}
}
