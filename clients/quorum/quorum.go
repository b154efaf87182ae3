// Package quorum is the Go client of ringmaster's votequorum service
// (corosync's libvotequorum): read the quorum status, change expected votes
// and votes at run time, and watch quorum changes pushed by ringd.
//
// # Concurrency contract
//
// Every method may be called from any goroutine. A Client owns its
// connection's event stream once Watch is called: a Client with a Watch
// must not be shared with another service's client that expects events
// (dial one per watcher; Dial does).
package quorum

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"ringmaster/clients"
	"ringmaster/ipc"
	execwire "ringmaster/totem/exec/wire"
	"ringmaster/votequorum/wire"
)

const service = uint16(execwire.ServiceQuorum)

// Status is the quorum status of the node's partition.
type Status = wire.Status

// Sentinels (errors.Is).
var (
	// ErrNotQuorate: returned by RequireQuorate.
	ErrNotQuorate = wire.ErrNotQuorate
	// ErrInvalid: a change ringd refused (e.g. expected votes that would
	// make the cluster inquorate).
	ErrInvalid = ipc.ErrInvalid
	// ErrNotFound: votes for an unknown node.
	ErrNotFound = ipc.ErrNotFound
	// ErrWatching: Watch called twice on one Client.
	ErrWatching = errors.New("quorum: this client is already watching")
)

// Client is one connection to ringd's votequorum service.
type Client struct {
	conn  *clients.Conn
	owned bool

	mu       sync.Mutex
	watching bool
}

// Dial connects to ringd's socket.
func Dial(ctx context.Context, socket string) (*Client, error) {
	c, err := clients.Dial(ctx, socket)
	if err != nil {
		return nil, err
	}
	return &Client{conn: c, owned: true}, nil
}

// New uses an existing connection (not closed by Close).
func New(c *clients.Conn) *Client { return &Client{conn: c} }

// Close ends the connection if the Client opened it.
func (c *Client) Close() error {
	if c.owned {
		return c.conn.Close()
	}
	return nil
}

func (c *Client) call(ctx context.Context, msg uint16, req any) (*Status, error) {
	var p []byte
	if req != nil {
		p = wire.EncodePayload(req)
	}
	r, err := c.conn.Call(ctx, service, msg, p)
	if err != nil {
		return nil, err
	}
	var st Status
	if err := wire.DecodePayload(r, &st); err != nil {
		return nil, fmt.Errorf("quorum: bad reply: %w", err)
	}
	return &st, nil
}

// Status returns the current status. Asked right after a membership
// change, it waits (boundedly) until ringd has agreed on the new quorum.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	return c.call(ctx, wire.MsgStatus, nil)
}

// RequireQuorate returns nil when the partition is quorate, else an error
// wrapping ErrNotQuorate that says why.
func (c *Client) RequireQuorate(ctx context.Context) error {
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	return st.Err()
}

// SetExpected sets the cluster's expected votes (`corosync-quorumtool -e`);
// it returns once every member applied it. ringd refuses values that
// would make the partition inquorate at once.
func (c *Client) SetExpected(ctx context.Context, n uint32) (*Status, error) {
	return c.call(ctx, wire.MsgSetExpected, wire.SetExpectedRequest{ExpectedVotes: n})
}

// SetVotes sets a node's votes (node 0: this node), `corosync-quorumtool -v`.
func (c *Client) SetVotes(ctx context.Context, node, votes uint32) (*Status, error) {
	return c.call(ctx, wire.MsgSetVotes, wire.SetVotesRequest{NodeID: node, Votes: votes})
}

// CancelWaitForAll lifts wait_for_all on every member (corosync's
// quorum.cancel_wait_for_all): the partition becomes quorate if its votes
// reach quorum.
func (c *Client) CancelWaitForAll(ctx context.Context) (*Status, error) {
	return c.call(ctx, wire.MsgCancelWaitForAll, nil)
}

// Watch is a stream of quorum changes.
type Watch struct {
	c    *Client
	ch   chan Status
	done chan struct{}
	once sync.Once
}

// Watch starts tracking: the current status comes first on C, then one
// after every change (membership, votes, expected votes, quorate). C must
// be drained; it is closed when the watch stops or the connection ends.
func (c *Client) Watch(ctx context.Context) (*Watch, error) {
	c.mu.Lock()
	if c.watching {
		c.mu.Unlock()
		return nil, ErrWatching
	}
	c.watching = true
	c.mu.Unlock()
	w := &Watch{c: c, ch: make(chan Status, 64), done: make(chan struct{})}
	first, err := c.call(ctx, wire.MsgTrackStart, nil)
	if err != nil {
		c.mu.Lock()
		c.watching = false
		c.mu.Unlock()
		return nil, err
	}
	w.ch <- *first
	go w.loop()
	return w, nil
}

func (w *Watch) loop() {
	defer close(w.ch)
	events := w.c.conn.Events()
	for {
		select {
		case <-w.done:
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			st, ok := decodeEvent(ev)
			if !ok {
				continue // not ours, or malformed
			}
			select {
			case w.ch <- st:
			case <-w.done:
				return
			}
		}
	}
}

// decodeEvent decodes a status event; false for another event or a
// malformed one.
func decodeEvent(ev ipc.Event) (Status, bool) {
	if ev.Service != service || ev.Msg != wire.EventStatus {
		return Status{}, false
	}
	var st Status
	if err := wire.DecodePayload(ev.Payload, &st); err != nil {
		return Status{}, false
	}
	return st, true
}

// C is the stream of statuses.
func (w *Watch) C() <-chan Status { return w.ch }

// Stop ends the watch (ringd stops sending).
func (w *Watch) Stop(ctx context.Context) error {
	var err error
	w.once.Do(func() {
		close(w.done)
		_, err = w.c.conn.Call(ctx, service, wire.MsgTrackStop, nil)
		w.c.mu.Lock()
		w.c.watching = false
		w.c.mu.Unlock()
	})
	return err
}
