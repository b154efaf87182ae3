package ipc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Event is an unsolicited frame from the daemon.
type Event struct {
	Service uint16
	Msg     uint16
	Payload []byte
}

// Client is one connection to ringd. Call and Go may be used from many
// goroutines at once; requests are written in the order they are made and
// answered in that order. Events arrive on Events(), which the application
// must keep draining: a client that stops reading events stalls its own
// replies and is eventually disconnected by the daemon (its output budget
// is bounded), which is how a slow client is kept from growing ringd's
// memory.
type Client struct {
	nc      *net.UnixConn
	out     *outQueue
	events  chan Event
	onEvent func(Event)

	mu      sync.Mutex
	nextID  uint32
	pending map[uint32]chan Result
	err     error
	done    chan struct{}
	Hello   []byte // the daemon's handshake answer
}

// Result is the answer to a request sent with Go.
type Result struct {
	Payload []byte
	Err     error
}

// ClientOptions tune a Client.
type ClientOptions struct {
	// EventBuffer is the capacity of the Events channel (default 4096).
	EventBuffer int
	// OnEvent, when set, receives every event on the connection's reader
	// goroutine, in order, instead of the Events channel (which then
	// only closes when the connection ends). It saves a goroutine hop per
	// event; it must not block for long, since replies are read by the
	// same goroutine, and must not call the Client's blocking methods.
	OnEvent func(Event)
}

// Dial connects to the daemon's socket and performs the handshake, so a
// refused peer gets ErrAccess here.
func Dial(ctx context.Context, path string) (*Client, error) {
	return DialOptions(ctx, path, ClientOptions{})
}

// DialOptions is Dial with options.
func DialOptions(ctx context.Context, path string, o ClientOptions) (*Client, error) {
	if o.EventBuffer <= 0 {
		o.EventBuffer = 4096
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("ipc: connect to ringd at %s: %w", path, err)
	}
	c := &Client{
		nc:      nc.(*net.UnixConn),
		out:     newOutQueue(0),
		events:  make(chan Event, o.EventBuffer),
		pending: map[uint32]chan Result{},
		done:    make(chan struct{}),
		onEvent: o.OnEvent,
	}
	c.out.try = func(b []byte) int { return tryWrite(c.nc, b) }
	go func() {
		if err := writeLoop(c.nc, c.out); err != nil {
			// The daemon closed the connection; it usually said why in a
			// last error frame (access denied, slow client). Let the
			// reader find it and fail with that reason, not "broken pipe".
			_ = c.nc.CloseWrite()
			select {
			case <-c.done:
			case <-time.After(time.Second):
				c.fail(fmt.Errorf("ipc: write: %w", err))
			}
		}
	}()
	go c.readLoop()
	hello, err := c.Call(ctx, 0, MsgHello, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.Hello = hello
	return c, nil
}

// Events is the stream of unsolicited frames; it is closed when the
// connection ends.
func (c *Client) Events() <-chan Event { return c.events }

// Done is closed when the connection has ended; Err tells why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is the reason the connection ended (nil while it is up).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Go sends a request without waiting; the reply (or error) arrives on the
// returned channel, which has room for it.
func (c *Client) Go(service, msg uint16, payload []byte) <-chan Result {
	ch := make(chan Result, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		ch <- Result{Err: err}
		return ch
	}
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	id := c.nextID
	c.pending[id] = ch
	// Push under mu so request IDs hit the wire in order.
	ok, _ := c.out.push(Header{Kind: KindRequest, Service: service, Msg: msg, ReqID: id}, payload, false)
	c.mu.Unlock()
	c.out.flush()
	if !ok {
		c.fail(ErrClosed)
	}
	return ch
}

// GoAppend is Go for a payload that build appends straight into the
// connection's output buffer, sparing the copy of a payload assembled
// elsewhere first (bulk senders). build gets the buffer and returns it with
// the payload appended; it runs under the connection's send lock, so it
// must be quick and must not call the Client. The payload must not exceed
// MaxPayload.
func (c *Client) GoAppend(service, msg uint16, build func(b []byte) []byte) <-chan Result {
	ch := make(chan Result, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		ch <- Result{Err: err}
		return ch
	}
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	id := c.nextID
	c.pending[id] = ch
	ok := c.out.pushAppend(Header{Kind: KindRequest, Service: service, Msg: msg, ReqID: id}, build)
	c.mu.Unlock()
	c.out.flush()
	if !ok {
		c.fail(ErrClosed)
	}
	return ch
}

// Call sends a request and waits for its reply or ctx.
func (c *Client) Call(ctx context.Context, service, msg uint16, payload []byte) ([]byte, error) {
	if len(payload) > MaxPayload {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(payload))
	}
	ch := c.Go(service, msg, payload)
	select {
	case r := <-ch:
		return r.Payload, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close ends the connection.
func (c *Client) Close() error {
	c.fail(ErrClosed)
	return nil
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	pend := c.pending
	c.pending = nil
	c.mu.Unlock()
	c.out.close()
	_ = c.nc.SetDeadline(time.Now())
	_ = c.nc.Close()
	for _, ch := range pend {
		ch <- Result{Err: err}
	}
	close(c.done)
}

func (c *Client) readLoop() {
	defer close(c.events)
	r := bufio.NewReaderSize(c.nc, 256<<10)
	hdr := make([]byte, HeaderSize)
	for {
		h, p, err := readFrameDirect(r, c.nc, hdr)
		if err != nil {
			c.fail(fmt.Errorf("ipc: connection to ringd lost: %w", err))
			return
		}
		switch h.Kind {
		case KindEvent:
			if c.onEvent != nil {
				c.onEvent(Event{Service: h.Service, Msg: h.Msg, Payload: p})
				continue
			}
			select {
			case c.events <- Event{Service: h.Service, Msg: h.Msg, Payload: p}:
			case <-c.done:
				return
			}
		case KindReply, KindError:
			var res Result
			if h.Kind == KindError {
				res.Err = decodeError(p)
			} else {
				res.Payload = p
			}
			if h.ReqID == 0 && h.Kind == KindError {
				// A connection-level error: the daemon is closing us.
				c.fail(res.Err)
				return
			}
			c.mu.Lock()
			ch := c.pending[h.ReqID]
			delete(c.pending, h.ReqID)
			c.mu.Unlock()
			if ch != nil {
				ch <- res
			}
		default:
			c.fail(fmt.Errorf("ipc: unexpected frame kind %d from ringd", h.Kind))
			return
		}
	}
}

// IsClosed reports whether err means the connection is gone.
func IsClosed(err error) bool {
	return errors.Is(err, ErrClosed) || errors.Is(err, net.ErrClosed)
}
