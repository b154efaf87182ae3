// Package health checks LVS real servers (keepalived's and ldirectord's
// TCP_CHECK, HTTP_GET and MISC_CHECK): a Checker probes one server once, a
// Tracker turns a run of results into an up/down state with rise/fall
// hysteresis, and a Monitor runs checks for a set of servers periodically
// and reports state changes.
package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"ringmaster/lrmd"
)

// ErrUnhealthy wraps every check failure.
var ErrUnhealthy = errors.New("unhealthy")

// DialFunc opens a connection (net.Dialer.DialContext by default). Tests
// and namespaced directors pass one that dials from the right network
// namespace.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

func defaultDial(d DialFunc) DialFunc {
	if d != nil {
		return d
	}
	return (&net.Dialer{}).DialContext
}

// Checker probes one real server once. Check must return when ctx is
// done (the Monitor puts the check timeout on it) and must be safe for
// concurrent use.
type Checker interface {
	Check(ctx context.Context, target netip.AddrPort) error
}

// TCP succeeds when a TCP connection to the target can be established.
type TCP struct{ Dial DialFunc }

// Check implements Checker.
func (c TCP) Check(ctx context.Context, target netip.AddrPort) error {
	conn, err := defaultDial(c.Dial)(ctx, "tcp", target.String())
	if err != nil {
		return fmt.Errorf("%w: tcp connect %s: %v", ErrUnhealthy, target, err)
	}
	return conn.Close()
}

// maxBody bounds how much of a response body HTTP reads for Body.
const maxBody = 64 << 10

// HTTP succeeds when GET http://target/Path answers with Status (default
// 200) and, if Body is set, the first 64 KiB of the body contain it.
type HTTP struct {
	Dial   DialFunc
	Path   string
	Status int
	Body   string
	// Host overrides the Host header (virtual hosting); default: target.
	Host string
}

// Check implements Checker.
func (c HTTP) Check(ctx context.Context, target netip.AddrPort) error {
	path := c.Path
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	want := c.Status
	if want == 0 {
		want = http.StatusOK
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+target.String()+path, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnhealthy, err)
	}
	if c.Host != "" {
		req.Host = c.Host
	}
	req.Header.Set("User-Agent", "ringmaster-health")
	// A fresh transport per check: no pooled connection may hide a dead
	// server, and nothing lingers between checks.
	tr := &http.Transport{DialContext: defaultDial(c.Dial), DisableKeepAlives: true, Proxy: nil}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		return fmt.Errorf("%w: GET %s: %v", ErrUnhealthy, req.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("%w: GET %s: status %d, want %d", ErrUnhealthy, req.URL, resp.StatusCode, want)
	}
	if c.Body != "" {
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		if err != nil {
			return fmt.Errorf("%w: GET %s: read body: %v", ErrUnhealthy, req.URL, err)
		}
		if !strings.Contains(string(b), c.Body) {
			return fmt.Errorf("%w: GET %s: body lacks %q", ErrUnhealthy, req.URL, c.Body)
		}
	}
	return nil
}

// Script runs a shell command (keepalived's MISC_CHECK): exit 0 is
// healthy. It runs as `sh -c COMMAND sh RS_IP RS_PORT`, with RS_IP,
// RS_PORT and Env in the environment, in its own process group, killed
// with it on timeout.
type Script struct {
	Command string
	Env     []string
}

// Check implements Checker.
func (c Script) Check(ctx context.Context, target netip.AddrPort) error {
	ip, port := target.Addr().String(), strconv.Itoa(int(target.Port()))
	env := append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "RS_IP=" + ip, "RS_PORT=" + port}, c.Env...)
	res := lrmd.RunProcess(ctx, lrmd.ProcSpec{Path: "/bin/sh", Args: []string{"-c", c.Command, "sh", ip, port}, Env: env, Dir: "/", MaxOutput: 4096})
	switch {
	case res.Err != nil:
		return fmt.Errorf("%w: check script: %v", ErrUnhealthy, res.Err)
	case res.ExitCode != 0:
		msg := strings.TrimSpace(string(res.Stderr) + string(res.Stdout))
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return fmt.Errorf("%w: check script exited %d: %s", ErrUnhealthy, res.ExitCode, msg)
	}
	return nil
}

// State is a real server's health.
type State int

// Health states.
const (
	Unknown State = iota // not checked yet (or checks disabled)
	Up
	Down
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "unknown"
}

// Tracker applies rise/fall hysteresis: a server goes up after Rise
// consecutive successes and down after Fall consecutive failures, so one
// lost packet does not flap the service. It is a pure state machine (no
// clock) and not safe for concurrent use.
//
//	state \ result | ok                          | fail
//	---------------+-----------------------------+------------------------------
//	Unknown        | Up                          | Down
//	Up             | Up (reset fail run)         | Down after Fall in a row
//	Down           | Up after Rise in a row      | Down (reset ok run)
type Tracker struct {
	rise, fall    int
	state         State
	okRun, badRun int
}

// NewTracker returns a Tracker in state initial; rise and fall below 1
// count as 1.
func NewTracker(rise, fall int, initial State) *Tracker {
	return &Tracker{rise: max(rise, 1), fall: max(fall, 1), state: initial}
}

// State returns the current state.
func (t *Tracker) State() State { return t.state }

// Observe feeds one check result and returns the new state and whether it
// changed.
func (t *Tracker) Observe(ok bool) (State, bool) {
	old := t.state
	if ok {
		t.okRun++
		t.badRun = 0
		if t.state == Unknown || (t.state == Down && t.okRun >= t.rise) {
			t.state = Up
		}
	} else {
		t.badRun++
		t.okRun = 0
		if t.state == Unknown || (t.state == Up && t.badRun >= t.fall) {
			t.state = Down
		}
	}
	return t.state, t.state != old
}

// Round checks every target once, concurrently, each bounded by timeout,
// and returns the errors (nil for healthy targets).
func Round(ctx context.Context, c Checker, targets []netip.AddrPort, timeout time.Duration) map[netip.AddrPort]error {
	out := make(map[netip.AddrPort]error, len(targets))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			err := c.Check(cctx, t)
			mu.Lock()
			out[t] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// Monitor checks a fixed set of targets every Interval and reports state
// changes through OnChange. OnChange is never called concurrently (calls
// are serialised by the Monitor) and should return promptly; it receives
// the check error that caused a change to Down.
type Monitor struct {
	Checker  Checker
	Interval time.Duration
	Timeout  time.Duration
	Rise     int
	Fall     int
	OnChange func(target netip.AddrPort, s State, err error)
}

// Run checks until ctx is done. initial gives each target's starting
// state (e.g. from an initial Round); targets missing from it start
// Unknown, so their first result decides.
func (m *Monitor) Run(ctx context.Context, targets []netip.AddrPort, initial map[netip.AddrPort]State) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := NewTracker(m.Rise, m.Fall, initial[t])
			tick := time.NewTicker(m.Interval)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				cctx, cancel := context.WithTimeout(ctx, m.Timeout)
				err := m.Checker.Check(cctx, t)
				cancel()
				if ctx.Err() != nil {
					return
				}
				if s, changed := tr.Observe(err == nil); changed && m.OnChange != nil {
					mu.Lock()
					m.OnChange(t, s, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
}
