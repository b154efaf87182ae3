package ipc

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
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
// out and writes it, so frames queued while a write is in progress are
// coalesced into the next one. A queue that grows beyond max bytes means
// the peer does not read: the owner cuts it off.
//
// Urgent frames (Conn.ReplyUrgent) wait in a lane of their own and go out
// at the next frame boundary of what is being written: the writer writes
// big backlogs in frame-aligned chunks of at most writeChunk bytes and
// checks the urgent lane between chunks. Ordinary frames keep their order.
type outQueue struct {
	mu     sync.Mutex
	buf    []byte
	urgent []byte
	spare  []byte
	closed bool
	wake   chan struct{}
	max    int

	// try, when set, writes without blocking (see flush); pushes then
	// leave waking the writer to flush.
	try    func([]byte) int
	busy   bool // the writer holds a buffer it has not finished writing
	direct bool // flush is writing
}

// writeChunk bounds how long an urgent frame can wait behind a backlog.
const writeChunk = 64 << 10

func newOutQueue(max int) *outQueue {
	return &outQueue{wake: make(chan struct{}, 1), max: max}
}

// push appends a frame; it reports false when the queue is closed and
// overflow when the frame would exceed the budget.
func (q *outQueue) push(h Header, p []byte, urgent bool) (ok, overflow bool) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false, false
	}
	if q.max > 0 && len(q.buf)+len(q.urgent)+HeaderSize+len(p) > q.max {
		q.mu.Unlock()
		return false, true
	}
	if urgent {
		q.urgent = AppendFrame(q.urgent, h, p)
	} else {
		q.buf = AppendFrame(q.buf, h, p)
	}
	q.mu.Unlock()
	if q.try == nil {
		q.signal()
	}
	return true, false
}

func (q *outQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// flush writes what is queued from the calling goroutine, without
// blocking, when the writer is idle: a client's lone request then leaves
// without waking the writer goroutine (a thread hand-off that costs more
// than the write on an idle machine). Whatever it cannot write, and
// anything queued while the writer is busy, the writer writes. Callers
// of push and pushAppend on a queue with try call flush after them.
func (q *outQueue) flush() {
	q.mu.Lock()
	if q.busy || q.direct || q.closed || len(q.buf) == 0 {
		// A busy writer takes the new frames when it is done.
		q.mu.Unlock()
		return
	}
	if len(q.urgent) > 0 || len(q.buf) > directMax {
		q.mu.Unlock()
		q.signal()
		return
	}
	b := q.buf
	q.buf, q.spare = q.spare, nil
	q.direct = true
	q.mu.Unlock()
	n := q.try(b)
	q.mu.Lock()
	q.direct = false
	if n < len(b) {
		// The socket is full: the rest goes first, by the writer.
		q.buf = append(append(make([]byte, 0, len(b)-n+len(q.buf)), b[n:]...), q.buf...)
	} else if q.spare == nil && cap(b) <= 4<<20 {
		q.spare = b[:0]
	}
	more := len(q.buf) > 0 || len(q.urgent) > 0 || q.closed
	q.mu.Unlock()
	if more {
		q.signal()
	}
}

// pushAppend appends a frame whose payload build appends (GoAppend); the
// queue is unbounded (client side).
func (q *outQueue) pushAppend(h Header, build func([]byte) []byte) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	start := len(q.buf)
	q.buf = AppendHeader(q.buf, h)
	q.buf = build(q.buf)
	binary.BigEndian.PutUint32(q.buf[start+12:], uint32(len(q.buf)-start-HeaderSize))
	q.mu.Unlock()
	if q.try == nil {
		q.signal()
	}
	return true
}

// take swaps out what is queued (nil when nothing is), giving back the
// previously written buffer for reuse.
func (q *outQueue) take(done []byte) (b []byte, closed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.busy = false
	if cap(done) > 0 && cap(done) <= 4<<20 {
		q.spare = done[:0]
	}
	if q.direct {
		// flush is writing older bytes; it wakes the writer after.
		return nil, false
	}
	if len(q.buf) == 0 {
		return nil, q.closed
	}
	b = q.buf
	q.buf = q.spare
	q.spare = nil
	q.busy = true
	return b, false
}

// takeUrgent swaps out the urgent lane (nil when empty), reusing done.
func (q *outQueue) takeUrgent(done []byte) []byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.urgent) == 0 || q.direct {
		return nil
	}
	b := q.urgent
	q.urgent = done[:0]
	return b
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

// chunkEnd is the end of the frames from off that fit in writeChunk bytes
// (at least one frame).
func chunkEnd(b []byte, off int) int {
	end := off
	for end < len(b) {
		n := HeaderSize + int(binary.BigEndian.Uint32(b[end+12:]))
		if end > off && end+n-off > writeChunk {
			break
		}
		end += n
	}
	return end
}

// writeLoop drains q into c until the queue is closed and empty or a write
// fails.
func writeLoop(c net.Conn, q *outQueue) error {
	var cur, done, urgentDone []byte
	off := 0
	for {
		if u := q.takeUrgent(urgentDone); u != nil {
			if _, err := c.Write(u); err != nil {
				return err
			}
			urgentDone = u
		}
		if off == len(cur) {
			if cur != nil {
				done = cur
			}
			var closed bool
			cur, closed = q.take(done)
			done, off = nil, 0
			if cur == nil {
				if closed {
					return nil
				}
				<-q.wake
				continue
			}
		}
		end := len(cur)
		if end-off > writeChunk {
			end = chunkEnd(cur, off)
		}
		if _, err := c.Write(cur[off:end]); err != nil {
			return err
		}
		off = end
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
	out  *blockQueue
	once sync.Once
	gone chan struct{}

	// lastService is the service of the last event queued, to name
	// the service a slow consumer falls behind on.
	lastService atomic.Uint32

	stats [statServices]serviceCounters
}

// statServices bounds the service IDs counted per connection (IDs above
// share the last slot).
const statServices = 16

// serviceCounters count one connection's traffic with one service
// (corosync's per-connection IPC statistics, published by confdb).
type serviceCounters struct {
	requests, replies, events, errors atomic.Uint64
}

func (c *Conn) counters(service uint16) *serviceCounters {
	return &c.stats[min(int(service), statServices-1)]
}

// ConnStat is a snapshot of one connection's counters with one service.
type ConnStat struct {
	ConnID   uint64
	PID      int32
	UID      uint32
	Service  uint16
	Requests uint64
	Replies  uint64
	Events   uint64
	Errors   uint64
}

// Stats returns the connection's counters for every service it used.
func (c *Conn) Stats() []ConnStat {
	var out []ConnStat
	for i := range c.stats {
		sc := &c.stats[i]
		st := ConnStat{ConnID: c.ID, PID: c.Cred.PID, UID: c.Cred.UID, Service: uint16(i),
			Requests: sc.requests.Load(), Replies: sc.replies.Load(), Events: sc.events.Load(), Errors: sc.errors.Load()}
		if st.Requests+st.Replies+st.Events+st.Errors > 0 {
			out = append(out, st)
		}
	}
	return out
}

// ConnID is c.ID (for interfaces such as the executive's exec.Client).
func (c *Conn) ConnID() uint64 { return c.ID }

// PeerCred is c.Cred (for interfaces such as the executive's exec.Client).
func (c *Conn) PeerCred() Cred { return c.Cred }

// Reply answers the request h with payload.
func (c *Conn) Reply(h Header, payload []byte) error {
	return c.send(Header{Kind: KindReply, Service: h.Service, Msg: h.Msg, ReqID: h.ReqID}, payload, false)
}

// ReplyError answers the request h with an error.
func (c *Conn) ReplyError(h Header, err error) error {
	return c.send(Header{Kind: KindError, Service: h.Service, Msg: h.Msg, ReqID: h.ReqID}, encodeError(ToError(err)), false)
}

// ReplyUrgent is Reply for answers whose meaning does not depend on the
// events queued before them, such as "your message was queued": the
// answer may overtake those events (never later ones), so a client that
// waits for it is not held behind a backlog of deliveries it has yet to
// read. libqb gives corosync the same with a response channel separate
// from the event channel. Ordinary Reply keeps strict order.
func (c *Conn) ReplyUrgent(h Header, payload []byte) error {
	return c.send(Header{Kind: KindReply, Service: h.Service, Msg: h.Msg, ReqID: h.ReqID}, payload, true)
}

// ReplyErrorUrgent is ReplyError with ReplyUrgent's ordering.
func (c *Conn) ReplyErrorUrgent(h Header, err error) error {
	return c.send(Header{Kind: KindError, Service: h.Service, Msg: h.Msg, ReqID: h.ReqID}, encodeError(ToError(err)), true)
}

// Event pushes an unsolicited message to the client. A client whose queue
// is over budget (it stopped reading) is disconnected and ErrSlowClient is
// returned; other clients are unaffected.
func (c *Conn) Event(service, msg uint16, payload []byte) error {
	return c.send(Header{Kind: KindEvent, Service: service, Msg: msg}, payload, false)
}

// WriteQueued writes what is queued for the client now, from the calling
// goroutine, when the connection's writer is idle, without blocking (what
// the socket does not take, the writer writes). The executive calls it
// while a request is handled, between the ring's delivery of the
// request's message and the datagrams that carry it to the other nodes.
func (c *Conn) WriteQueued() { c.out.writeNow(true) }

// tryWrite writes b to the socket without blocking and returns how much
// went out (0 when the socket buffer is full or the write fails: the
// writer then takes over and meets the error itself).
func (c *Conn) tryWrite(b []byte) int { return tryWrite(c.nc, b) }

// tryWrite writes b to nc without blocking; see Conn.tryWrite.
func tryWrite(nc *net.UnixConn, b []byte) int {
	raw, err := nc.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = raw.Write(func(fd uintptr) bool {
		k, err := unix.Write(int(fd), b)
		if err == nil {
			n = k
		}
		return true // never wait: that is the writer's job
	})
	return n
}

func (c *Conn) send(h Header, p []byte, urgent bool) error {
	if h.Kind == KindEvent {
		c.lastService.Store(uint32(h.Service))
	}
	res := c.out.push(h, p, urgent)
	for tries := 0; res == overGlobal && tries < 8; tries++ {
		// The server's bound on queued output is reached: the slowest
		// consumer (largest backlog) goes, which may be this one.
		victim := c.srv.largest()
		if victim == nil || victim == c {
			break
		}
		victim.evict()
		res = c.out.push(h, p, urgent)
	}
	switch res {
	case pushed:
		sc := c.counters(h.Service)
		switch h.Kind {
		case KindReply:
			sc.replies.Add(1)
		case KindError:
			sc.errors.Add(1)
		case KindEvent:
			sc.events.Add(1)
		}
		return nil
	case overConn:
		c.srv.log.Warn("client does not read its events: disconnecting (per-connection output budget)",
			append(connFields(c), zap.Uint16("service", uint16(c.lastService.Load())), zap.Int("backlog", c.out.backlog()))...)
		c.closeWithMode(&Error{Code: CodeSlowClient, Msg: "output queue over budget"}, true)
		return ErrSlowClient
	case overGlobal:
		c.evict()
		return ErrSlowClient
	}
	return ErrClosed
}

// evict disconnects a slowest consumer when the server's bound on queued
// output is reached.
func (c *Conn) evict() {
	c.srv.log.Warn("IPC output memory at its bound (ipc.max_queued_bytes): disconnecting the slowest consumer",
		append(connFields(c), zap.Uint16("service", uint16(c.lastService.Load())), zap.Int("backlog", c.out.backlog()),
			zap.Int64("queued", c.srv.pool.used.Load()), zap.Int64("bound", c.srv.pool.max))...)
	c.closeWithMode(&Error{Code: CodeSlowClient, Msg: "ringd's IPC output memory is at its bound and this client has the largest backlog"}, true)
}

// Backlog is how many bytes of replies and events wait to be written to
// the client.
func (c *Conn) Backlog() int { return c.out.backlog() }

// Congested reports whether the client should get TRY_AGAIN for requests
// that make more output (a CPG multicast delivers to its sender too): the
// server's queued output is over three quarters of its bound and this
// client holds an eighth of it. Short of that a client that does not read
// is left to its own budget (MaxPending), which disconnects it.
func (c *Conn) Congested() bool {
	b := int64(c.out.backlog())
	p := c.srv.pool
	return p.max > 0 && 4*p.used.Load() >= 3*p.max && 8*b >= p.max
}

// Close disconnects the client.
func (c *Conn) Close() { c.closeWith(nil) }

// Done is closed once the connection is gone.
func (c *Conn) Done() <-chan struct{} { return c.gone }

// closeWith drops whatever is queued, writes a last error frame (best
// effort) and closes the socket; the reader then reports Closed.
func (c *Conn) closeWith(e *Error) { c.closeWithMode(e, false) }

// closeWithMode is closeWith; async writes the last frame and closes from
// a goroutine of its own, for callers that must not wait: a slow client's
// last frame can wait up to its deadline on a peer that does not read, and
// the caller is then often a service under the executive's lock.
func (c *Conn) closeWithMode(e *Error, async bool) {
	c.once.Do(func() {
		c.out.close()
		finish := func() {
			if e != nil {
				_ = c.nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				_, _ = c.nc.Write(AppendFrame(nil, Header{Kind: KindError}, encodeError(e)))
			}
			_ = c.nc.Close()
		}
		if async {
			go finish()
		} else {
			finish()
		}
	})
}
