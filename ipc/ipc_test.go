package ipc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/internal/testutil"
)

// echo is a Handler: message 1 echoes, 2 answers an error, 3 pushes N
// events (N = first payload byte) then replies.
type echo struct {
	mu     sync.Mutex
	closed int
	conns  []*Conn
}

func (e *echo) Request(c *Conn, h Header, p []byte) {
	switch h.Msg {
	case 1:
		_ = c.Reply(h, p)
	case 2:
		_ = c.ReplyError(h, fmt.Errorf("busy: %w", ErrTryAgain))
	case 3:
		for i := 0; i < int(p[0]); i++ {
			_ = c.Event(h.Service, 9, []byte{byte(i)})
		}
		_ = c.Reply(h, nil)
	case 4:
		e.mu.Lock()
		e.conns = append(e.conns, c)
		e.mu.Unlock()
		_ = c.Reply(h, nil)
	default:
		_ = c.ReplyError(h, Errorf(CodeUnknownMessage, "message %d", h.Msg))
	}
}

func (e *echo) Closed(*Conn) {
	e.mu.Lock()
	e.closed++
	e.mu.Unlock()
}

func (e *echo) closedCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

func startServer(t *testing.T, h Handler, opt Options) *Server {
	t.Helper()
	dir := t.TempDir()
	s, err := Listen(filepath.Join(dir, "ringd.sock"), h, opt)
	require.NoError(t, err)
	go func() { _ = s.Serve() }()
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func dial(t *testing.T, s *Server) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, s.Path())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRoundTripAndPipelining(t *testing.T) {
	s := startServer(t, &echo{}, Options{Hello: func() []byte { return []byte("hi") }})
	c := dial(t, s)
	assert.Equal(t, []byte("hi"), c.Hello)
	ctx := context.Background()

	// Many requests in flight from many goroutines, each gets its own answer.
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				want := fmt.Appendf(nil, "%d-%d", g, i)
				got, err := c.Call(ctx, 5, 1, want)
				if !assert.NoError(t, err) || !assert.Equal(t, want, got) {
					return
				}
			}
		}()
	}
	wg.Wait()

	big := bytes.Repeat([]byte{7}, 1<<20)
	got, err := c.Call(ctx, 5, 1, big)
	require.NoError(t, err)
	assert.Equal(t, big, got)
}

func TestErrorReplies(t *testing.T) {
	s := startServer(t, &echo{}, Options{})
	c := dial(t, s)
	_, err := c.Call(context.Background(), 5, 2, nil)
	assert.ErrorIs(t, err, ErrTryAgain)
	_, err = c.Call(context.Background(), 5, 77, nil)
	assert.ErrorIs(t, err, ErrUnknown)
	assert.Contains(t, err.Error(), "message 77")
	// The connection is still usable after error replies.
	got, err := c.Call(context.Background(), 5, 1, []byte("x"))
	require.NoError(t, err)
	assert.Equal(t, []byte("x"), got)
}

func TestEventsInOrder(t *testing.T) {
	s := startServer(t, &echo{}, Options{})
	c := dial(t, s)
	_, err := c.Call(context.Background(), 5, 3, []byte{100})
	require.NoError(t, err)
	for i := 0; i < 100; i++ {
		ev := <-c.Events()
		require.Equal(t, []byte{byte(i)}, ev.Payload)
	}
}

// A malformed frame gets an error frame, the connection is closed, and the
// server keeps serving others.
func TestBadFrameClosesOnlyThatClient(t *testing.T) {
	h := &echo{}
	s := startServer(t, h, Options{})
	good := dial(t, s)

	raw, err := net.Dial("unix", s.Path())
	require.NoError(t, err)
	defer raw.Close()
	bad := AppendHeader(nil, Header{Kind: KindRequest, Service: 1, Msg: 1, Length: 4})
	bad[0] = 99 // unknown version
	_, err = raw.Write(append(bad, 1, 2, 3, 4))
	require.NoError(t, err)
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, HeaderSize)
	fh, p, err := ReadFrame(raw, hdr)
	require.NoError(t, err)
	assert.Equal(t, KindError, fh.Kind)
	assert.Equal(t, CodeBadFrame, decodeError(p).Code)
	_, _, err = ReadFrame(raw, hdr)
	assert.ErrorIs(t, err, io.EOF, "the server closes the connection")

	// Oversized frame: refused before reading the payload.
	raw2, err := net.Dial("unix", s.Path())
	require.NoError(t, err)
	defer raw2.Close()
	_, err = raw2.Write(AppendHeader(nil, Header{Kind: KindRequest, Length: MaxPayload + 1}))
	require.NoError(t, err)
	_ = raw2.SetReadDeadline(time.Now().Add(5 * time.Second))
	fh, p, err = ReadFrame(raw2, hdr)
	require.NoError(t, err)
	assert.Equal(t, KindError, fh.Kind)
	assert.Contains(t, decodeError(p).Msg, "too large")

	got, err := good.Call(context.Background(), 5, 1, []byte("still here"))
	require.NoError(t, err)
	assert.Equal(t, []byte("still here"), got)
	testutil.WaitFor(t, 5*time.Second, "Closed called for both bad clients", func() bool { return h.closedCount() >= 2 })
}

// A client that never reads its events is cut off once its queue passes
// the budget; a well-behaved client on the same server is unaffected.
func TestSlowClientCutOff(t *testing.T) {
	h := &echo{}
	s := startServer(t, h, Options{MaxPending: 256 << 10})
	slow, err := net.Dial("unix", s.Path())
	require.NoError(t, err)
	defer slow.Close()
	_, err = slow.Write(AppendFrame(nil, Header{Kind: KindRequest, Msg: MsgHello, ReqID: 1}, nil))
	require.NoError(t, err)
	_, err = slow.Write(AppendFrame(nil, Header{Kind: KindRequest, Service: 5, Msg: 4, ReqID: 2}, nil))
	require.NoError(t, err)
	testutil.WaitFor(t, 5*time.Second, "slow client registered", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.conns) == 1
	})
	h.mu.Lock()
	sc := h.conns[0]
	h.mu.Unlock()
	payload := make([]byte, 64<<10)
	var cut error
	for i := 0; i < 10000 && cut == nil; i++ {
		cut = sc.Event(5, 9, payload)
	}
	assert.ErrorIs(t, cut, ErrSlowClient)
	select {
	case <-sc.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("slow connection was not closed")
	}
	c := dial(t, s)
	_, err = c.Call(context.Background(), 5, 1, []byte("ok"))
	require.NoError(t, err)
}

func TestDialNoDaemon(t *testing.T) {
	_, err := Dial(context.Background(), filepath.Join(t.TempDir(), "none.sock"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connect to ringd")
}

func TestStaleSocketReplaced(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", p)
	require.NoError(t, err)
	// Simulate a dead daemon: close the listener without removing the file.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	s, err := Listen(p, &echo{}, Options{})
	require.NoError(t, err)
	go func() { _ = s.Serve() }()
	defer s.Close()
	// A second daemon on the same live socket is refused.
	_, err = Listen(p, &echo{}, Options{})
	assert.ErrorContains(t, err, "in use")
}

// TestPeerCredentials runs a client as uid/gid 65534 (nobody) in a child
// process: refused by default, served once its uid (or gid) is allowed.
func TestPeerCredentials(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	self, err := os.Executable()
	require.NoError(t, err)
	exe := filepath.Join(dir, "ipc.test")
	data, err := os.ReadFile(self)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(exe, data, 0o755))

	s, err := Listen(filepath.Join(dir, "ringd.sock"), &echo{}, Options{})
	require.NoError(t, err)
	go func() { _ = s.Serve() }()
	defer s.Close()

	asNobody := func() (string, error) {
		cmd := exec.Command(exe, "-test.run=^TestHelperDial$")
		cmd.Env = append(os.Environ(), "RINGMASTER_IPC_HELPER="+s.Path())
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := asNobody()
	require.NoError(t, err, out)
	assert.Contains(t, out, "REFUSED access denied: uid 65534 gid 65534 is not allowed")

	s.SetAllowed([]int{65534}, nil)
	out, err = asNobody()
	require.NoError(t, err, out)
	assert.Contains(t, out, "SERVED")

	s.SetAllowed(nil, []int{65534})
	out, err = asNobody()
	require.NoError(t, err, out)
	assert.Contains(t, out, "SERVED")
}

// TestHelperDial is the child side of TestPeerCredentials.
func TestHelperDial(t *testing.T) {
	path := os.Getenv("RINGMASTER_IPC_HELPER")
	if path == "" {
		t.Skip("helper process only")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, path)
	switch {
	case errors.Is(err, ErrAccess):
		fmt.Println("REFUSED", err)
	case err != nil:
		fmt.Println("ERROR", err)
	default:
		if _, err := c.Call(ctx, 5, 1, []byte("x")); err != nil {
			fmt.Println("ERROR", err)
		} else {
			fmt.Println("SERVED")
		}
		c.Close()
	}
}

func FuzzDecodeHeader(f *testing.F) {
	f.Add(AppendHeader(nil, Header{Kind: KindRequest, Service: 1, Msg: 2, ReqID: 3, Length: 4}))
	f.Add([]byte{1, 9, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHeader(b)
		if err != nil {
			return
		}
		if h.Length > MaxPayload || h.Kind < KindRequest || h.Kind > KindError {
			t.Fatalf("accepted an invalid header %+v", h)
		}
		if re := AppendHeader(nil, h); !bytes.Equal(re, b[:HeaderSize]) {
			t.Fatalf("header does not round-trip: %x vs %x", re, b[:HeaderSize])
		}
	})
}

// FuzzReadFrame feeds arbitrary byte streams to the frame reader: it must
// return frames or errors, never panic or over-allocate.
func FuzzReadFrame(f *testing.F) {
	f.Add(AppendFrame(nil, Header{Kind: KindRequest, Service: 1, Msg: 1, ReqID: 1}, []byte("hello")))
	f.Add(AppendFrame(AppendFrame(nil, Header{Kind: KindEvent}, nil), Header{Kind: KindError}, []byte{0, 2, 'x'}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		hdr := make([]byte, HeaderSize)
		for {
			h, p, err := ReadFrame(r, hdr)
			if err != nil {
				return
			}
			if int(h.Length) != len(p) {
				t.Fatalf("payload length %d != header %d", len(p), h.Length)
			}
			if h.Kind == KindError {
				_ = decodeError(p)
			}
		}
	})
}

// An error wrapped around a sentinel keeps its code and is not prefixed
// twice ("not found: not found: ...") on the client.
func TestToErrorOnePrefix(t *testing.T) {
	e := ToError(fmt.Errorf("%w: no device can fence n3", ErrNotFound))
	assert.Equal(t, CodeNotFound, e.Code)
	assert.Equal(t, "not found: no device can fence n3", e.Error())
	assert.ErrorIs(t, e, ErrNotFound)
	assert.Equal(t, CodeInternal, ToError(errors.New("boom")).Code)
}
