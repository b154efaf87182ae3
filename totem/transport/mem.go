package transport

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"ringmaster/totem"
)

// MemNetwork is an in-process network for tests: endpoints attached to it
// exchange datagrams through bounded queues (a full queue drops, like a
// full socket buffer). A filter injects loss and partitions.
//
// All methods are safe for concurrent use.
type MemNetwork struct {
	mu     sync.RWMutex
	nodes  map[totem.NodeID]*Mem
	filter func(from, to totem.NodeID) bool
	queue  int
}

// NewMemNetwork returns an empty network whose endpoints queue up to
// queueLen datagrams each (0 means 4096).
func NewMemNetwork(queueLen int) *MemNetwork {
	if queueLen <= 0 {
		queueLen = 4096
	}
	return &MemNetwork{nodes: map[totem.NodeID]*Mem{}, queue: queueLen}
}

// SetFilter installs f: a datagram from → to is delivered only when f
// returns true (nil: deliver everything). It lets tests partition and heal.
func (n *MemNetwork) SetFilter(f func(from, to totem.NodeID) bool) {
	n.mu.Lock()
	n.filter = f
	n.mu.Unlock()
}

// Attach adds an endpoint for node id.
func (n *MemNetwork) Attach(id totem.NodeID) (*Mem, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if id == 0 {
		return nil, fmt.Errorf("%w: node id 0", ErrConfig)
	}
	if _, ok := n.nodes[id]; ok {
		return nil, fmt.Errorf("%w: node %d already attached", ErrConfig, id)
	}
	m := &Mem{net: n, id: id, q: make(chan []byte, n.queue), done: make(chan struct{})}
	n.nodes[id] = m
	return m, nil
}

// Nodes lists the attached endpoints.
func (n *MemNetwork) Nodes() []totem.NodeID {
	n.mu.RLock()
	defer n.mu.RUnlock()
	ids := make([]totem.NodeID, 0, len(n.nodes))
	for id := range n.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Mem is one endpoint of a MemNetwork; it is both its Transport and its
// only Receiver.
type Mem struct {
	net  *MemNetwork
	id   totem.NodeID
	q    chan []byte
	done chan struct{}
	once sync.Once

	sentBytes atomic.Uint64
}

var (
	_ Transport   = (*Mem)(nil)
	_ ByteCounter = (*Mem)(nil)
)

// Send copies each datagram into the queue of its destination(s).
func (m *Mem) Send(pkts []Packet) (int, error) {
	select {
	case <-m.done:
		return 0, ErrClosed
	default:
	}
	m.net.mu.RLock()
	defer m.net.mu.RUnlock()
	sent, bytes := 0, 0
	for _, p := range pkts {
		sent++
		bytes += len(p.Data)
		if p.To == Broadcast {
			for _, dst := range m.net.nodes {
				if dst != m {
					m.deliver(dst, p.Data)
				}
			}
			continue
		}
		dst, ok := m.net.nodes[p.To]
		if !ok {
			// Like UDP to a dead node: silently lost.
			continue
		}
		m.deliver(dst, p.Data)
	}
	m.sentBytes.Add(uint64(bytes))
	return sent, nil
}

// SentBytes is the total size of the datagrams Send took (a broadcast
// counts once, as in Send's count).
func (m *Mem) SentBytes() uint64 { return m.sentBytes.Load() }

func (m *Mem) deliver(dst *Mem, data []byte) {
	if f := m.net.filter; f != nil && !f(m.id, dst.id) {
		return
	}
	select {
	case dst.q <- slices.Clone(data):
	default: // queue full: dropped, as by a full socket buffer
	}
}

// Receivers returns the endpoint itself.
func (m *Mem) Receivers() []Receiver { return []Receiver{m} }

// Recv implements Receiver.
func (m *Mem) Recv(msgs []Msg) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	select {
	case <-m.done:
		return 0, ErrClosed
	case d := <-m.q:
		m.fill(&msgs[0], d)
	}
	n := 1
	for n < len(msgs) {
		select {
		case d := <-m.q:
			m.fill(&msgs[n], d)
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

func (m *Mem) fill(msg *Msg, d []byte) {
	msg.N = copy(msg.Buf, d)
	msg.Truncated = len(d) > len(msg.Buf)
	msg.Seg = 0
	msg.From = netip.AddrPort{}
}

// Backlog reports whether datagrams are queued for Recv.
func (m *Mem) Backlog() bool { return len(m.q) > 0 }

// Close detaches the endpoint from the network.
func (m *Mem) Close() error {
	m.once.Do(func() {
		m.net.mu.Lock()
		delete(m.net.nodes, m.id)
		m.net.mu.Unlock()
		close(m.done)
	})
	return nil
}
