// Package link decides which of a node's redundant networks ("links", as
// corosync 3's knet calls them) carries the ring's traffic to each peer. It
// is a pure state machine: time is an input, it sends nothing itself, has
// no goroutine, clock or socket (the driver in totem/ring does the I/O).
//
// # Heartbeats
//
// Every PingInterval the Monitor asks for one ping per (peer, link). A ping
// carries a stamp (the sender's clock when it was sent); the peer answers on
// the same link with a pong echoing it. A pong whose stamp is at most
// PingTimeout old counts. A link is
//
//	state  event                                         next
//	down   PongCount consecutive pongs                   up     (Change)
//	down   no pong for PingTimeout (resets the count)    down
//	up     pong                                          up
//	up     no pong for PingTimeout since the last one    down   (Change)
//
// Links start down: until pongs prove a link, traffic goes on every link
// (see Table.Choose), so a ring forms as fast as with one link.
//
// # Choosing links
//
// Table is an immutable snapshot of the healthy links per peer, in order of
// preference: priority (higher first, as knet_link_priority), then link
// number (lower first: the deterministic tie-break). In passive mode the
// first healthy link carries everything to a peer; in active mode the
// healthy links take turns (round robin, knet's "rr"; the driver takes one
// turn per batch of datagrams, see transport.Links.Send). When no link to a
// peer is healthy every link carries every datagram, so whichever comes
// back first is used at once; the ring itself (totem/srp) decides
// membership from token loss as it always did: a link going down or up
// changes no membership, only losing every link to a node does.
package link

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"ringmaster/totem"
)

// MaxLinks is the number of links a node may have (ring0_addr …
// ring7_addr), as knet's KNET_MAX_LINK is for corosync.
const MaxLinks = 8

// Mode is the link policy.
type Mode uint8

// Modes.
const (
	// Passive: the healthy link of highest priority carries all traffic
	// to a peer (ties: lowest link number).
	Passive Mode = iota
	// Active: the healthy links to a peer take turns (round robin;
	// knet's "rr"), one turn per Choose call's turn number.
	Active
)

func (m Mode) String() string {
	if m == Active {
		return "active"
	}
	return "passive"
}

// ParseMode maps totem.link_mode to a Mode.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "passive", "":
		return Passive, nil
	case "active":
		return Active, nil
	}
	return 0, fmt.Errorf("%w: link mode %q (want passive or active)", ErrConfig, s)
}

// ErrConfig is wrapped by every configuration error of New.
var ErrConfig = errors.New("invalid link configuration")

// Spec is one configured link.
type Spec struct {
	Number   uint8 // 0 … MaxLinks−1
	Priority int   // higher is preferred in passive mode
}

// Config configures a Monitor.
type Config struct {
	// Peers are the other nodes (this node excluded).
	Peers []totem.NodeID
	Links []Spec
	Mode  Mode
	// PingInterval between two pings on one (peer, link); PingTimeout
	// without a pong takes a link down; PongCount consecutive pongs bring
	// it up. See Derive for the defaults.
	PingInterval time.Duration
	PingTimeout  time.Duration
	PongCount    int
}

// Derive fills the heartbeat settings left at 0 from the token timeout so
// that a dead link is noticed well inside one token timeout, and traffic has
// moved to another link before the ring would declare the token lost:
//
//   - PingTimeout = token / 4: with the detection (at most one interval
//     more) the token has three quarters of its timeout left to be
//     retransmitted over the remaining link;
//   - PingInterval = PingTimeout / 4: four pings per timeout, so one or
//     two lost datagrams never take a healthy link down;
//   - PongCount = 2 (knet's default): one stray pong does not bring a
//     flapping link back.
//
// Floors keep a very short token from turning heartbeats into a flood.
func Derive(c Config, token time.Duration) Config {
	if c.PongCount == 0 {
		c.PongCount = 2
	}
	if c.PingTimeout == 0 {
		c.PingTimeout = max(token/4, 20*time.Millisecond)
	}
	if c.PingInterval == 0 {
		c.PingInterval = max(c.PingTimeout/4, 5*time.Millisecond)
	}
	return c
}

// Ping is a heartbeat the driver must send: to Peer on Link, carrying
// Stamp (to be echoed by the pong).
type Ping struct {
	Peer  totem.NodeID
	Link  uint8
	Stamp uint64
}

// Change is a link that went up or down.
type Change struct {
	Peer totem.NodeID
	Link uint8
	Up   bool
	At   time.Duration
}

// State is one (peer, link) as operators see it.
type State struct {
	Peer totem.NodeID
	Link uint8
	Up   bool
	// RTT of the last pong (0 before the first).
	RTT time.Duration
	// LastPong is when the last pong arrived (0: never).
	LastPong time.Duration
	// Ups and Downs count the transitions since the Monitor started.
	Ups, Downs uint64
}

type linkState struct {
	up       bool
	pongs    int           // consecutive pongs while down
	lastPong time.Duration // 0: none yet
	// expires is when the link times out without another pong (the
	// last pong + PingTimeout, moved by SetHeartbeat); 0: nothing to
	// time out (no pong yet, or already timed out).
	expires time.Duration
	rtt     time.Duration
	ups     uint64
	downs   uint64
}

// Monitor tracks the health of every (peer, link). Not safe for concurrent
// use: the driver serialises calls.
type Monitor struct {
	cfg      Config
	links    []Spec // by preference: priority desc, number asc
	peers    []totem.NodeID
	state    map[totem.NodeID][]linkState // indexed like links
	nextPing time.Duration
	changes  []Change
	table    *Table
}

// New returns a Monitor whose links are all down; the first pings are due
// at now.
func New(cfg Config, now time.Duration) (*Monitor, error) {
	if len(cfg.Links) == 0 || len(cfg.Links) > MaxLinks {
		return nil, fmt.Errorf("%w: %d links (want 1-%d)", ErrConfig, len(cfg.Links), MaxLinks)
	}
	seen := map[uint8]bool{}
	for _, l := range cfg.Links {
		if l.Number >= MaxLinks {
			return nil, fmt.Errorf("%w: link number %d (want 0-%d)", ErrConfig, l.Number, MaxLinks-1)
		}
		if seen[l.Number] {
			return nil, fmt.Errorf("%w: link %d configured twice", ErrConfig, l.Number)
		}
		seen[l.Number] = true
	}
	if cfg.PingInterval <= 0 || cfg.PingTimeout <= 0 || cfg.PongCount < 1 {
		return nil, fmt.Errorf("%w: ping interval %v, timeout %v, pong count %d (use Derive)", ErrConfig, cfg.PingInterval, cfg.PingTimeout, cfg.PongCount)
	}
	if cfg.Mode != Passive && cfg.Mode != Active {
		return nil, fmt.Errorf("%w: mode %d", ErrConfig, cfg.Mode)
	}
	m := &Monitor{cfg: cfg, links: preference(cfg.Links), state: map[totem.NodeID][]linkState{}, nextPing: now}
	for _, p := range cfg.Peers {
		if p == 0 {
			return nil, fmt.Errorf("%w: peer node id 0", ErrConfig)
		}
		if _, dup := m.state[p]; dup {
			continue
		}
		m.peers = append(m.peers, p)
		m.state[p] = make([]linkState, len(m.links))
	}
	slices.Sort(m.peers)
	m.rebuild()
	return m, nil
}

// preference orders links as passive mode prefers them: higher priority
// first, then the lower link number (the documented tie-break).
func preference(specs []Spec) []Spec {
	l := slices.Clone(specs)
	slices.SortFunc(l, func(a, b Spec) int {
		if a.Priority != b.Priority {
			return b.Priority - a.Priority
		}
		return int(a.Number) - int(b.Number)
	})
	return l
}

// Config returns the configuration the Monitor runs with.
func (m *Monitor) Config() Config { return m.cfg }

// SetPeers replaces the set of peers (a node added to or removed from the
// nodelist at run time): new peers start with every link down, removed
// ones are forgotten, the others keep their state.
func (m *Monitor) SetPeers(peers []totem.NodeID) {
	next := map[totem.NodeID][]linkState{}
	var ids []totem.NodeID
	for _, p := range peers {
		if p == 0 {
			continue
		}
		if _, dup := next[p]; dup {
			continue
		}
		ids = append(ids, p)
		if st, ok := m.state[p]; ok {
			next[p] = st
		} else {
			next[p] = make([]linkState, len(m.links))
		}
	}
	slices.Sort(ids)
	m.peers, m.state = ids, next
	m.rebuild()
}

// SetHeartbeat changes PingInterval and PingTimeout while the Monitor runs:
// a cluster-wide reload changed the token they are derived from (Derive),
// and heartbeats slower than the new token would let the ring declare the
// token lost on a dead link before traffic moved to another one. Like
// srp.Processor.SetTimings, it never makes a timeout fire early:
//
//   - a longer timeout extends every running one by the difference;
//   - a shorter one counts from the change at the latest: a link times
//     out at min(its deadline, now + timeout). Counting from its last
//     pong would take down links whose next ping was scheduled with the
//     old, longer interval;
//   - a shorter interval brings the next ping round forward to now +
//     interval at the latest.
func (m *Monitor) SetHeartbeat(now, interval, timeout time.Duration) error {
	if interval <= 0 || timeout <= 0 {
		return fmt.Errorf("%w: ping interval %v, timeout %v", ErrConfig, interval, timeout)
	}
	m.expire(now) // what timed out under the old timeout stays down
	old := m.cfg.PingTimeout
	for _, p := range m.peers {
		st := m.state[p]
		for i := range st {
			s := &st[i]
			switch {
			case s.expires == 0 || timeout == old:
			case timeout > old:
				s.expires += timeout - old
			default:
				s.expires = min(s.expires, now+timeout)
			}
		}
	}
	if interval < m.cfg.PingInterval {
		m.nextPing = min(m.nextPing, now+interval)
	}
	m.cfg.PingInterval, m.cfg.PingTimeout = interval, timeout
	return nil
}

// Tick advances time: it returns the pings due now (the caller sends them,
// stamped as given) and takes down links whose last pong is too old.
func (m *Monitor) Tick(now time.Duration) []Ping {
	m.expire(now)
	if now < m.nextPing {
		return nil
	}
	pings := make([]Ping, 0, len(m.peers)*len(m.links))
	for _, p := range m.peers {
		for _, l := range m.cfg.Links {
			pings = append(pings, Ping{Peer: p, Link: l.Number, Stamp: uint64(now)})
		}
	}
	// The next round is one interval after this one was due, but never
	// in the past: a driver that woke late does not fire a burst.
	m.nextPing += m.cfg.PingInterval
	if m.nextPing <= now {
		m.nextPing = now + m.cfg.PingInterval
	}
	return pings
}

// expire takes down the links without a pong for PingTimeout, and resets
// the pong count of down links whose run of pongs broke.
func (m *Monitor) expire(now time.Duration) {
	changed := false
	for _, p := range m.peers {
		st := m.state[p]
		for i := range st {
			s := &st[i]
			if s.expires == 0 || now <= s.expires {
				continue
			}
			s.expires = 0
			if s.up {
				s.up = false
				s.downs++
				changed = true
				m.changes = append(m.changes, Change{Peer: p, Link: m.links[i].Number, Up: false, At: now})
			}
			s.pongs = 0
		}
	}
	if changed {
		m.rebuild()
	}
}

// Pong records a pong from peer on link carrying stamp (the Stamp of one
// of our pings). A pong for an unknown peer or link, with a stamp from the
// future or older than PingTimeout, is ignored; ok says whether it counted.
func (m *Monitor) Pong(now time.Duration, peer totem.NodeID, link uint8, stamp uint64) (ok bool) {
	st, known := m.state[peer]
	i := m.index(link)
	if !known || i < 0 || stamp > uint64(now) {
		return false
	}
	rtt := now - time.Duration(stamp)
	if rtt > m.cfg.PingTimeout {
		return false
	}
	m.expire(now) // a gap before this pong breaks the run of pongs
	s := &st[i]
	s.lastPong, s.rtt, s.expires = now, rtt, now+m.cfg.PingTimeout
	if s.up {
		return true
	}
	s.pongs++
	if s.pongs >= m.cfg.PongCount {
		s.up = true
		s.pongs = 0
		s.ups++
		m.changes = append(m.changes, Change{Peer: peer, Link: link, Up: true, At: now})
		m.rebuild()
	}
	return true
}

func (m *Monitor) index(link uint8) int {
	for i, l := range m.links {
		if l.Number == link {
			return i
		}
	}
	return -1
}

// Deadline is when Tick must be called next: the next ping round or the
// earliest link timeout, whichever comes first.
func (m *Monitor) Deadline() time.Duration {
	d := m.nextPing
	for _, p := range m.peers {
		for _, s := range m.state[p] {
			if s.expires != 0 {
				d = min(d, s.expires+1)
			}
		}
	}
	return d
}

// Changes returns the transitions since the last call, in order.
func (m *Monitor) Changes() []Change {
	c := m.changes
	m.changes = nil
	return c
}

// States returns every (peer, link), by peer then link number.
func (m *Monitor) States() []State {
	out := make([]State, 0, len(m.peers)*len(m.links))
	for _, p := range m.peers {
		st := m.state[p]
		for _, l := range m.cfg.Links {
			s := st[m.index(l.Number)]
			out = append(out, State{Peer: p, Link: l.Number, Up: s.up, RTT: s.rtt, LastPong: s.lastPong, Ups: s.ups, Downs: s.downs})
		}
	}
	slices.SortStableFunc(out, func(a, b State) int {
		if a.Peer != b.Peer {
			return int(a.Peer) - int(b.Peer)
		}
		return int(a.Link) - int(b.Link)
	})
	return out
}

// Table returns the current routing snapshot (immutable; a new one after
// every change).
func (m *Monitor) Table() *Table { return m.table }

func (m *Monitor) rebuild() {
	t := &Table{mode: m.cfg.Mode, healthy: map[totem.NodeID][]uint8{}}
	for _, l := range m.links {
		t.all = append(t.all, l.Number)
	}
	slices.Sort(t.all)
	for _, p := range m.peers {
		var h []uint8
		for i, s := range m.state[p] {
			if s.up {
				h = append(h, m.links[i].Number)
			}
		}
		t.healthy[p] = h
	}
	m.table = t
}

// Table says which links carry a datagram to a peer. It is immutable and
// safe for concurrent use.
type Table struct {
	mode    Mode
	all     []uint8                  // every link, by number
	healthy map[totem.NodeID][]uint8 // by preference
}

// NewTable returns a table that sends on every one of links (no peer has
// a healthy link yet): what a transport uses before its first snapshot.
func NewTable(links []uint8) *Table {
	all := slices.Clone(links)
	slices.Sort(all)
	return &Table{all: all, healthy: map[totem.NodeID][]uint8{}}
}

// Choose returns the links a datagram to peer goes on: the preferred
// healthy one (passive), the turn-th healthy one (active), or every link
// when none is healthy (or the peer is unknown). The caller must not
// modify the result.
func (t *Table) Choose(peer totem.NodeID, turn uint64) []uint8 {
	h := t.healthy[peer]
	switch {
	case len(h) == 0:
		return t.all
	case t.mode == Active:
		i := int(turn % uint64(len(h)))
		return h[i : i+1]
	default:
		return h[:1]
	}
}

// Healthy reports whether peer has at least one healthy link.
func (t *Table) Healthy(peer totem.NodeID) bool { return len(t.healthy[peer]) > 0 }
