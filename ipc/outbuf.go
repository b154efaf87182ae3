package ipc

import (
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// blockSize is the unit of server-side output memory.
const blockSize = 64 << 10

// keepFree is how many released blocks a pool keeps for reuse, so a busy
// connection whose queue fills and drains does not map and unmap memory
// on every reply.
const keepFree = 64

// pool hands out the blocks that hold the queued output of a server's
// connections and enforces the server-wide bound on them
// (Options.MaxQueued, corosync.toml ipc.max_queued_bytes).
//
// Blocks are mapped with mmap, outside the Go heap, for two reasons: the
// bound is then a bound on the process's memory (a block is counted from
// the moment it is mapped until it is unmapped or parked in the free
// list; there is no garbage left behind by a queue that grew and was
// dropped), and the garbage collector, which ringd runs lazily (GOGC 400),
// does not size its heap target after hundreds of MiB of queued events.
//
// A pool may be used by any goroutine.
type pool struct {
	max  int64        // bytes; 0: unbounded
	used atomic.Int64 // bytes of blocks handed out

	mu   sync.Mutex
	free [][]byte
}

// reserve accounts for n more blocks; false when they would pass the bound.
func (p *pool) reserve(n int) bool {
	add := int64(n) * blockSize
	for {
		u := p.used.Load()
		if p.max > 0 && u+add > p.max {
			return false
		}
		if p.used.CompareAndSwap(u, u+add) {
			return true
		}
	}
}

// get returns a block for a reservation (nil when the kernel refuses
// memory; the caller then gives the reservation back).
func (p *pool) get() []byte {
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return b[:0]
	}
	p.mu.Unlock()
	b, err := unix.Mmap(-1, 0, blockSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil
	}
	return b[:0]
}

// put releases a block and its reservation.
func (p *pool) put(b []byte) {
	p.used.Add(-blockSize)
	p.mu.Lock()
	if len(p.free) < keepFree {
		p.free = append(p.free, b[:0])
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	_ = unix.Munmap(b[:cap(b)])
}

// pushResult says what became of a frame offered to a blockQueue.
type pushResult int

const (
	pushed     pushResult = iota
	pushClosed            // the connection is gone
	overConn              // the connection's own budget (Options.MaxPending) is spent
	overGlobal            // the server's bound (Options.MaxQueued) is reached
)

// blockQueue is a server connection's output: whole frames appended by
// senders, which never block, and written by one writer goroutine
// (writeTo). Ordinary frames are a byte stream in pool blocks; the
// writer writes at most a block per system call and tracks frame
// boundaries by reading the headers as it goes, so urgent frames
// (Conn.ReplyUrgent, small acknowledgements, kept in a Go slice of their
// own) go out at the next frame boundary of the backlog.
//
// Ownership of blocks: whoever is writing (the writer, or a direct write:
// writeNow) writes from blocks[0] while busy; everything else belongs to the
// queue under mu. close frees what is not being written; the writer (or
// the write in progress) frees the rest when it stops.
type blockQueue struct {
	pool *pool
	max  int // bytes per connection; 0: unbounded

	mu      sync.Mutex
	blocks  [][]byte // len(b) is the filled part of each block
	head    int      // read offset in blocks[0]
	size    int      // queued ordinary bytes
	urgent  []byte
	busy    bool // a write from blocks[0] or of the urgent lane is in progress
	corked  bool // see cork
	closed  bool
	stopped bool // the writer has returned
	wake    chan struct{}

	// try writes without blocking (Conn.tryWrite; nil in tests that
	// drive the writer alone): push on a quiet connection, uncork and
	// WriteQueued write through it while the writer is idle. lastWrite
	// is when the last write ended (nanotime).
	try       func([]byte) int
	lastWrite int64

	// The write position, shared by the writer and uncork: ordinary
	// bytes written so far, the end of the frame they are in, and the
	// urgent lane's previous buffer for reuse.
	written, frameEnd int
	urgentDone        []byte

	// joined is writeJoined's buffer, used only while busy.
	joined []byte
}

func newBlockQueue(p *pool, max int) *blockQueue {
	return &blockQueue{pool: p, max: max, wake: make(chan struct{}, 1)}
}

// backlog is how many bytes wait to be written.
func (q *blockQueue) backlog() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.size + len(q.urgent)
}

func (q *blockQueue) push(h Header, p []byte, urgent bool) pushResult {
	var hdr [HeaderSize]byte
	h.Length = uint32(len(p))
	AppendHeader(hdr[:0], h)
	n := HeaderSize + len(p)
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return pushClosed
	}
	if q.max > 0 && q.size+len(q.urgent)+n > q.max {
		q.mu.Unlock()
		return overConn
	}
	if urgent {
		q.urgent = append(append(q.urgent, hdr[:]...), p...)
	} else {
		room := 0
		if k := len(q.blocks); k > 0 {
			room = blockSize - len(q.blocks[k-1])
		}
		need := 0
		if n > room {
			need = (n - room + blockSize - 1) / blockSize
		}
		if need > 0 && !q.pool.reserve(need) {
			q.mu.Unlock()
			return overGlobal
		}
		for i := 0; i < need; i++ {
			b := q.pool.get()
			if b == nil {
				// Out of memory: give back what was not mapped; the
				// caller treats it as the global bound.
				q.pool.used.Add(-int64(need-i) * blockSize)
				q.mu.Unlock()
				return overGlobal
			}
			q.blocks = append(q.blocks, b)
		}
		q.appendBytes(hdr[:])
		q.appendBytes(p)
		q.size += n
	}
	if q.corked {
		q.mu.Unlock()
		return pushed
	}
	if q.try != nil && !urgent && q.size == n && len(q.urgent) == 0 && !q.busy && n <= directMax {
		if now := nanotime(); now-q.lastWrite >= int64(quietGap) {
			// A lone frame on a quiet connection (a delivery at a
			// moderate rate): written here, without waking the
			// writer. A busy connection keeps batching in the writer.
			q.mu.Unlock()
			q.writeNow(false)
			return pushed
		}
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return pushed
}

// quietGap is how long a connection must have been quiet (no write) for
// push to write a lone frame itself. At saturation frames come
// microseconds apart and the writer batches them, one system call per
// many frames; at a thousand a second each one would otherwise cost a
// thread wake-up (tens of µs on a small VM).
const quietGap = 100 * time.Microsecond

// nanotime is a monotonic clock reading in nanoseconds.
func nanotime() int64 { return int64(time.Since(clockBase)) }

var clockBase = time.Now()

// appendBytes copies b into the blocks, which have room for it.
func (q *blockQueue) appendBytes(b []byte) {
	i := len(q.blocks) - 1
	for i > 0 && len(q.blocks[i-1]) < blockSize && len(q.blocks[i]) == 0 {
		i--
	}
	for len(b) > 0 {
		blk := q.blocks[i]
		k := copy(blk[len(blk):blockSize], b)
		q.blocks[i] = blk[:len(blk)+k]
		b = b[k:]
		i++
	}
}

// peekAt copies len(dst) bytes from off bytes past the read position
// into dst (off+len(dst) <= size).
func (q *blockQueue) peekAt(off int, dst []byte) {
	off += q.head
	i := 0
	for off >= len(q.blocks[i]) {
		off -= len(q.blocks[i])
		i++
	}
	for ; len(dst) > 0; i++ {
		k := copy(dst, q.blocks[i][off:])
		dst = dst[k:]
		off = 0
	}
}

// consume drops n written bytes; emptied blocks go back to the pool.
// Called with mu held.
func (q *blockQueue) consume(n int) {
	if q.closed {
		q.freeAll()
		return
	}
	q.size -= n
	q.head += n
	for len(q.blocks) > 0 && q.head >= len(q.blocks[0]) && (len(q.blocks) > 1 || q.size == 0) {
		q.head -= len(q.blocks[0])
		q.pool.put(q.blocks[0])
		q.blocks[0] = nil
		q.blocks = q.blocks[1:]
	}
	if len(q.blocks) == 0 {
		q.blocks, q.head = nil, 0
	}
}

func (q *blockQueue) freeAll() {
	for i, b := range q.blocks {
		q.pool.put(b)
		q.blocks[i] = nil
	}
	q.blocks, q.head, q.size = nil, 0, 0
}

// close drops what is queued (but the block the writer is writing from)
// and makes the writer stop.
func (q *blockQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.urgent = nil
	switch {
	case q.stopped:
		q.freeAll()
	case q.busy && len(q.blocks) > 0:
		for i, b := range q.blocks[1:] {
			q.pool.put(b)
			q.blocks[i+1] = nil
		}
		q.blocks = q.blocks[:1]
		q.size = len(q.blocks[0]) - q.head
	default:
		q.freeAll()
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// writeTo drains the queue into c until it is closed and empty or a write
// fails; it frees every block it still holds when it returns.
func (q *blockQueue) writeTo(c net.Conn) error {
	defer func() {
		q.mu.Lock()
		q.stopped, q.closed = true, true
		if !q.busy {
			// A direct write in progress (writeNow) frees them when
			// it is done: consume sees closed.
			q.freeAll()
		}
		q.urgent = nil
		q.mu.Unlock()
	}()
	for {
		q.mu.Lock()
		seg, urgent, st := q.nextLocked()
		if st != segReady {
			closed := q.closed
			q.mu.Unlock()
			if closed && st == segEmpty {
				return nil
			}
			<-q.wake
			continue
		}
		q.mu.Unlock()
		n, err := c.Write(seg)
		q.mu.Lock()
		q.doneLocked(seg, n, urgent)
		q.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// segState says what nextLocked found.
type segState int

const (
	segReady segState = iota // a segment to write, q.busy set
	segEmpty                 // nothing queued
	segBusy                  // another goroutine is writing (writeNow)
)

// nextLocked picks the next bytes to write and marks the queue busy:
// the urgent lane at a frame boundary of the backlog, otherwise the
// backlog from the read position, cut at the current frame's end when an
// urgent frame waits. Called with mu held.
func (q *blockQueue) nextLocked() (seg []byte, urgent bool, st segState) {
	if q.busy {
		return nil, false, segBusy
	}
	if len(q.urgent) > 0 && q.written == q.frameEnd {
		seg = q.urgent
		q.urgent = q.urgentDone[:0]
		q.urgentDone = nil
		q.busy = true
		return seg, true, segReady
	}
	if q.size == 0 {
		return nil, false, segEmpty
	}
	if q.written == q.frameEnd {
		var hdr [HeaderSize]byte
		q.peekAt(0, hdr[:])
		q.frameEnd = q.written + HeaderSize + int(binary.BigEndian.Uint32(hdr[12:]))
	}
	// frameEnd is the end of the frame being written, after written.
	seg = q.blocks[0][q.head:]
	if len(q.urgent) > 0 && len(seg) > q.frameEnd-q.written {
		seg = seg[:q.frameEnd-q.written]
	}
	q.busy = true
	return seg, false, segReady
}

// doneLocked accounts for n bytes of seg (from nextLocked) written and
// clears busy. A partly written urgent segment keeps its rest at the
// front of the lane. Called with mu held.
func (q *blockQueue) doneLocked(seg []byte, n int, urgent bool) {
	q.busy = false
	q.lastWrite = nanotime()
	if urgent {
		if n < len(seg) && !q.closed {
			q.urgent = append(append(q.urgentDone[:0:0], seg[n:]...), q.urgent...)
			// The rest must go before any ordinary byte: it is in
			// the middle of a frame, at an ordinary frame boundary.
			return
		}
		q.urgentDone = seg
		return
	}
	if !q.closed {
		// Follow the frame boundaries through what was written while
		// its headers are still here.
		var hdr [HeaderSize]byte
		for q.frameEnd < q.written+n {
			q.peekAt(q.frameEnd-q.written, hdr[:])
			q.frameEnd += HeaderSize + int(binary.BigEndian.Uint32(hdr[12:]))
		}
	}
	q.consume(n)
	q.written += n
}

// cork holds back the writer's wake-ups: frames pushed until uncork wait
// for it. The connection's reader corks while a request is handled, so
// that the reply and the events the request caused (a CPG message the
// ring delivered at once) leave in one write.
func (q *blockQueue) cork() {
	q.mu.Lock()
	q.corked = true
	q.mu.Unlock()
}

// uncork ends cork. When the writer is idle it writes what is queued
// itself with one non-blocking write (q.try), sparing the hand-off to the
// writer goroutine: on an idle machine that hand-off is a thread wake-up,
// the largest part of a request's round trip. What try could not write,
// and anything while the writer is busy, is left to the writer.
func (q *blockQueue) uncork() { q.writeNow(false) }

// writeNow is uncork that may keep the cork (Conn.WriteQueued): what it
// cannot write waits for the uncork, which wakes the writer.
func (q *blockQueue) writeNow(keepCork bool) {
	q.mu.Lock()
	q.corked = q.corked && keepCork
	if q.closed || q.size+len(q.urgent) == 0 {
		q.mu.Unlock()
		return
	}
	// The urgent lane and the backlog (ordinary frames pushed while
	// corked) in one non-blocking write when both are small, otherwise
	// at most one write each.
	joined := q.writeJoinedLocked()
	for range 2 {
		if !joined {
			break // the socket is full: the writer waits for it
		}
		if q.try == nil || q.closed || q.size+len(q.urgent) == 0 || q.size+len(q.urgent) > directMax {
			break
		}
		seg, urgent, st := q.nextLocked()
		if st != segReady {
			break
		}
		q.mu.Unlock()
		n := q.try(seg)
		q.mu.Lock()
		q.doneLocked(seg, n, urgent)
		if n < len(seg) {
			break // the socket is full: the writer waits for it
		}
	}
	more := (q.size+len(q.urgent) > 0 && !q.corked) || q.closed
	q.mu.Unlock()
	if more {
		q.wakeWriter()
	}
}

// wakeWriter wakes the writer goroutine if it waits.
func (q *blockQueue) wakeWriter() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// writeJoinedLocked writes the urgent lane and the start of the backlog
// with one non-blocking write when both are waiting, the backlog is at a
// frame boundary and together they are small (directMax): a request's
// reply (urgent) and the delivery it caused (an event) then reach the
// client in one read, not two, and the daemon spends one system call.
// It returns false when the socket took only part: the writer goes on
// from there. Called with mu held (released during the write).
func (q *blockQueue) writeJoinedLocked() bool {
	if q.try == nil || q.busy || q.closed || len(q.urgent) == 0 || q.size == 0 ||
		q.written != q.frameEnd || q.size+len(q.urgent) > directMax {
		return true
	}
	urg, back := q.urgent, q.blocks[0][q.head:]
	q.urgent, q.urgentDone = q.urgentDone[:0], nil
	q.busy = true
	buf := append(append(q.joined[:0], urg...), back...)
	q.mu.Unlock()
	n := q.try(buf)
	q.mu.Lock()
	q.joined = buf[:0]
	nu := min(n, len(urg))
	q.doneLocked(urg, nu, true)
	if nu < len(urg) {
		// The rest of the urgent frame is back at the front of its
		// lane and the backlog is still at a frame boundary
		// (frameEnd == written), so the writer sends that rest first.
		return false
	}
	// From frameEnd == written, doneLocked follows the backlog's frame
	// boundaries through what went out.
	q.busy = true // doneLocked cleared it; the backlog part is still ours
	q.doneLocked(back, n-nu, false)
	return n == len(buf)
}

// directMax bounds what uncork writes itself: small answers and
// deliveries; a backlog is the writer's.
const directMax = 16 << 10
