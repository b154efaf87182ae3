package lvs_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"ringmaster/internal/testutil"
	"ringmaster/lrmd"
	"ringmaster/lrmd/agents/lvs"
	"ringmaster/lrmd/health"
)

func TestParseRealServers(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // Dest strings joined by space, or "error"
	}{
		{"10.0.0.1:80", "10.0.0.1:80:1"},
		{"10.0.0.1:80:3, 10.0.0.2:8080:0", "10.0.0.1:80:3 10.0.0.2:8080:0"},
		{"10.0.0.1", "10.0.0.1:443:1"},
		{"[2001:db8::1]:80:2", "[2001:db8::1]:80:2"},
		{"10.0.0.1:80,10.0.0.1:80", "error"},
		{"10.0.0.1:99999", "error"},
		{"10.0.0.1:80:-1", "error"},
		{"10.0.0.1:80:70000", "error"},
		{"host:80", "error"},
		{"10.0.0.1:80:1:2", "error"},
	} {
		ds, err := lvs.ParseRealServers(c.in, 443)
		if c.want == "error" {
			if !errors.Is(err, lvs.ErrConfig) {
				t.Errorf("%q: got %v, %v; want ErrConfig", c.in, ds, err)
			}
			continue
		}
		var got []string
		for _, d := range ds {
			got = append(got, d.String())
		}
		if err != nil || strings.Join(got, " ") != c.want {
			t.Errorf("%q: got %v, %v; want %s", c.in, got, err, c.want)
		}
	}
}

func params(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestParseSpecValidation(t *testing.T) {
	base := []string{"vip", "10.0.0.100", "port", "80", "realservers", "10.0.1.1:8080,10.0.1.2:8080:2"}
	s, err := lvs.ParseSpec(params(base...))
	if err != nil {
		t.Fatal(err)
	}
	if s.Key.String() != "TCP 10.0.0.100:80" || s.Scheduler != "wlc" || s.SchedulerSet || s.Method != lvs.NAT || s.Check.Kind != "tcp" || s.Check.Rise != 2 || s.Backend != "auto" {
		t.Fatalf("defaults: %+v", s)
	}
	s, err = lvs.ParseSpec(params("fwmark", "7", "realservers", "10.0.1.1", "check", "none", "scheduler", "sh", "check_interval", "2", "sorry_server", "10.0.9.9:80"))
	if err != nil || s.Key.String() != "FWM 7" || !s.SchedulerSet || s.Check.Interval != 2*time.Second || s.Sorry.String() != "10.0.9.9:80" {
		t.Fatalf("fwmark spec: %+v %v", s, err)
	}
	for _, bad := range [][]string{
		{"port", "80", "realservers", "10.0.1.1:1"},                                        // no vip
		{"vip", "10.0.0.1", "realservers", "10.0.1.1:1"},                                   // no port
		{"vip", "10.0.0.1", "port", "80", "fwmark", "3", "realservers", "10.0.1.1:1"},      // both
		{"vip", "10.0.0.1", "port", "80", "realservers", ""},                               // none
		{"vip", "10.0.0.1", "port", "80", "realservers", "10.0.1.1:1", "scheduler", "xx"},  // unknown scheduler
		{"vip", "10.0.0.1", "port", "80", "realservers", "10.0.1.1:1", "method", "gre"},    // unknown method
		{"vip", "10.0.0.1", "port", "80", "realservers", "10.0.1.1:1", "check", "script"},  // no script
		{"vip", "10.0.0.1", "port", "80", "realservers", "10.0.1.1:1", "protocol", "sctp"}, // protocol
		{"fwmark", "3", "realservers", "10.0.1.1"},                                         // port 0 to check
		{"vip", "10.0.0.1", "port", "80", "realservers", "10.0.1.1:1", "rise", "0"},
		{"vip", "10.0.0.1", "port", "80", "realservers", "10.0.1.1:1", "backend", "lvs"},
	} {
		if _, err := lvs.ParseSpec(params(bad...)); !errors.Is(err, lvs.ErrConfig) {
			t.Errorf("%v: got %v, want ErrConfig", bad, err)
		}
	}
}

func TestDesiredHealthQuiesceSorry(t *testing.T) {
	s, err := lvs.ParseSpec(params("vip", "10.0.0.100", "port", "80", "scheduler", "wrr", "realservers", "10.0.1.1:80:3,10.0.1.2:80:1", "sorry_server", "10.0.9.9:80"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := netip.MustParseAddrPort("10.0.1.1:80"), netip.MustParseAddrPort("10.0.1.2:80")
	render := func(h map[netip.AddrPort]health.State) string {
		svc, sorry := lvs.Desired(s, h)
		return fmt.Sprintf("%ssorry=%v", lvs.Render(svc), sorry)
	}
	cases := []struct {
		quiesce bool
		h       map[netip.AddrPort]health.State
		want    string
	}{
		{false, nil, "TCP 10.0.0.100:80 wrr nat\n  -> 10.0.1.1:80 weight 3\n  -> 10.0.1.2:80 weight 1\nsorry=false"},
		{false, map[netip.AddrPort]health.State{a: health.Down, b: health.Up}, "TCP 10.0.0.100:80 wrr nat\n  -> 10.0.1.2:80 weight 1\nsorry=false"},
		{true, map[netip.AddrPort]health.State{a: health.Down, b: health.Up}, "TCP 10.0.0.100:80 wrr nat\n  -> 10.0.1.1:80 weight 0\n  -> 10.0.1.2:80 weight 1\nsorry=false"},
		{false, map[netip.AddrPort]health.State{a: health.Down, b: health.Down}, "TCP 10.0.0.100:80 wrr nat\n  -> 10.0.9.9:80 weight 1\nsorry=true"},
		{true, map[netip.AddrPort]health.State{a: health.Down, b: health.Down}, "TCP 10.0.0.100:80 wrr nat\n  -> 10.0.1.1:80 weight 0\n  -> 10.0.1.2:80 weight 0\n  -> 10.0.9.9:80 weight 1\nsorry=true"},
	}
	for i, c := range cases {
		s.Quiesce = c.quiesce
		if got := render(c.h); got != c.want {
			t.Errorf("case %d:\n%s\nwant\n%s", i, got, c.want)
		}
	}
}

// switchDial is a health.DialFunc whose answer per address the test
// controls: up addresses get an in-memory connection, others a refusal.
type switchDial struct {
	mu   sync.Mutex
	down map[string]bool
}

func (s *switchDial) set(addr string, down bool) { s.mu.Lock(); s.down[addr] = down; s.mu.Unlock() }
func (s *switchDial) dial(_ context.Context, _, addr string) (net.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down[addr] {
		return nil, errors.New("connection refused")
	}
	c1, c2 := net.Pipe()
	c2.Close()
	return c1, nil
}

func newFakeAgent(t *testing.T, persistent bool, fake *lvs.Fake, sd *switchDial) (*lrmd.Manager, string) {
	t.Helper()
	run := t.TempDir()
	ag := lvs.New(lvs.Config{
		Backends:   []lvs.BackendFactory{{Name: "fake", Open: func() (lvs.Backend, error) { return fake, nil }}},
		RunDir:     run,
		Dial:       sd.dial,
		Persistent: persistent,
	})
	reg := lrmd.NewRegistry(lrmd.NewBuiltins(ag))
	m, err := lrmd.NewManager(lrmd.Config{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); reg.Close() })
	return m, run
}

func TestAgentWithFakeBackend(t *testing.T) {
	fake := lvs.NewFake()
	sd := &switchDial{down: map[string]bool{"10.0.1.2:80": true}}
	m, run := newFakeAgent(t, true, fake, sd)
	p := params("vip", "10.0.0.100", "port", "80", "scheduler", "rr", "backend", "auto",
		"realservers", "10.0.1.1:80,10.0.1.2:80", "check_interval", "10ms", "check_timeout", "1s", "rise", "1", "fall", "1")
	exec := func(action string) lrmd.Result {
		return m.Exec(context.Background(), lrmd.Op{Resource: "web", Agent: "builtin:lvs", Action: action, Params: p})
	}
	if r := exec("monitor"); r.RC != lrmd.RCNotRunning {
		t.Fatalf("monitor before start: %s", r.Summary())
	}
	r := exec("start")
	if !r.OK() {
		t.Fatalf("start: %s\n%s", r.Summary(), r.Stdout)
	}
	// The initial round found 10.0.1.2 dead: it is not installed.
	if got, want := fake.Text(), "TCP 10.0.0.100:80 rr nat\n  -> 10.0.1.1:80 weight 1\n"; got != want {
		t.Fatalf("after start:\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(r.Stdout, "backend auto: chose fake") {
		t.Errorf("start output does not say which backend was chosen:\n%s", r.Stdout)
	}
	st, err := lvs.ReadState(run, lvs.Key{Proto: "tcp", VIP: netip.MustParseAddr("10.0.0.100"), Port: 80})
	if err != nil || st.Backend != "fake" || !st.Checking || len(st.RealServers) != 2 || st.RealServers[1].Health != "down" {
		t.Fatalf("state file: %+v %v", st, err)
	}
	// It comes back: the health checker re-adds it.
	sd.set("10.0.1.2:80", false)
	testutil.WaitFor(t, 10*time.Second, "10.0.1.2 to be re-added", func() bool { return strings.Contains(fake.Text(), "10.0.1.2:80") })
	// The other one dies: removed.
	sd.set("10.0.1.1:80", true)
	testutil.WaitFor(t, 10*time.Second, "10.0.1.1 to be removed", func() bool { return !strings.Contains(fake.Text(), "10.0.1.1:80") })
	if r := exec("monitor"); r.RC != lrmd.RCOK {
		t.Fatalf("monitor: %s", r.Summary())
	}
	if r := exec("stop"); !r.OK() {
		t.Fatalf("stop: %s", r.Summary())
	}
	if fake.Text() != "" {
		t.Fatalf("stop left:\n%s", fake.Text())
	}
	// No checker keeps re-applying after stop.
	n := fake.Applies()
	sd.set("10.0.1.1:80", false)
	if r := exec("monitor"); r.RC != lrmd.RCNotRunning {
		t.Fatalf("monitor after stop: %s", r.Summary())
	}
	if fake.Text() != "" || fake.Applies() != n {
		t.Fatalf("service re-applied after stop:\n%s", fake.Text())
	}
	if r := exec("stop"); !r.OK() {
		t.Fatalf("second stop: %s", r.Summary())
	}
}

func TestAgentSchedulerAndBackendErrors(t *testing.T) {
	fake := lvs.NewFake()
	fake.Unsupported = map[string]bool{"wlc": true, "lc": true}
	m, _ := newFakeAgent(t, false, fake, &switchDial{down: map[string]bool{}})
	exec := func(action string, kv ...string) lrmd.Result {
		p := params(append([]string{"vip", "10.0.0.100", "port", "80", "realservers", "10.0.1.1:80", "check", "none"}, kv...)...)
		return m.Exec(context.Background(), lrmd.Op{Resource: "x", Agent: "builtin:lvs", Action: action, Params: p})
	}
	// The defaulted wlc is adapted (and said so); an explicit lc is an error naming it.
	if r := exec("start"); !r.OK() || !strings.Contains(r.Stdout, "using wrr") || !strings.Contains(fake.Text(), " wrr ") {
		t.Fatalf("default scheduler on a backend without wlc: %s\n%s", r.Summary(), r.Stdout)
	}
	if r := exec("validate-all", "scheduler", "lc"); r.RC != lrmd.RCErrConfigured || !strings.Contains(r.Reason, `"lc"`) {
		t.Fatalf("explicit unsupported scheduler: %s", r.Summary())
	}
	if r := exec("start", "backend", "ipvs"); r.RC != lrmd.RCErrInstalled {
		t.Fatalf("backend missing from the build: %s", r.Summary())
	}
	if r := exec("start", "shceduler", "rr"); r.RC != lrmd.RCErrConfigured || !strings.Contains(r.Reason, "shceduler") {
		t.Fatalf("misspelt parameter: %s", r.Summary())
	}
	if r := exec("start", "check_interval", "soon"); r.RC != lrmd.RCErrConfigured {
		t.Fatalf("bad duration: %s", r.Summary())
	}
}
