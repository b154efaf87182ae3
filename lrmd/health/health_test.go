package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTrackerRiseFall(t *testing.T) {
	tr := NewTracker(2, 3, Unknown)
	steps := []struct {
		ok      bool
		want    State
		changed bool
	}{
		{false, Down, true}, {true, Down, false}, {true, Up, true}, {false, Up, false}, {false, Up, false},
		{true, Up, false}, {false, Up, false}, {false, Up, false}, {false, Down, true}, {false, Down, false}, {true, Down, false},
	}
	for i, s := range steps {
		if got, ch := tr.Observe(s.ok); got != s.want || ch != s.changed {
			t.Fatalf("step %d (ok=%v): got %v changed=%v, want %v changed=%v", i, s.ok, got, ch, s.want, s.changed)
		}
	}
}

func addrOf(t *testing.T, u string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(strings.TrimPrefix(u, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

func TestHTTPAndTCPChecks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			fmt.Fprint(w, "all systems go")
		case "/teapot":
			w.WriteHeader(http.StatusTeapot)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	target := addrOf(t, srv.URL)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		ch   Checker
		ok   bool
	}{
		{"http ok", HTTP{Path: "/ok"}, true},
		{"http body", HTTP{Path: "ok", Body: "systems go"}, true},
		{"http body missing", HTTP{Path: "/ok", Body: "down"}, false},
		{"http 404", HTTP{Path: "/nope"}, false},
		{"http custom status", HTTP{Path: "/teapot", Status: 418}, true},
		{"tcp", TCP{}, true},
		{"script ok", Script{Command: `[ "$1" = "$RS_IP" ] && [ "$2" = "$RS_PORT" ]`}, true},
		{"script fail", Script{Command: `echo broken >&2; exit 3`}, false},
	} {
		err := c.ch.Check(ctx, target)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrUnhealthy)) {
			t.Errorf("%s: err=%v, want ok=%v", c.name, err, c.ok)
		}
	}
	// A closed port fails the TCP check.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := addrOf(t, l.Addr().String())
	l.Close()
	if err := (TCP{}).Check(ctx, dead); !errors.Is(err, ErrUnhealthy) {
		t.Errorf("tcp to a closed port: %v", err)
	}
	// A script that hangs is killed at the timeout.
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := (Script{Command: "sleep 30"}).Check(cctx, target); !errors.Is(err, ErrUnhealthy) {
		t.Errorf("hanging script: %v", err)
	}
}

// flip is a Checker whose answer the test controls.
type flip struct {
	mu sync.Mutex
	ok map[netip.AddrPort]bool
}

func (f *flip) set(t netip.AddrPort, ok bool) { f.mu.Lock(); f.ok[t] = ok; f.mu.Unlock() }
func (f *flip) Check(_ context.Context, t netip.AddrPort) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ok[t] {
		return nil
	}
	return ErrUnhealthy
}

func TestMonitorReportsChanges(t *testing.T) {
	a, b := netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2")
	f := &flip{ok: map[netip.AddrPort]bool{a: true, b: true}}
	changes := make(chan string, 16)
	m := &Monitor{Checker: f, Interval: 5 * time.Millisecond, Timeout: time.Second, Rise: 2, Fall: 2,
		OnChange: func(t netip.AddrPort, s State, err error) { changes <- t.String() + " " + s.String() }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx, []netip.AddrPort{a, b}, map[netip.AddrPort]State{a: Up, b: Up}); close(done) }()
	f.set(b, false)
	if got := recv(t, changes); got != "127.0.0.1:2 down" {
		t.Fatalf("got %q", got)
	}
	f.set(b, true)
	if got := recv(t, changes); got != "127.0.0.1:2 up" {
		t.Fatalf("got %q", got)
	}
	cancel()
	<-done
	select {
	case c := <-changes:
		t.Fatalf("unexpected change %q (a never changed)", c)
	default:
	}
}

func recv(t *testing.T, c chan string) string {
	t.Helper()
	select {
	case s := <-c:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no change reported within 10s")
	}
	return ""
}
