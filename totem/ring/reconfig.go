package ring

import (
	"fmt"
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"ringmaster/totem"
	"ringmaster/totem/srp"
	"ringmaster/totem/transport"
)

// Live reconfiguration: a cluster-wide `ringctl config reload` changes the
// timings and the node list of a running ring, on every member at the same
// point of the ordered stream. The executive delivers that point from
// Run's own goroutine (inside output), and the Processor and the
// transport's Send belong to Run, so SetTimings and SetPeers only record
// the change and wake Run, which applies it at its next turn before it
// steps what it received (applyReconfig; Flush and stepInline, which step
// on their own goroutines between Run's turns, leave it to Run). They
// never block and may be called from any goroutine.
//
//	change     applied by            when
//	---------  --------------------  ----------------------------------------
//	timings    srp.Processor         next Run iteration (SetTimings: running
//	           .SetTimings           timers move by the change, see there)
//	timings    link heartbeats       next Run iteration, when derived from
//	           (several links)       the token (link.Monitor.SetHeartbeat)
//	peers      receive filter        at once (the readers' next datagram)
//	peers      transport.PeerSetter  next Run iteration (udpu destinations)

// reconfig holds changes waiting for Run.
type reconfig struct {
	mu      sync.Mutex
	timings *srp.Timings
	peers   map[totem.NodeID]netip.AddrPort
	// applied is what the Processor runs with since the last change
	// (nil: Config.Timings).
	applied atomic.Pointer[srp.Timings]
	// pending: a change was recorded (timings, peers, a multi-link
	// ring's link lists) that Run has not applied yet; Run's turns take
	// no lock while it is false.
	pending atomic.Bool
}

// recorded marks a recorded change for Run and wakes it.
func (r *Ring) recorded() {
	r.reconf.pending.Store(true)
	r.wakeRun()
}

// timingSetter is implemented by *srp.Processor (the tests' fakes need
// not).
type timingSetter interface {
	SetTimings(now time.Duration, t srp.Timings)
}

// SetTimings gives the running Processor new timings (token, consensus,
// join, window_size, ...: Config.Timings). Zero fields take srp's
// defaults. The frame-size scaling of the window (FlowScale) stays as the
// ring started.
func (r *Ring) SetTimings(t srp.Timings) {
	t = t.WithDefaults()
	r.reconf.mu.Lock()
	r.reconf.timings = &t
	r.reconf.mu.Unlock()
	r.recorded()
}

// Timings are the timings the Processor runs with: Config.Timings, or the
// last SetTimings once Run applied it.
func (r *Ring) Timings() srp.Timings {
	if t := r.reconf.applied.Load(); t != nil {
		return *t
	}
	return r.cfg.Timings.WithDefaults()
}

// SetPeers replaces the node list (Config.Peers: every configured node,
// this one included, with its ring address). Datagrams from a node no
// longer listed are dropped from now on (UnknownNode), a new node's are
// accepted; udpu sends to the new list from Run's next iteration. This
// node's own entry cannot change: its sockets are bound to it.
//
// A ring with redundant links takes SetLinks instead (every node needs
// its address on every link).
func (r *Ring) SetPeers(peers map[totem.NodeID]netip.AddrPort) error {
	if r.links != nil {
		return fmt.Errorf("%w: the ring runs %d links: SetLinks gives every node all of its addresses", ErrConfig, len(r.cfg.Links))
	}
	return r.setPeersFilter(peers)
}

// setPeersFilter is SetPeers for the lowest link (the one Config.Peers
// describes): the receive filter's list, and udpu's destinations on a
// single-link ring.
func (r *Ring) setPeersFilter(peers map[totem.NodeID]netip.AddrPort) error {
	self, ok := peers[r.cfg.Node]
	if !ok {
		return fmt.Errorf("%w: node %d is not among the new peers", ErrConfig, r.cfg.Node)
	}
	// Every accepted list keeps this node's address as configured.
	if cur, ok := r.cfg.Peers[r.cfg.Node]; ok && cur != self {
		return fmt.Errorf("%w: node %d cannot change its own address (%s → %s) while it runs", ErrConfig, r.cfg.Node, cur, self)
	}
	peers = maps.Clone(peers)
	c := r.cfg
	c.Peers = peers
	r.reconf.mu.Lock()
	if r.links == nil {
		// A multi-link ring's transport takes its lists from SetLinks.
		r.reconf.peers = peers
	}
	r.setSources(sources(c))
	r.reconf.mu.Unlock()
	r.recorded()
	return nil
}

// setSources installs the receive filter's node → source address map (nil:
// nothing is checked).
func (r *Ring) setSources(m map[totem.NodeID]netip.AddrPort) {
	if m == nil {
		r.srcs.Store(nil)
		return
	}
	r.srcs.Store(&m)
}

// loadSources is the receive filter's map in force (nil: unchecked).
func (r *Ring) loadSources() map[totem.NodeID]netip.AddrPort {
	if p := r.srcs.Load(); p != nil {
		return *p
	}
	return nil
}

// applyReconfig runs in Run: it hands pending changes to the Processor
// and the transport.
func (r *Ring) applyReconfig() {
	r.reconf.mu.Lock()
	t, peers := r.reconf.timings, r.reconf.peers
	r.reconf.timings, r.reconf.peers = nil, nil
	r.reconf.mu.Unlock()
	if t != nil {
		if ts, ok := r.proc.(timingSetter); ok {
			ts.SetTimings(r.now(), *t)
		}
		r.timings = *t
		r.reconf.applied.Store(t)
		if r.links != nil {
			r.links.setToken(r.now(), t.Token)
		}
		r.log.Info("totem timings changed", zap.Duration("token", t.Token), zap.Duration("consensus", t.Consensus),
			zap.Duration("join", t.Join), zap.Int("window_size", t.WindowSize), zap.Int("max_messages", t.MaxMessages))
	}
	if peers != nil {
		ps, ok := r.tr.(transport.PeerSetter)
		if !ok {
			return
		}
		if err := ps.SetPeers(transport.UnicastAddrs(peers, r.cfg.Mcast, r.cfg.Transport == "udp")); err != nil {
			r.log.Error("transport refused the new node list; it keeps sending to the old one", zap.Error(err))
			return
		}
		r.log.Info("node list changed", zap.Int("nodes", len(peers)))
	}
}
