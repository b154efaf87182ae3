package ipc

import (
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"

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
// Ownership of blocks: the writer is writing from blocks[0] while busy;
// everything else belongs to the queue under mu. close frees what the
// writer is not using; the writer frees the rest when it stops.
type blockQueue struct {
	pool *pool
	max  int // bytes per connection; 0: unbounded

	mu      sync.Mutex
	blocks  [][]byte // len(b) is the filled part of each block
	head    int      // read offset in blocks[0]
	size    int      // queued ordinary bytes
	urgent  []byte
	busy    bool // the writer is writing from blocks[0]
	closed  bool
	stopped bool // the writer has returned
	wake    chan struct{}
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
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return pushed
}

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
	var hdr [HeaderSize]byte
	var written, frameEnd int
	var urgentDone []byte
	defer func() {
		q.mu.Lock()
		q.stopped, q.busy, q.closed = true, false, true
		q.freeAll()
		q.urgent = nil
		q.mu.Unlock()
	}()
	for {
		q.mu.Lock()
		if len(q.urgent) > 0 && written == frameEnd {
			u := q.urgent
			q.urgent = urgentDone[:0]
			q.mu.Unlock()
			if _, err := c.Write(u); err != nil {
				return err
			}
			urgentDone = u
			continue
		}
		if q.size == 0 {
			closed := q.closed
			q.mu.Unlock()
			if closed {
				return nil
			}
			<-q.wake
			continue
		}
		if written == frameEnd {
			q.peekAt(0, hdr[:])
			frameEnd = written + HeaderSize + int(binary.BigEndian.Uint32(hdr[12:]))
		}
		// frameEnd is the end of the frame being written, after
		// written.
		seg := q.blocks[0][q.head:]
		if len(q.urgent) > 0 && len(seg) > frameEnd-written {
			seg = seg[:frameEnd-written]
		}
		q.busy = true
		q.mu.Unlock()
		n, err := c.Write(seg)
		q.mu.Lock()
		q.busy = false
		if !q.closed {
			// Follow the frame boundaries through what was written
			// while its headers are still here.
			for frameEnd < written+n {
				q.peekAt(frameEnd-written, hdr[:])
				frameEnd += HeaderSize + int(binary.BigEndian.Uint32(hdr[12:]))
			}
		}
		q.consume(n)
		q.mu.Unlock()
		written += n
		if err != nil {
			return err
		}
	}
}
