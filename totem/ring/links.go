package ring

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"ringmaster/totem"
	"ringmaster/totem/link"
	"ringmaster/totem/transport"
	"ringmaster/totem/wire"
)

// Redundant links. With two or more Config.Links the driver opens one
// socket set per link (transport.Links) and runs the heartbeats of
// totem/link next to the protocol:
//
//	heartbeat goroutine ── Monitor.Tick ──▶ pings, sealed, SendOn(link)
//	reader goroutines   ── ping ──▶ pong on the link it came on
//	                    ── pong ──▶ Monitor.Pong
//	either              ── changes ──▶ transport.Links.SetTable, log, OnLinkChange
//
// Heartbeats are sealed in the ring's envelope (authenticated, replay
// window: a forged or replayed ping or pong is dropped like any other
// datagram, see filter.go) and taken out in the readers before the
// Processor sees anything: srp knows nothing of links. A heartbeat counts
// only if it arrived on the link it names and from its sender's address on
// that link, so traffic crossing from one network to the other never
// proves a link. The Monitor is pure; linkDriver serialises it with a
// mutex (the heartbeat goroutine and the readers call it).

// Link is one network of a multi-link ring (corosync's totem.interface /
// knet link): this node's address on it, every node's address on it, and
// for udp its multicast group.
type Link struct {
	Number   uint8                           // 0 … link.MaxLinks−1
	Bind     netip.AddrPort                  // this node's address on the link
	Peers    map[totem.NodeID]netip.AddrPort // every node's address on the link, self included
	Mcast    netip.AddrPort                  // udp only: the link's group (distinct per link)
	TTL      int                             // udp only
	Priority int                             // passive mode prefers higher
}

// LinkSettings are the heartbeat and policy settings of a multi-link ring;
// zero values are derived from the token timeout (link.Derive).
type LinkSettings struct {
	Mode         link.Mode
	PingInterval time.Duration
	PingTimeout  time.Duration
	PongCount    int
	// OnChange, when set, is called for every link that goes up or down
	// (from the heartbeat goroutine or a reader; never concurrently).
	OnChange func(LinkChange)
}

// LinkChange is a link to a peer that went up or down.
type LinkChange struct {
	Peer   totem.NodeID
	Link   uint8
	Up     bool
	Local  netip.AddrPort
	Remote netip.AddrPort
}

// linkDriver runs the heartbeats of a multi-link ring.
type linkDriver struct {
	r  *Ring
	tr *transport.Links
	// configured are Config.LinkSettings as given (zero heartbeat
	// settings: derived from the token, again at every SetTimings); the
	// ones in force are mon's (mon.Config).
	configured LinkSettings

	mu  sync.Mutex // serialises mon and OnChange
	mon *link.Monitor

	// addrs[k] maps every node to its source address on link k (as the
	// filter sees it: udp's unicast socket); replaced whole by SetLinks.
	addrs atomic.Pointer[[link.MaxLinks]map[totem.NodeID]netip.AddrPort]
	// pending per-link peers for the transport (SetLinks), applied by Run.
	pendingMu sync.Mutex
	pending   map[uint8]map[totem.NodeID]netip.AddrPort

	ups, downs atomic.Uint64
	wake       chan struct{}
}

// normalizeLinks checks cfg.Links and makes the lowest link the one Bind,
// Peers, Mcast and TTL describe (the single-link view the rest of the
// driver and the receive filter keep using for it).
func normalizeLinks(cfg *Config) error {
	if len(cfg.Links) == 0 {
		return nil
	}
	if len(cfg.Links) > link.MaxLinks {
		return fmt.Errorf("%w: %d links (at most %d)", ErrConfig, len(cfg.Links), link.MaxLinks)
	}
	cfg.Links = slices.Clone(cfg.Links)
	slices.SortFunc(cfg.Links, func(a, b Link) int { return int(a.Number) - int(b.Number) })
	ids := slices.Sorted(maps.Keys(cfg.Links[0].Peers))
	for i, l := range cfg.Links {
		if l.Number >= link.MaxLinks || (i > 0 && cfg.Links[i-1].Number == l.Number) {
			return fmt.Errorf("%w: link number %d (0-%d, each once)", ErrConfig, l.Number, link.MaxLinks-1)
		}
		if !slices.Equal(slices.Sorted(maps.Keys(l.Peers)), ids) {
			return fmt.Errorf("%w: link %d lists other nodes than link %d: every node needs an address on every link", ErrConfig, l.Number, cfg.Links[0].Number)
		}
	}
	first := cfg.Links[0]
	cfg.Bind, cfg.Peers, cfg.Mcast, cfg.TTL = first.Bind, first.Peers, first.Mcast, first.TTL
	return nil
}

// openLinks opens the multi-link transport (two or more links).
func openLinks(cfg Config) (*transport.Links, error) {
	if _, ok := cfg.Peers[cfg.Node]; !ok {
		return nil, fmt.Errorf("%w: node %d is not among the peers", ErrConfig, cfg.Node)
	}
	lc := transport.LinksConfig{Multicast: cfg.Transport == "udp"}
	for _, l := range cfg.Links {
		lc.Links = append(lc.Links, transport.LinkConfig{Number: l.Number,
			UDP: transport.UDPConfig{Bind: l.Bind, Peers: l.Peers, Mcast: l.Mcast, TTL: l.TTL}})
	}
	t, err := transport.NewLinks(lc)
	if err != nil {
		return nil, fmt.Errorf("transport %s: %w", cfg.Transport, err)
	}
	return t, nil
}

func newLinkDriver(r *Ring, tr *transport.Links) (*linkDriver, error) {
	cfg := r.cfg
	lc := link.Config{Mode: cfg.LinkSettings.Mode, PingInterval: cfg.LinkSettings.PingInterval,
		PingTimeout: cfg.LinkSettings.PingTimeout, PongCount: cfg.LinkSettings.PongCount}
	for _, l := range cfg.Links {
		lc.Links = append(lc.Links, link.Spec{Number: l.Number, Priority: l.Priority})
	}
	for id := range cfg.Peers {
		if id != cfg.Node {
			lc.Peers = append(lc.Peers, id)
		}
	}
	lc = link.Derive(lc, cfg.Timings.Token)
	mon, err := link.New(lc, r.now())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	d := &linkDriver{r: r, tr: tr, configured: cfg.LinkSettings, mon: mon, wake: make(chan struct{}, 1)}
	d.storeAddrs(cfg.Transport, cfg.Links)
	tr.SetTable(mon.Table())
	r.log.Info("redundant links", zap.Int("links", len(cfg.Links)), zap.Stringer("mode", lc.Mode),
		zap.Duration("ping_interval", lc.PingInterval), zap.Duration("ping_timeout", lc.PingTimeout), zap.Int("pong_count", lc.PongCount))
	return d, nil
}

func (d *linkDriver) storeAddrs(tr string, links []Link) {
	var a [link.MaxLinks]map[totem.NodeID]netip.AddrPort
	for _, l := range links {
		a[l.Number] = transport.UnicastAddrs(l.Peers, l.Mcast, tr == "udp")
	}
	d.addrs.Store(&a)
}

// knownSource reports whether from is one of node's addresses on any link
// (the receive filter accepts a node's datagrams from each of them).
func (d *linkDriver) knownSource(node totem.NodeID, from netip.AddrPort) bool {
	for _, m := range d.addrs.Load() {
		if ap, ok := m[node]; ok && ap == from {
			return true
		}
	}
	return false
}

// run is the heartbeat goroutine: ping rounds and timeouts at the
// Monitor's deadline, until stop is closed.
func (d *linkDriver) run(stop <-chan struct{}) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	buf := make([]byte, 0, 256)
	for {
		d.mu.Lock()
		pings := d.mon.Tick(d.r.now())
		d.publish()
		deadline := d.mon.Deadline()
		d.mu.Unlock()
		for _, p := range pings {
			buf = d.seal(buf[:0], p.Peer, false, wire.LinkHeartbeat{Link: p.Link, Stamp: p.Stamp})
			// A failed send (link down: no route) is what the
			// missing pong reports; nothing else to do.
			_ = d.tr.SendOn(p.Link, p.Peer, buf)
		}
		t.Reset(max(0, deadline-d.r.now()))
		select {
		case <-stop:
			return
		case <-t.C:
		case <-d.wake:
		}
	}
}

func (d *linkDriver) seal(dst []byte, to totem.NodeID, pong bool, hb wire.LinkHeartbeat) []byte {
	var pt [wire.LinkHeartbeatLen]byte
	return d.r.env.Seal(dst, uint32(to), wire.AppendLinkHeartbeat(pt[:0], d.r.cfg.Node, pong, &hb))
}

// setToken derives the heartbeat settings again from a token changed by
// SetTimings (those configured explicitly stay). Without it a reload that
// shortens the token would leave the heartbeats of the old, longer one: a
// dead link would then be noticed only after the ring declared the token
// lost on it, and one link's failure would change the membership.
func (d *linkDriver) setToken(now, token time.Duration) {
	c := d.configured
	lc := link.Derive(link.Config{PingInterval: c.PingInterval, PingTimeout: c.PingTimeout, PongCount: c.PongCount}, token)
	d.mu.Lock()
	cur := d.mon.Config()
	changed := lc.PingInterval != cur.PingInterval || lc.PingTimeout != cur.PingTimeout
	var err error
	if changed {
		err = d.mon.SetHeartbeat(now, lc.PingInterval, lc.PingTimeout)
	}
	d.mu.Unlock()
	switch {
	case err != nil:
		d.r.log.Error("link heartbeats keep their settings", zap.Error(err))
	case changed:
		d.r.log.Info("link heartbeats follow the new token", zap.Duration("ping_interval", lc.PingInterval), zap.Duration("ping_timeout", lc.PingTimeout))
		select { // the next ping round may now be due earlier
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// heartbeat returns the heartbeat settings in force.
func (d *linkDriver) heartbeat() (interval, timeout time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.mon.Config()
	return c.PingInterval, c.PingTimeout
}

// receive handles an opened heartbeat from a reader: answer a ping on its
// link, count a pong. Heartbeats that name another link than the one they
// came on, or come from another address than the sender's on that link,
// are dropped (Malformed / BadAddress).
func (d *linkDriver) receive(pt []byte, on uint8, from netip.AddrPort) {
	var hb wire.LinkHeartbeat
	h, pong, err := wire.DecodeLinkHeartbeat(pt, &hb)
	if err != nil {
		d.r.reject(classifyWire(err), from, err)
		return
	}
	if hb.Link != on {
		d.r.reject(rejectMalformed, from, fmt.Errorf("node %d: heartbeat of link %d arrived on link %d", h.From, hb.Link, on))
		return
	}
	if want := d.addrs.Load()[on][h.From]; from.IsValid() && from != want {
		d.r.reject(rejectBadAddress, from, fmt.Errorf("node %d: heartbeat on link %d from %s, want %s", h.From, on, from, want))
		return
	}
	if !pong {
		out := d.seal(make([]byte, 0, wire.LinkHeartbeatLen+64), h.From, true, hb)
		_ = d.tr.SendOn(on, h.From, out)
		return
	}
	d.mu.Lock()
	d.mon.Pong(d.r.now(), h.From, on, hb.Stamp)
	d.publish()
	d.mu.Unlock()
}

// publish hands a changed table to the transport and reports the
// changes. Called with d.mu held.
func (d *linkDriver) publish() {
	changes := d.mon.Changes()
	if len(changes) == 0 {
		return
	}
	d.tr.SetTable(d.mon.Table())
	addrs := d.addrs.Load()
	for _, c := range changes {
		lc := LinkChange{Peer: c.Peer, Link: c.Link, Up: c.Up, Local: d.tr.LocalAddr(c.Link), Remote: addrs[c.Link][c.Peer]}
		msg := "link down"
		if c.Up {
			d.ups.Add(1)
			msg = "link up"
		} else {
			d.downs.Add(1)
		}
		d.r.log.Info(msg, zap.Uint32("peer", uint32(c.Peer)), zap.Uint8("link", c.Link),
			zap.Stringer("local", lc.Local), zap.Stringer("remote", lc.Remote),
			zap.Bool("peer_reachable", d.mon.Table().Healthy(c.Peer)))
		if f := d.configured.OnChange; f != nil {
			f(lc)
		}
	}
}

// status lists every (peer, link).
func (d *linkDriver) status() []totem.LinkStatus {
	d.mu.Lock()
	states := d.mon.States()
	d.mu.Unlock()
	addrs := d.addrs.Load()
	out := make([]totem.LinkStatus, 0, len(states))
	for _, s := range states {
		out = append(out, totem.LinkStatus{Peer: s.Peer, Link: s.Link, Up: s.Up, Local: d.tr.LocalAddr(s.Link),
			Remote: addrs[s.Link][s.Peer], RTT: s.RTT, Ups: s.Ups, Downs: s.Downs})
	}
	return out
}

// setLinks records a new node list for every link (SetLinks): the filter
// and the Monitor change at once, the transport in Run (applyLinks).
func (d *linkDriver) setLinks(tr string, links []Link) {
	d.storeAddrs(tr, links)
	var ids []totem.NodeID
	for id := range links[0].Peers {
		if id != d.r.cfg.Node {
			ids = append(ids, id)
		}
	}
	d.mu.Lock()
	d.mon.SetPeers(ids)
	d.tr.SetTable(d.mon.Table())
	d.mu.Unlock()
	p := map[uint8]map[totem.NodeID]netip.AddrPort{}
	for _, l := range links {
		p[l.Number] = l.Peers
	}
	d.pendingMu.Lock()
	d.pending = p
	d.pendingMu.Unlock()
	d.r.recorded()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// apply gives the transport the node lists SetLinks recorded (Run's
// goroutine: the transport's Send is Run's).
func (d *linkDriver) apply() {
	d.pendingMu.Lock()
	p := d.pending
	d.pending = nil
	d.pendingMu.Unlock()
	if p == nil {
		return
	}
	if err := d.tr.SetLinkPeers(p); err != nil {
		d.r.log.Error("transport refused the new node lists of the links", zap.Error(err))
		return
	}
	d.r.log.Info("node list of every link changed", zap.Int("nodes", len(p[d.tr.Numbers()[0]])))
}

// SetLinks replaces the node list of a multi-link ring: links must be the
// running links (same numbers), each with every node's address on it;
// this node's own addresses cannot change (its sockets are bound to
// them). A node added gets every link, one removed loses them all. The
// receive filter and the heartbeats change at once, the transport at
// Run's next iteration.
func (r *Ring) SetLinks(links []Link) error {
	if r.links == nil {
		return fmt.Errorf("%w: not a multi-link ring (use SetPeers)", ErrConfig)
	}
	c := r.cfg
	c.Links = links
	if err := normalizeLinks(&c); err != nil {
		return err
	}
	if len(c.Links) != len(r.cfg.Links) {
		return fmt.Errorf("%w: %d links, the ring runs %d", ErrConfig, len(c.Links), len(r.cfg.Links))
	}
	for i, l := range c.Links {
		old := r.cfg.Links[i]
		if l.Number != old.Number {
			return fmt.Errorf("%w: link %d is not running (links are fixed until restart)", ErrConfig, l.Number)
		}
		if l.Peers[r.cfg.Node] != old.Peers[r.cfg.Node] {
			return fmt.Errorf("%w: node %d cannot change its address on link %d (%s → %s) while it runs",
				ErrConfig, r.cfg.Node, l.Number, old.Peers[r.cfg.Node], l.Peers[r.cfg.Node])
		}
	}
	if err := r.setPeersFilter(c.Links[0].Peers); err != nil {
		return err
	}
	r.links.setLinks(c.Transport, c.Links)
	r.wakeRun()
	return nil
}

// Links is the state of every (peer, link) of a multi-link ring (nil with
// one link).
func (r *Ring) Links() []totem.LinkStatus {
	if r.links == nil {
		return nil
	}
	return r.links.status()
}

// classifyWire is the reason for a datagram a wire decoder refused.
func classifyWire(err error) rejectReason {
	if errors.Is(err, wire.ErrRange) {
		return rejectOutOfRange
	}
	return rejectMalformed
}

// isGroupReceiver reports whether the transport's receiver i is a
// multicast socket.
func (r *Ring) isGroupReceiver(i int) bool {
	g, ok := r.tr.(transport.GroupReceivers)
	return ok && g.IsGroupReceiver(i)
}

// isHeartbeat tells a link heartbeat (for the link driver, never srp)
// from a protocol datagram by its wire type.
func isHeartbeat(pt []byte) bool {
	return len(pt) > 1 && (wire.Type(pt[1]) == wire.TypeLinkPing || wire.Type(pt[1]) == wire.TypeLinkPong)
}

// heartbeat hands an opened heartbeat to the link driver; a ring with one
// link runs none and drops it (a peer configured with more links).
func (r *Ring) heartbeat(pt []byte, on uint8, from netip.AddrPort) {
	if r.links == nil {
		r.reject(rejectMalformed, from, fmt.Errorf("link heartbeat on a single-link ring (does the sender configure more links?)"))
		return
	}
	r.links.receive(pt, on, from)
}
