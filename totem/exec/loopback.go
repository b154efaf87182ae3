package exec

import (
	"slices"
	"sync"

	"ringmaster/totem"
)

// Loopback is a one-node Ring without a network: every Send is delivered
// back, in order, from its own goroutine, after a regular configuration
// holding only the local node. It lets services and the daemon be tested
// without Totem; it is not used in production.
type Loopback struct {
	node  totem.NodeID
	mu    sync.Mutex
	queue []totem.Message
	max   int
	wake  chan struct{}
	stop  chan struct{}
	once  sync.Once
	ring  totem.RingID
}

// NewLoopback makes a loopback ring for node whose send queue holds max
// messages (then Send returns ErrTryAgain).
func NewLoopback(node totem.NodeID, max int) *Loopback {
	return &Loopback{node: node, max: max, wake: make(chan struct{}, 1), stop: make(chan struct{}), ring: totem.RingID{Rep: node, Seq: 4}}
}

// Run delivers the configuration, then every message sent, to ev until
// Close.
func (l *Loopback) Run(ev totem.Events) {
	ev.ConfChange(totem.ConfChange{Kind: totem.Regular, Ring: l.ring, Members: []totem.NodeID{l.node}, Joined: []totem.NodeID{l.node}})
	for {
		select {
		case <-l.stop:
			return
		case <-l.wake:
		}
		l.mu.Lock()
		q := l.queue
		l.queue = nil
		l.mu.Unlock()
		for _, m := range q {
			ev.Deliver(m)
		}
	}
}

// Close stops Run.
func (l *Loopback) Close() { l.once.Do(func() { close(l.stop) }) }

// Send implements Ring.
func (l *Loopback) Send(service, id uint16, g totem.Guarantee, payload []byte) error {
	if len(payload) > totem.MaxMessageSize {
		return totem.ErrTooLarge
	}
	l.mu.Lock()
	if len(l.queue) >= l.max {
		l.mu.Unlock()
		return totem.ErrTryAgain
	}
	l.queue = append(l.queue, totem.Message{Sender: l.node, Service: service, ID: id, Guarantee: g, Payload: slices.Clone(payload)})
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return nil
}

// Status implements Ring.
func (l *Loopback) Status() totem.Status {
	return totem.Status{Node: l.node, Ring: l.ring, State: totem.StateOperational, Members: []totem.NodeID{l.node}}
}
