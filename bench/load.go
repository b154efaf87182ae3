// Package bench is the engine of pload, ringmaster's CPG load generator
// and latency meter (cpgbench and pload in one): Run measures throughput
// and send-to-self-delivery latency per message size; Verify checks that
// every node delivers the same messages in the same order with no loss
// and no duplicates, at full speed. cmd/pload is the CLI around it;
// RESULTS.md keeps the figures.
//
// Both drive a session: a few CPG connections in one group, each sending
// (flow-controlled by a window of messages in flight, i.e. sent and not yet
// delivered back to itself) and each receiving everything. Every message
// starts with a 24-byte header:
//
//	0  run     u32  random per session: messages of other runs are ignored
//	4  sender  u16  index of the sending connection
//	6  zero    u16
//	8  seq     u64  per sender, from 0
//	16 sent    i64  send time, ns since the session started (monotonic)
package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	cpgc "ringmaster/clients/cpg"
	"ringmaster/totem"
)

// HeaderSize is the smallest message pload sends.
const HeaderSize = 24

type header struct {
	run    uint32
	sender uint16
	seq    uint64
	sent   int64
}

func putHeader(b []byte, h header) {
	binary.BigEndian.PutUint32(b, h.run)
	binary.BigEndian.PutUint16(b[4:], h.sender)
	binary.BigEndian.PutUint16(b[6:], 0)
	binary.BigEndian.PutUint64(b[8:], h.seq)
	binary.BigEndian.PutUint64(b[16:], uint64(h.sent))
}

func parseHeader(b []byte) (header, bool) {
	if len(b) < HeaderSize {
		return header{}, false
	}
	return header{
		run:    binary.BigEndian.Uint32(b),
		sender: binary.BigEndian.Uint16(b[4:]),
		seq:    binary.BigEndian.Uint64(b[8:]),
		sent:   int64(binary.BigEndian.Uint64(b[16:])),
	}, true
}

// sessionConfig configures a session.
type sessionConfig struct {
	sockets   []string // one connection per entry
	group     string
	size      int
	rate      float64 // messages/s per sender; 0: as fast as the window allows
	guarantee totem.Guarantee
	window    int  // messages in flight per sender
	batch     int  // messages per IPC request, at most
	keepLog   bool // record every receiver's delivery sequence (verify)
}

// session is one measurement: connections, their senders and receivers.
type session struct {
	cfg   sessionConfig
	run   uint32
	epoch time.Time
	conns []*conn
	// recording: logs start once everybody has joined, so each log
	// begins at the same point of the group's stream.
	recording atomic.Bool
}

// conn is one CPG connection, sending and receiving.
type conn struct {
	s    *session
	idx  int
	c    *cpgc.Client
	node totem.NodeID
	pid  uint32

	// sender side
	inflight atomic.Int64
	wake     chan struct{} // a self-delivery happened
	sent     atomic.Uint64 // messages accepted by ringd
	tryAgain atomic.Uint64
	sendErr  error

	// receiver side; the counters are read live by the session
	got       []atomic.Uint64 // per sender: next expected seq
	delivered atomic.Uint64   // messages of this run
	lastAt    atomic.Int64    // ns since epoch of the last delivery
	done      chan struct{}   // the event stream ended

	// owned by the receiver goroutine until done
	dups, gaps, foreign uint64
	lat                 Histogram
	hash                uint64
	log                 []uint64 // sender<<48 | seq, or confMark|hash for a confchg

	mu      sync.Mutex
	members []cpgc.Address // last confchg's members
}

// pidSerial numbers the connections of this process (see open).
var pidSerial atomic.Uint32

// confMark tags a confchg in a delivery log.
const confMark = 1 << 63

func (s *session) now() int64 { return int64(time.Since(s.epoch)) }

// open dials every socket and joins the group; it returns once every
// connection has seen all of them in the group, so no message is sent
// before every receiver is in.
func open(ctx context.Context, cfg sessionConfig) (*session, error) {
	s := &session{cfg: cfg, run: rand.Uint32(), epoch: time.Now()}
	// Several connections of one process in one group need distinct
	// pids, also from the previous session's, whose departure ringd may
	// still be processing. pid_max is at most 2^22, so the high bits
	// keep these apart from any real process.
	base := uint32(os.Getpid()) & (1<<22 - 1)
	for i, sock := range cfg.sockets {
		c := &conn{s: s, idx: i, pid: (pidSerial.Add(1)%1023+1)<<22 | base, wake: make(chan struct{}, 1), done: make(chan struct{}), got: make([]atomic.Uint64, len(cfg.sockets))}
		// Events are handled on the connection's reader goroutine
		// (no channel hop per message).
		next := make([]uint64, len(c.got))
		cl, err := cpgc.DialOptions(ctx, sock, cpgc.Options{PID: c.pid, OnEvent: func(ev cpgc.Event) { c.receive(ev, next) }})
		if err != nil {
			s.close()
			return nil, err
		}
		c.c = cl
		s.conns = append(s.conns, c)
		go func() {
			for range cl.Events() { // closed when the connection ends
			}
			close(c.done)
		}()
		if c.node, err = cl.LocalNodeID(ctx); err != nil {
			s.close()
			return nil, err
		}
	}
	for _, c := range s.conns {
		if err := retry(ctx, func() error { return c.c.Join(ctx, cfg.group) }); err != nil {
			s.close()
			return nil, fmt.Errorf("join %q on %s: %w", cfg.group, cfg.sockets[c.idx], err)
		}
	}
	want := make([]cpgc.Address, len(s.conns))
	for i, c := range s.conns {
		want[i] = cpgc.Address{NodeID: c.node, PID: c.pid}
	}
	err := poll(ctx, func() bool {
		for _, c := range s.conns {
			c.mu.Lock()
			ms := c.members
			c.mu.Unlock()
			for _, w := range want {
				if !slices.ContainsFunc(ms, func(a cpgc.Address) bool { return a.NodeID == w.NodeID && a.PID == w.PID }) {
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		s.close()
		return nil, fmt.Errorf("waiting for every connection to join: %w", err)
	}
	return s, nil
}

func (s *session) close() {
	for _, c := range s.conns {
		if c.c != nil {
			c.c.Close()
			<-c.done
		}
	}
}

// retry runs f until it does not answer try-again (the cluster may be
// re-synchronising), or ctx ends.
func retry(ctx context.Context, f func() error) error {
	for {
		err := f()
		if !cpgc.IsTryAgain(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Millisecond):
		}
	}
}

// poll checks cond every millisecond until it holds or ctx ends.
func poll(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// receive handles one event, on the connection's reader goroutine; next
// is the next expected seq per sender.
func (c *conn) receive(ev cpgc.Event, next []uint64) {
	s := c.s
	switch ev.Kind {
	case cpgc.EventMessage:
		h, ok := parseHeader(ev.Data)
		if !ok || h.run != s.run || int(h.sender) >= len(next) {
			c.foreign++
			return
		}
		now := s.now()
		exp := next[h.sender]
		switch {
		case h.seq == exp:
			next[h.sender]++
		case h.seq < exp:
			c.dups++
		default:
			c.gaps += h.seq - exp
			next[h.sender] = h.seq + 1
		}
		c.got[h.sender].Store(next[h.sender])
		c.hash = (c.hash^(uint64(h.sender)<<48|h.seq))*0x100000001b3 + 1
		if s.cfg.keepLog && s.recording.Load() {
			c.log = append(c.log, uint64(h.sender)<<48|h.seq)
		}
		if int(h.sender) == c.idx {
			c.lat.Record(time.Duration(now - h.sent))
			c.inflight.Add(-1)
			select {
			case c.wake <- struct{}{}:
			default:
			}
		}
		c.lastAt.Store(now)
		c.delivered.Add(1)
	case cpgc.EventConfChg:
		c.mu.Lock()
		c.members = ev.Members
		c.mu.Unlock()
		if s.cfg.keepLog && s.recording.Load() {
			var h uint64 = 14695981039346656037
			for _, m := range ev.Members {
				h = (h ^ (uint64(m.NodeID)<<32 | uint64(m.PID))) * 0x100000001b3
			}
			c.log = append(c.log, confMark|h>>1)
		}
	}
}

// send runs the connection's sender until stop is closed or an error
// other than try-again.
func (c *conn) send(ctx context.Context, stop <-chan struct{}) {
	s := c.s
	cfg := s.cfg
	bufs := make([][]byte, cfg.batch)
	for i := range bufs {
		bufs[i] = make([]byte, cfg.size)
	}
	var seq uint64
	retryT := time.NewTimer(time.Hour)
	retryT.Stop()
	var perSender float64
	if cfg.rate > 0 {
		perSender = cfg.rate / float64(len(s.conns))
	}
	start := s.now()
	for {
		select {
		case <-stop:
			return
		default:
		}
		room := cfg.window - int(c.inflight.Load())
		if room <= 0 {
			select {
			case <-c.wake:
			case <-stop:
				return
			}
			continue
		}
		n := min(room, cfg.batch)
		if perSender > 0 {
			// Send what is due by now; sleep until the next one.
			due := int64(float64(s.now()-start)*perSender/1e9) + 1 - int64(seq)
			if due <= 0 {
				next := start + int64(float64(seq)/perSender*1e9)
				select {
				case <-time.After(time.Duration(next - s.now())):
				case <-stop:
					return
				}
				continue
			}
			n = min(n, int(due))
		}
		now := s.now()
		for i := range n {
			putHeader(bufs[i], header{run: s.run, sender: uint16(c.idx), seq: seq + uint64(i), sent: now})
		}
		c.inflight.Add(int64(n))
		var sent int
		var err error
		if n == 1 {
			if err = c.c.Mcast(ctx, cfg.guarantee, bufs[0]); err == nil {
				sent = 1
			}
		} else {
			sent, err = c.c.McastBatch(ctx, cfg.guarantee, bufs[:n])
		}
		c.inflight.Add(int64(sent - n))
		seq += uint64(sent)
		c.sent.Store(seq)
		if err == nil {
			continue
		}
		if !cpgc.IsTryAgain(err) {
			c.sendErr = err
			return
		}
		c.tryAgain.Add(1)
		// Full queue or sync: wait for one of ours to come back, or
		// a moment when none is in flight.
		retryT.Reset(time.Millisecond)
		select {
		case <-c.wake:
		case <-retryT.C:
		case <-stop:
			return
		}
		retryT.Stop()
	}
}

// alive reports whether the connection's event stream is still open.
func (c *conn) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// drained reports whether every live receiver has every message that the
// live senders had accepted.
func (s *session) drained() bool {
	for _, r := range s.conns {
		if !r.alive() {
			continue
		}
		for _, snd := range s.conns {
			if snd.sendErr == nil && snd.alive() && r.got[snd.idx].Load() < snd.sent.Load() {
				return false
			}
		}
	}
	return true
}

// blast sends from every connection for d, stops, and waits (up to
// drainMax) until what was sent has come back everywhere. It returns when
// sending started and whether everything drained.
func (s *session) blast(ctx context.Context, d, drainMax time.Duration, progress func(start int64)) (start int64, drainedOK bool) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	s.recording.Store(true)
	start = s.now()
	for _, c := range s.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.send(ctx, stop)
		}()
	}
	tick := time.NewTicker(500 * time.Millisecond)
	end := time.NewTimer(d)
loop:
	for {
		select {
		case <-end.C:
			break loop
		case <-ctx.Done():
			break loop
		case <-tick.C:
			if progress != nil {
				progress(start)
			}
		}
	}
	tick.Stop()
	close(stop)
	wg.Wait()
	dctx, cancel := context.WithTimeout(ctx, drainMax)
	defer cancel()
	drainedOK = poll(dctx, s.drained) == nil
	return start, drainedOK
}

// errNoMessages is returned when nothing could be sent at all.
var errNoMessages = errors.New("no message was delivered")
