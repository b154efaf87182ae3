package vsockfence

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"ringmaster/lrmd"
)

// Defaults, each with its reason.
const (
	// DefaultPort is the vsock port of the responder; 1229 is what
	// fence_xvm/fence_virtd use for the same job over multicast/TCP.
	DefaultPort = 1229
	// DefaultHostCID is the hypervisor's vsock context id (VMADDR_CID_HOST).
	DefaultHostCID = 2
	// DefaultMaxSkew bounds the clock difference between guest and host
	// a request may show; guests run NTP or kvm-clock, 30s is generous,
	// and it is also how long nonces are remembered.
	DefaultMaxSkew = 30 * time.Second
	// DefaultExecTimeout bounds the host's power command (virsh destroy
	// + start takes seconds; 60s is the fencer's default action timeout).
	DefaultExecTimeout = 60 * time.Second
	// maxNonces bounds the replay cache: more fresh requests than this
	// within the skew window is a flood, refused rather than remembered.
	maxNonces = 4096
	// connTimeout bounds how long one connection may take to send its
	// request.
	connTimeout = 10 * time.Second
)

// LoadKey reads a shared key file: its bytes, surrounding white space
// trimmed (so `ringctl keygen`-style hex or base64 text works as is).
// At least MinKeySize bytes are required.
func LoadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vsockfence: key file: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < MinKeySize {
		return nil, fmt.Errorf("%w: %s holds %d bytes, need at least %d", ErrKey, path, len(b), MinKeySize)
	}
	return b, nil
}

// NewNonce returns a random nonce.
func NewNonce() ([NonceSize]byte, error) {
	var n [NonceSize]byte
	_, err := rand.Read(n[:])
	return n, err
}

// PowerFunc performs an action on a VM and returns the verdict and a
// message for the guest. It is called concurrently for different
// requests.
type PowerFunc func(ctx context.Context, action Action, vm string) (Status, string)

// Server is the host-side responder.
type Server struct {
	Key []byte
	// Power does the work (CommandPower for `--exec`).
	Power PowerFunc
	// Allow, when set, is matched against the whole VM name: others are
	// denied.
	Allow *regexp.Regexp
	// Now is the clock (default time.Now); MaxSkew the accepted clock
	// difference (default DefaultMaxSkew).
	Now     func() time.Time
	MaxSkew time.Duration
	// Logf receives one line per request (default: discard).
	Logf func(format string, args ...any)

	mu     sync.Mutex
	nonces map[[NonceSize]byte]time.Time
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) skew() time.Duration {
	if s.MaxSkew > 0 {
		return s.MaxSkew
	}
	return DefaultMaxSkew
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// Serve accepts connections until ctx ends or ln fails, handling each in
// its own goroutine. It closes ln when ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if len(s.Key) < MinKeySize {
		return ErrKey
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Handle(ctx, c)
		}()
	}
}

// Handle serves one connection: one request, one response.
func (s *Server) Handle(ctx context.Context, c net.Conn) {
	defer c.Close()
	peer := "?"
	if a := c.RemoteAddr(); a != nil {
		peer = a.String()
	}
	_ = c.SetReadDeadline(s.now().Add(connTimeout))
	body, err := ReadFrame(c)
	if err != nil {
		s.logf("fence-host: %s: %v", peer, err)
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	resp := s.Respond(ctx, body, peer)
	_ = c.SetWriteDeadline(s.now().Add(connTimeout))
	if err := WriteFrame(c, resp); err != nil {
		s.logf("fence-host: %s: write response: %v", peer, err)
	}
}

// Respond decides on one request body and returns the response body.
// Requests that cannot be authenticated get an unauthenticated-looking
// answer only in the sense that the guest cannot verify it: they are
// still MACed with our key, and carry no detail beyond "denied".
func (s *Server) Respond(ctx context.Context, body []byte, peer string) []byte {
	req, err := DecodeRequest(s.Key, body)
	var resp Response
	switch {
	case errors.Is(err, ErrMAC):
		s.logf("fence-host: %s: denied: bad MAC (wrong key?)", peer)
		resp = Response{Status: StatusDenied, Message: "denied"}
	case err != nil:
		s.logf("fence-host: %s: bad request: %v", peer, err)
		resp = Response{Status: StatusBadRequest, Message: "bad request"}
	default:
		resp = s.decide(ctx, req, peer)
	}
	resp.Nonce = req.Nonce
	out, err := EncodeResponse(s.Key, resp)
	if err != nil {
		return nil
	}
	return out
}

func (s *Server) decide(ctx context.Context, req Request, peer string) Response {
	now := s.now()
	t := time.UnixMilli(req.TimeMS)
	if d := now.Sub(t); d > s.skew() || d < -s.skew() {
		s.logf("fence-host: %s: denied %s of %q from %q: stale request (clock off by %v)", peer, req.Action, req.VM, req.Requester, d.Round(time.Millisecond))
		return Response{Status: StatusDenied, Message: "stale request (check the clocks)"}
	}
	if !s.remember(req.Nonce, now) {
		s.logf("fence-host: %s: denied %s of %q from %q: replayed", peer, req.Action, req.VM, req.Requester)
		return Response{Status: StatusDenied, Message: "replayed request"}
	}
	if req.Action == ActionMonitor {
		return Response{Status: StatusOK, Message: "ok"}
	}
	if !ValidVMName(req.VM) {
		return Response{Status: StatusBadRequest, Message: "invalid vm name"}
	}
	if s.Allow != nil && !s.Allow.MatchString(req.VM) {
		s.logf("fence-host: %s: denied %s of %q from %q: not allowed", peer, req.Action, req.VM, req.Requester)
		return Response{Status: StatusDenied, Message: "vm not allowed"}
	}
	if s.Power == nil {
		return Response{Status: StatusUnsupported, Message: "no power command"}
	}
	st, msg := s.Power(ctx, req.Action, req.VM)
	s.logf("fence-host: %s: %s of %q for %q: %s %s", peer, req.Action, req.VM, req.Requester, st, msg)
	return Response{Status: st, Message: msg}
}

// remember records a nonce; false if it was seen within the skew window
// (or the cache is full of fresh nonces).
func (s *Server) remember(n [NonceSize]byte, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nonces == nil {
		s.nonces = map[[NonceSize]byte]time.Time{}
	}
	if _, seen := s.nonces[n]; seen {
		return false
	}
	if len(s.nonces) >= maxNonces {
		for k, t := range s.nonces {
			if now.Sub(t) > 2*s.skew() {
				delete(s.nonces, k)
			}
		}
		if len(s.nonces) >= maxNonces {
			return false
		}
	}
	s.nonces[n] = now
	return true
}

// Template is a host command line with placeholders: {vm} (the VM name)
// and {action} (reboot, off, on, status). It is split into words and
// run without a shell, so a VM name can never become shell syntax.
type Template struct {
	Words  []string
	Env    []string
	Limit  time.Duration // DefaultExecTimeout when 0
	Action bool          // whether {action} occurs
}

// ParseTemplate parses an --exec value. It must contain {vm}.
func ParseTemplate(s string) (*Template, error) {
	w := strings.Fields(s)
	if len(w) == 0 {
		return nil, errors.New("vsockfence: empty --exec command")
	}
	if !strings.Contains(s, "{vm}") {
		return nil, errors.New("vsockfence: --exec command has no {vm} placeholder")
	}
	return &Template{Words: w, Action: strings.Contains(s, "{action}"), Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}, nil
}

// Argv renders the command for one request.
func (t *Template) Argv(action Action, vm string) []string {
	out := make([]string, len(t.Words))
	for i, w := range t.Words {
		w = strings.ReplaceAll(w, "{vm}", vm)
		out[i] = strings.ReplaceAll(w, "{action}", action.String())
	}
	return out
}

// Power runs the command. Without {action} the command only knows how
// to power-cycle, so only reboot is accepted. For status, exit 0 means on
// and 2 off (the fence-agent convention).
func (t *Template) Power(ctx context.Context, action Action, vm string) (Status, string) {
	if !t.Action && action != ActionReboot {
		return StatusUnsupported, "the host command only power-cycles (no {action} placeholder)"
	}
	limit := t.Limit
	if limit <= 0 {
		limit = DefaultExecTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	argv := t.Argv(action, vm)
	res := lrmd.RunProcess(ctx, lrmd.ProcSpec{Path: argv[0], Args: argv[1:], Env: t.Env, MaxOutput: MaxMessage})
	out := strings.TrimSpace(string(res.Stderr))
	if out == "" {
		out = strings.TrimSpace(string(res.Stdout))
	}
	switch {
	case res.Err != nil:
		return StatusFailed, res.Err.Error()
	case res.ExitCode == 0:
		return StatusOK, out
	case action == ActionStatus && res.ExitCode == 2:
		return StatusOff, out
	}
	return StatusFailed, fmt.Sprintf("exit %d: %s", res.ExitCode, out)
}
