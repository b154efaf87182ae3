package vsockfence

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"
)

var (
	key      = []byte("0123456789abcdef0123456789abcdef")
	otherKey = []byte("fedcba9876543210fedcba9876543210")
	tNow     = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
)

func sampleRequest() Request {
	return Request{Action: ActionReboot, Nonce: [NonceSize]byte{1, 2, 3}, TimeMS: tNow.UnixMilli(), Requester: "node1", VM: "vm-node2"}
}

func TestRequestRoundTripAndTamper(t *testing.T) {
	r := sampleRequest()
	b, err := EncodeRequest(key, r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRequest(key, b)
	if err != nil || got != r {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if _, err := DecodeRequest(otherKey, b); !errors.Is(err, ErrMAC) {
		t.Errorf("other key: %v, want ErrMAC", err)
	}
	// Every single-byte change is rejected (MAC, structure or version).
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x40
		if _, err := DecodeRequest(key, c); err == nil {
			t.Errorf("byte %d flipped: accepted", i)
		}
	}
	for n := 0; n < len(b); n++ {
		if _, err := DecodeRequest(key, b[:n]); err == nil {
			t.Errorf("truncated to %d bytes: accepted", n)
		}
	}
	v2 := append([]byte(nil), b...)
	v2[4] = 2
	if _, err := DecodeRequest(key, v2); !errors.Is(err, ErrVersion) {
		t.Errorf("version 2: %v", err)
	}
	if _, err := EncodeRequest([]byte("short"), r); !errors.Is(err, ErrKey) {
		t.Errorf("short key: %v", err)
	}
}

func TestResponseRoundTrip(t *testing.T) {
	r := Response{Status: StatusOff, Nonce: [NonceSize]byte{9}, Message: "vm is off"}
	b, err := EncodeResponse(key, r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeResponse(key, b)
	if err != nil || got != r {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if _, err := DecodeRequest(key, b); err == nil {
		t.Error("a response decoded as a request")
	}
	if _, err := DecodeResponse(otherKey, b); !errors.Is(err, ErrMAC) {
		t.Errorf("other key: %v", err)
	}
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFrame(&buf)
	if err != nil || string(got) != "abc" {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0xff, 0xff})); !errors.Is(err, ErrMalformed) {
		t.Errorf("oversized frame: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 5, 1})); !errors.Is(err, ErrMalformed) {
		t.Errorf("short frame: %v", err)
	}
}

type powerLog struct {
	mu    sync.Mutex
	calls []string
}

func (p *powerLog) power(ctx context.Context, a Action, vm string) (Status, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, a.String()+" "+vm)
	if a == ActionStatus {
		return StatusOff, "shut off"
	}
	return StatusOK, "done"
}

func TestServerDecisions(t *testing.T) {
	now := tNow
	pl := &powerLog{}
	s := &Server{Key: key, Power: pl.power, Allow: regexp.MustCompile(`^vm-.*$`), Now: func() time.Time { return now }}
	ask := func(k []byte, r Request) Response {
		t.Helper()
		b, err := EncodeRequest(k, r)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := DecodeResponse(key, s.Respond(context.Background(), b, "test"))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(k, key) && resp.Nonce != r.Nonce {
			t.Fatalf("response nonce %x, request %x", resp.Nonce, r.Nonce)
		}
		return resp
	}
	r := sampleRequest()
	if got := ask(key, r); got.Status != StatusOK {
		t.Errorf("first request: %+v", got)
	}
	if got := ask(key, r); got.Status != StatusDenied {
		t.Errorf("replay: %+v", got)
	}
	r.Nonce[0] = 7
	if got := ask(otherKey, r); got.Status != StatusDenied {
		t.Errorf("wrong key: %+v", got)
	}
	r.Nonce[0] = 8
	r.TimeMS = now.Add(-time.Minute).UnixMilli()
	if got := ask(key, r); got.Status != StatusDenied {
		t.Errorf("stale: %+v", got)
	}
	r.Nonce[0], r.TimeMS = 9, now.UnixMilli()
	r.VM = "db-1"
	if got := ask(key, r); got.Status != StatusDenied {
		t.Errorf("not allowed: %+v", got)
	}
	r.Nonce[0], r.VM = 10, "vm-$(reboot)"
	if got := ask(key, r); got.Status != StatusBadRequest {
		t.Errorf("bad name: %+v", got)
	}
	r.Nonce[0], r.VM, r.Action = 11, "vm-node3", ActionStatus
	if got := ask(key, r); got.Status != StatusOff {
		t.Errorf("status: %+v", got)
	}
	r.Nonce[0], r.Action, r.VM = 12, ActionMonitor, ""
	if got := ask(key, r); got.Status != StatusOK {
		t.Errorf("monitor: %+v", got)
	}
	if want := []string{"reboot vm-node2", "status vm-node3"}; len(pl.calls) != 2 || pl.calls[0] != want[0] || pl.calls[1] != want[1] {
		t.Errorf("power calls %v, want %v", pl.calls, want)
	}
	if got, _ := DecodeResponse(key, s.Respond(context.Background(), []byte("garbage"), "test")); got.Status != StatusBadRequest {
		t.Errorf("garbage: %+v", got)
	}
}

// TestClientServerOverUnixSocket runs the protocol over the stand-in
// transport: a Unix socket instead of AF_VSOCK.
func TestClientServerOverUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fence.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	pl := &powerLog{}
	s := &Server{Key: key, Power: pl.power}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	c := &Client{Key: key, Requester: "node1", Dial: UnixDialer(path)}
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	resp, err := c.Do(cctx, ActionReboot, "vm-node2")
	if err != nil || resp.Status != StatusOK || resp.Err() != nil {
		t.Fatalf("reboot: %+v %v", resp, err)
	}
	bad := &Client{Key: otherKey, Requester: "intruder", Dial: UnixDialer(path)}
	if _, err := bad.Do(cctx, ActionReboot, "vm-node2"); !errors.Is(err, ErrMAC) {
		// The host answers under its own key, which the intruder cannot
		// verify: it learns nothing, and nothing was done.
		t.Errorf("wrong key: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if len(pl.calls) != 1 {
		t.Errorf("calls %v", pl.calls)
	}
}

// TestClientOverPipe: net.Pipe stand-in; the client rejects a response to
// another request (wrong nonce).
func TestClientOverPipe(t *testing.T) {
	a, b := net.Pipe()
	go func() {
		defer b.Close()
		body, err := ReadFrame(b)
		if err != nil {
			return
		}
		req, _ := DecodeRequest(key, body)
		req.Nonce[0] ^= 1
		out, _ := EncodeResponse(key, Response{Status: StatusOK, Nonce: req.Nonce})
		_ = WriteFrame(b, out)
	}()
	c := &Client{Key: key, Dial: func(context.Context) (net.Conn, error) { return a, nil }}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Do(ctx, ActionOff, "vm1"); !errors.Is(err, ErrBadResponse) {
		t.Errorf("mismatched nonce: %v", err)
	}
}

func TestTemplate(t *testing.T) {
	if _, err := ParseTemplate("virsh reset"); err == nil {
		t.Error("template without {vm} accepted")
	}
	tp, err := ParseTemplate("virsh reset {vm}")
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := tp.Power(context.Background(), ActionOff, "vm1"); st != StatusUnsupported {
		t.Errorf("off without {action}: %v", st)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	tp, err = ParseTemplate("/bin/sh -c SCRIPT {action} {vm}")
	if err != nil || !tp.Action {
		t.Fatal(err)
	}
	// The script has blanks, which the --exec syntax splits on.
	tp.Words = []string{"/bin/sh", "-c", `echo "$0 $1" >>` + out + `; [ "$0" != status ] || exit 2`, "{action}", "{vm}"}
	if st, msg := tp.Power(context.Background(), ActionOff, "vm1"); st != StatusOK {
		t.Errorf("off: %v %s", st, msg)
	}
	if st, _ := tp.Power(context.Background(), ActionStatus, "vm1"); st != StatusOff {
		t.Errorf("status exit 2: %v", st)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	b, _ := EncodeRequest(key, sampleRequest())
	f.Add(b)
	f.Add([]byte("RMFV\x01\x01\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRequest(key, b)
		if err != nil {
			return
		}
		again, err := EncodeRequest(key, r)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, re-encodes to %x (%v)", b, again, err)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	b, _ := EncodeResponse(key, Response{Status: StatusOK, Message: "ok"})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeResponse(key, b)
		if err != nil {
			return
		}
		again, err := EncodeResponse(key, r)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, re-encodes to %x (%v)", b, again, err)
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 3, 'a', 'b', 'c'})
	f.Fuzz(func(t *testing.T, b []byte) {
		body, err := ReadFrame(bytes.NewReader(b))
		if err == nil && len(body) > MaxFrame {
			t.Fatalf("frame of %d bytes", len(body))
		}
	})
}
