package ipc

import (
	"errors"
	"net"
	"sync"
	"time"
)

// Cred is the peer's identity as the kernel reports it (SO_PEERCRED).
type Cred struct {
	PID int32
	UID uint32
	GID uint32
}

// ErrClosed is returned when sending on a closed connection.
var ErrClosed = errors.New("ipc: connection closed")

// outQueue is a byte queue drained by one writer goroutine: senders append
// whole frames under the mutex and never block; the writer swaps the buffer
// out and writes it with one syscall, so frames queued while a write is in
// progress are coalesced into the next one. A queue that grows beyond max
// bytes means the peer does not read: the owner cuts it off.
type outQueue struct {
	mu     sync.Mutex
	buf    []byte
	spare  []byte
	closed bool
	wake   chan struct{}
	max    int
}

func newOutQueue(max int) *outQueue {
	return &outQueue{wake: make(chan struct{}, 1), max: max}
}

// push appends a frame; it reports false when the queue is closed and
// overflow when the frame would exceed the budget.
func (q *outQueue) push(h Header, p []byte) (ok, overflow bool) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false, false
	}
	if q.max > 0 && len(q.buf)+HeaderSize+len(p) > q.max {
		q.mu.Unlock()
		return false, true
	}
	q.buf = AppendFrame(q.buf, h, p)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true, false
}

// take swaps out what is queued (nil when nothing is), giving back the
// previously written buffer for reuse.
func (q *outQueue) take(done []byte) (b []byte, closed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if cap(done) > 0 && cap(done) <= 4<<20 {
		q.spare = done[:0]
	}
	if len(q.buf) == 0 {
		return nil, q.closed
	}
	b = q.buf
	q.buf = q.spare
	q.spare = nil
	return b, false
}

func (q *outQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// writeLoop drains q into c until the queue is closed and empty or a write
// fails.
func writeLoop(c net.Conn, q *outQueue) error {
	var done []byte
	for {
		b, closed := q.take(done)
		if b == nil {
			if closed {
				return nil
			}
			<-q.wake
			continue
		}
		if _, err := c.Write(b); err != nil {
			return err
		}
		done = b
	}
}

// Conn is one client connection on the server side. Send methods may be
// called from any goroutine and never block: output is queued and written
// by the connection's writer. Requests of one connection are handed to the
// Handler one at a time, in order.
type Conn struct {
	ID   uint64
	Cred Cred

	srv  *Server
	nc   *net.UnixConn
	out  *outQueue
	once sync.Once
	gone chan struct{}
}

// Reply answers the request h with payload.
func (c *Conn) Reply(h Header, payload []byte) error {
	return c.send(Header{Kind: KindReply, Service: h.Service, Msg: h.Msg, ReqID: h.ReqID}, payload)
}

// ReplyError answers the request h with an error.
func (c *Conn) ReplyError(h Header, err error) error {
	return c.send(Header{Kind: KindError, Service: h.Service, Msg: h.Msg, ReqID: h.ReqID}, encodeError(ToError(err)))
}

// Event pushes an unsolicited message to the client. A client whose queue
// is over budget (it stopped reading) is disconnected and ErrSlowClient is
// returned; other clients are unaffected.
func (c *Conn) Event(service, msg uint16, payload []byte) error {
	return c.send(Header{Kind: KindEvent, Service: service, Msg: msg}, payload)
}

func (c *Conn) send(h Header, p []byte) error {
	ok, overflow := c.out.push(h, p)
	if ok {
		return nil
	}
	if overflow {
		c.srv.log.Warn("client does not read its events: disconnecting", connFields(c)...)
		c.closeWith(&Error{Code: CodeSlowClient, Msg: "output queue over budget"})
		return ErrSlowClient
	}
	return ErrClosed
}

// Close disconnects the client.
func (c *Conn) Close() { c.closeWith(nil) }

// Done is closed once the connection is gone.
func (c *Conn) Done() <-chan struct{} { return c.gone }

// closeWith drops whatever is queued, writes a last error frame (best
// effort) and closes the socket; the reader then reports Closed.
func (c *Conn) closeWith(e *Error) {
	c.once.Do(func() {
		c.out.mu.Lock()
		c.out.buf = nil
		c.out.mu.Unlock()
		c.out.close()
		if e != nil {
			_ = c.nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			_, _ = c.nc.Write(AppendFrame(nil, Header{Kind: KindError}, encodeError(e)))
		}
		_ = c.nc.Close()
	})
}
