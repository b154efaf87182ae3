package ipc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Handler serves the requests of all connections. Request is called from
// the connection's reader goroutine, one request at a time per connection
// but concurrently across connections; Closed is called once per
// connection after its last Request.
type Handler interface {
	Request(c *Conn, h Header, payload []byte)
	Closed(c *Conn)
}

// Options configure a Server.
type Options struct {
	// AllowedUIDs and AllowedGIDs may connect besides root and the
	// daemon's own uid. A gid matches the peer's primary group or any of
	// its supplementary groups.
	AllowedUIDs []int
	AllowedGIDs []int
	// MaxPending is the output budget per connection in bytes before a
	// client that does not read is disconnected (default 64 MiB).
	MaxPending int
	// MaxQueued bounds the output queued for all connections together,
	// in bytes (default DefaultMaxQueued; negative: unbounded). When it
	// is reached the connection with the largest backlog is
	// disconnected, with a log line naming it.
	MaxQueued int64
	// MaxConns bounds the connections served at once; more are refused
	// at accept with a log line (default DefaultMaxConns(); negative:
	// unbounded). It keeps descriptors for the ring and for files.
	MaxConns int
	// Hello is the payload of the answer to the handshake request
	// (service 0, message 0) every client sends first.
	Hello func() []byte
	Log   *zap.Logger
}

// Server accepts client connections on a Unix stream socket.
type Server struct {
	path string
	ln   *net.UnixListener
	h    Handler
	log  *zap.Logger
	opt  Options

	allowMu sync.RWMutex
	uids    []int
	gids    []int

	pool      *pool
	logs      rateLog
	active    atomic.Int64 // connections admitted and not yet gone
	closing   chan struct{}
	closeOnce sync.Once

	nextID atomic.Uint64
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[*Conn]struct{}
}

// DefaultMaxQueued is the default bound on the output queued for all
// clients: four never-reading clients at their own budget (64 MiB), a
// small fraction of a cluster node's memory.
const DefaultMaxQueued = 256 << 20

// DefaultMaxConns is the default connection limit: the descriptor limit
// (RLIMIT_NOFILE) less a reserve for the ring's sockets, the log, state
// files and the resource manager's children (a quarter, at least 64), and
// at most 4096, which no deployment of corosync clients comes near.
func DefaultMaxConns() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 4096
	}
	n := int(rl.Cur)
	n -= max(64, n/4)
	return min(max(n, 8), 4096)
}

// Listen creates the socket (its directory too, replacing a stale socket
// file) and returns a Server; call Serve to accept.
func Listen(path string, h Handler, opt Options) (*Server, error) {
	if opt.Log == nil {
		opt.Log = zap.NewNop()
	}
	if opt.MaxPending == 0 {
		opt.MaxPending = 64 << 20
	}
	if opt.MaxQueued == 0 {
		opt.MaxQueued = DefaultMaxQueued
	}
	if opt.MaxConns == 0 {
		opt.MaxConns = DefaultMaxConns()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("ipc: socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		// A socket file left by a daemon that died. If something still
		// answers on it, another daemon owns it: refuse to steal it.
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("ipc: %s is in use by a running daemon", path)
		}
		_ = os.Remove(path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("ipc: listen: %w", err)
	}
	// Everyone may connect; who is served is decided by SO_PEERCRED.
	_ = os.Chmod(path, 0o666)
	s := &Server{path: path, ln: ln, h: h, log: opt.Log, opt: opt, conns: map[*Conn]struct{}{},
		pool: &pool{max: max(opt.MaxQueued, 0)}, closing: make(chan struct{})}
	s.SetAllowed(opt.AllowedUIDs, opt.AllowedGIDs)
	return s, nil
}

// Path is the socket path.
func (s *Server) Path() string { return s.path }

// SetAllowed replaces the allowlists (configuration reload).
func (s *Server) SetAllowed(uids, gids []int) {
	s.allowMu.Lock()
	s.uids = slices.Clone(uids)
	s.gids = slices.Clone(gids)
	s.allowMu.Unlock()
}

// Serve accepts connections until Close. Accept errors (out of
// descriptors, out of memory, a connection aborted before it was taken)
// do not end it: it backs off, 5 ms doubling to 1 s as net/http does, and
// carries on, so a flood of connections cannot take the node out of the
// ring.
func (s *Server) Serve() error {
	var delay time.Duration
	for {
		nc, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.logs.warn(s.log, "accept", "cannot accept a client connection; retrying", zap.Error(err), zap.Duration("retry_in", delay))
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.closing:
				t.Stop()
				return nil
			}
			continue
		}
		delay = 0
		s.admit(nc)
	}
}

// admit decides on a new connection before anything is read from it: the
// peer's credentials (SO_PEERCRED, known at accept) and the connection
// limit. A refused peer gets one error frame, written only if the socket
// takes it at once, and is closed; nothing is allocated for it.
func (s *Server) admit(nc *net.UnixConn) {
	cred, err := peerCred(nc)
	if err != nil {
		s.logs.warn(s.log, "cred", "cannot read peer credentials: closing the connection", zap.Error(err))
		refuse(nc, &Error{Code: CodeAccess, Msg: "cannot read peer credentials"})
		return
	}
	if !s.allowed(cred) {
		s.logs.warn(s.log, "access", "refused client: uid/gid not allowed (ipc.allowed_uids, ipc.allowed_gids)",
			zap.Int32("pid", cred.PID), zap.Uint32("uid", cred.UID), zap.Uint32("gid", cred.GID))
		refuse(nc, &Error{Code: CodeAccess, Msg: fmt.Sprintf("uid %d gid %d is not allowed by ipc.allowed_uids/allowed_gids", cred.UID, cred.GID)})
		return
	}
	if s.opt.MaxConns > 0 && s.active.Load() >= int64(s.opt.MaxConns) {
		s.logs.warn(s.log, "limit", "refused client: too many connections (ipc.max_connections)",
			zap.Int32("pid", cred.PID), zap.Uint32("uid", cred.UID), zap.Int("max_connections", s.opt.MaxConns))
		refuse(nc, &Error{Code: CodeTryAgain, Msg: fmt.Sprintf("ringd serves at most %d connections (ipc.max_connections)", s.opt.MaxConns)})
		return
	}
	// Close waits on wg after setting closing under mu: a connection
	// accepted while it runs is closed here instead of being added behind
	// its Wait.
	s.mu.Lock()
	select {
	case <-s.closing:
		s.mu.Unlock()
		_ = nc.Close()
		return
	default:
	}
	s.active.Add(1)
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer s.active.Add(-1)
		s.serveConn(nc, cred)
	}()
}

// refuse writes e as a connection-level error frame if the socket takes it
// without waiting (a new socket's buffer is empty) and closes nc. The
// kernel hands the frame to the peer before it reports the reset.
func refuse(nc *net.UnixConn, e *Error) {
	frame := AppendFrame(nil, Header{Kind: KindError}, encodeError(e))
	if raw, err := nc.SyscallConn(); err == nil {
		_ = raw.Write(func(fd uintptr) bool {
			_, _ = unix.Write(int(fd), frame)
			return true
		})
	}
	_ = nc.Close()
}

// largest is the connection with the largest backlog among those still
// open (nil when there is none). Ties go to the lower connection ID, so
// the choice does not depend on map order.
func (s *Server) largest() *Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *Conn
	bestN := -1
	for c := range s.conns {
		c.out.mu.Lock()
		n, closed := c.out.size+len(c.out.urgent), c.out.closed
		c.out.mu.Unlock()
		if closed {
			continue
		}
		if n > bestN || n == bestN && c.ID < best.ID {
			best, bestN = c, n
		}
	}
	return best
}

// QueuedBytes is the output memory held for all connections now.
func (s *Server) QueuedBytes() int64 { return s.pool.used.Load() }

// rateLog logs at most one line per key per second; the next line says how
// many were suppressed. A flood of refused connections must not become a
// flood of log lines.
type rateLog struct {
	mu   sync.Mutex
	keys map[string]*rateKey
}

type rateKey struct {
	last       time.Time
	suppressed int
}

func (r *rateLog) warn(log *zap.Logger, key, msg string, fields ...zap.Field) {
	r.mu.Lock()
	if r.keys == nil {
		r.keys = map[string]*rateKey{}
	}
	k := r.keys[key]
	if k == nil {
		k = &rateKey{}
		r.keys[key] = k
	}
	now := time.Now()
	if !k.last.IsZero() && now.Sub(k.last) < time.Second {
		k.suppressed++
		r.mu.Unlock()
		return
	}
	n := k.suppressed
	k.last, k.suppressed = now, 0
	r.mu.Unlock()
	if n > 0 {
		fields = append(fields, zap.Int("suppressed_since_last", n))
	}
	log.Warn(msg, fields...)
}

// Close stops accepting, disconnects every client, waits for their
// goroutines and removes the socket file.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	s.closeOnce.Do(func() { close(s.closing) })
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func peerCred(nc *net.UnixConn) (Cred, error) {
	raw, err := nc.SyscallConn()
	if err != nil {
		return Cred{}, err
	}
	var uc *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		uc, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Cred{}, err
	}
	if cerr != nil {
		return Cred{}, cerr
	}
	return Cred{PID: uc.Pid, UID: uc.Uid, GID: uc.Gid}, nil
}

// allowed decides whether a peer may use the daemon: root, the daemon's own
// uid, a listed uid, or membership of a listed group.
func (s *Server) allowed(cr Cred) bool {
	if cr.UID == 0 || int(cr.UID) == os.Geteuid() {
		return true
	}
	s.allowMu.RLock()
	defer s.allowMu.RUnlock()
	if slices.Contains(s.uids, int(cr.UID)) {
		return true
	}
	if len(s.gids) == 0 {
		return false
	}
	if slices.Contains(s.gids, int(cr.GID)) {
		return true
	}
	for _, g := range supplementaryGroups(cr.PID) {
		if slices.Contains(s.gids, g) {
			return true
		}
	}
	return false
}

// supplementaryGroups reads the peer's groups from /proc (SO_PEERCRED only
// carries the primary gid).
func supplementaryGroups(pid int32) []int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/status")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Groups:"); ok {
			var gs []int
			for _, f := range strings.Fields(rest) {
				if g, err := strconv.Atoi(f); err == nil {
					gs = append(gs, g)
				}
			}
			return gs
		}
	}
	return nil
}

func connFields(c *Conn) []zap.Field {
	return []zap.Field{zap.Uint64("conn", c.ID), zap.Int32("pid", c.Cred.PID), zap.Uint32("uid", c.Cred.UID)}
}

func (s *Server) serveConn(nc *net.UnixConn, cred Cred) {
	c := &Conn{ID: s.nextID.Add(1), Cred: cred, srv: s, nc: nc, out: newBlockQueue(s.pool, s.opt.MaxPending), gone: make(chan struct{})}
	c.out.try = c.tryWrite
	s.mu.Lock()
	select {
	case <-s.closing:
		// Close has already closed the connections it knew of.
		s.mu.Unlock()
		_ = nc.Close()
		return
	default:
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		if err := c.out.writeTo(nc); err != nil {
			c.Close()
		}
	}()
	s.readLoop(c)
	c.Close()
	<-wdone
	close(c.gone)
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.h.Closed(c)
}

func (s *Server) readLoop(c *Conn) {
	r := bufio.NewReaderSize(c.nc, 64<<10)
	hdr := make([]byte, HeaderSize)
	for {
		h, p, err := readFrameDirect(r, c.nc, hdr)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrClosed) && !errors.Is(err, io.EOF) {
				s.log.Info("closing client after a bad frame", append(connFields(c), zap.Error(err))...)
				c.closeWith(&Error{Code: CodeBadFrame, Msg: err.Error()})
			}
			return
		}
		if h.Kind != KindRequest {
			c.closeWith(&Error{Code: CodeBadFrame, Msg: fmt.Sprintf("clients send requests, got frame kind %d", h.Kind)})
			return
		}
		if h.Service == 0 && h.Msg == MsgHello {
			var hello []byte
			if s.opt.Hello != nil {
				hello = s.opt.Hello()
			}
			_ = c.Reply(h, hello)
			continue
		}
		c.counters(h.Service).requests.Add(1)
		c.out.cork()
		s.h.Request(c, h, p)
		if !frameBuffered(r) {
			// No further request waits whole: what this one produced
			// goes out now (pipelined requests share one write).
			c.out.uncork()
		}
	}
}

// frameBuffered reports whether br holds a whole frame: the next request
// can be handled without waiting for the client.
func frameBuffered(br *bufio.Reader) bool {
	if br.Buffered() < HeaderSize {
		return false // Peek would wait for the client
	}
	hdr, err := br.Peek(HeaderSize)
	if err != nil {
		return false
	}
	return br.Buffered() >= HeaderSize+int(binary.BigEndian.Uint32(hdr[12:]))
}

// Stats returns the counters of every connected client.
func (s *Server) Stats() []ConnStat {
	s.mu.Lock()
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	var out []ConnStat
	for _, c := range conns {
		out = append(out, c.Stats()...)
	}
	return out
}

// MsgHello is the handshake message (service 0): every client sends it
// first, so a refused peer learns why at Dial time.
const MsgHello uint16 = 0
