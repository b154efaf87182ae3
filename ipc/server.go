package ipc

import (
	"bufio"
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

	nextID atomic.Uint64
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[*Conn]struct{}
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
	s := &Server{path: path, ln: ln, h: h, log: opt.Log, opt: opt, conns: map[*Conn]struct{}{}}
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

// Serve accepts connections until Close.
func (s *Server) Serve() error {
	for {
		nc, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("ipc: accept: %w", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(nc)
		}()
	}
}

// Close stops accepting, disconnects every client, waits for their
// goroutines and removes the socket file.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
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

func (s *Server) serveConn(nc *net.UnixConn) {
	cred, err := peerCred(nc)
	c := &Conn{ID: s.nextID.Add(1), Cred: cred, srv: s, nc: nc, out: newOutQueue(s.opt.MaxPending), gone: make(chan struct{})}
	if err != nil {
		s.log.Warn("cannot read peer credentials", zap.Error(err))
		c.closeWith(&Error{Code: CodeAccess, Msg: "cannot read peer credentials"})
		return
	}
	if !s.allowed(cred) {
		s.log.Warn("refused client: uid/gid not allowed (ipc.allowed_uids, ipc.allowed_gids)", connFields(c)...)
		// Read the client's handshake first: closing a Unix socket with
		// unread data resets the peer, which would then see "connection
		// reset" instead of the reason below.
		_ = nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, _, _ = ReadFrame(nc, make([]byte, HeaderSize))
		c.closeWith(&Error{Code: CodeAccess, Msg: fmt.Sprintf("uid %d gid %d is not allowed by ipc.allowed_uids/allowed_gids", cred.UID, cred.GID)})
		return
	}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		if err := writeLoop(nc, c.out); err != nil {
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
		s.h.Request(c, h, p)
	}
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
