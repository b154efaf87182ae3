package lvs

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"ringmaster/lrmd"
	"ringmaster/lrmd/health"
)

// BackendFactory opens a backend by name. Open returns an error wrapping
// ErrUnavailable when the kernel lacks what the backend needs.
type BackendFactory struct {
	Name string
	Open func() (Backend, error)
}

// Config configures the lvs agent.
type Config struct {
	// Backends in "auto" preference order (ipvs first, then nftables).
	Backends []BackendFactory
	// RunDir holds the state files (RunDir/lvs/). Default DefaultRunDir.
	RunDir string
	// Dial is used by TCP and HTTP health checks. Default: net.Dialer.
	Dial health.DialFunc
	// Persistent says the agent lives in a long-running lrmd: start
	// launches health checking that runs until stop (and monitor restarts
	// it if the lrmd was restarted). Without it (a one-shot `ringctl agent
	// exec`), start does one initial check round only.
	Persistent bool
	// Log receives health transitions and re-applies (may be nil).
	Log func(format string, args ...any)
}

// Agent is builtin:lvs.
//
// Concurrency: Exec may be called concurrently for different services;
// health-check callbacks run concurrently with Exec, so each service's
// runtime state has its own lock.
type Agent struct {
	cfg Config
	md  *lrmd.MetaData

	mu       sync.Mutex
	backends map[string]Backend // opened, by name
	running  map[Key]*svcRun
}

// svcRun is the runtime state of one started service in a persistent agent.
type svcRun struct {
	mu       sync.Mutex
	spec     Spec
	backend  Backend
	health   map[netip.AddrPort]health.State
	reasons  map[netip.AddrPort]string
	since    map[netip.AddrPort]time.Time
	cancel   context.CancelFunc
	done     chan struct{}
	checking bool
}

// New returns the lvs agent.
func New(cfg Config) *Agent {
	if cfg.RunDir == "" {
		cfg.RunDir = DefaultRunDir
	}
	if cfg.Log == nil {
		cfg.Log = func(string, ...any) {}
	}
	return &Agent{cfg: cfg, md: metaData(), backends: make(map[string]Backend), running: make(map[Key]*svcRun)}
}

// Type implements lrmd.Builtin.
func (a *Agent) Type() string { return "lvs" }

// MetaData implements lrmd.Builtin.
func (a *Agent) MetaData() *lrmd.MetaData { return a.md }

// open returns the named backend, opening it once.
func (a *Agent) open(name string) (Backend, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if b := a.backends[name]; b != nil {
		return b, nil
	}
	for _, f := range a.cfg.Backends {
		if f.Name == name {
			b, err := f.Open()
			if err != nil {
				return nil, err
			}
			a.backends[name] = b
			return b, nil
		}
	}
	return nil, fmt.Errorf("%w: no backend %q in this build", ErrUnavailable, name)
}

// choose picks the backend for spec and adapts a defaulted scheduler to
// it. It returns what it did for the operator.
func (a *Agent) choose(spec *Spec) (Backend, string, error) {
	names := []string{spec.Backend}
	if spec.Backend == "auto" {
		names = nil
		for _, f := range a.cfg.Backends {
			names = append(names, f.Name)
		}
	}
	var skipped []string
	for _, n := range names {
		b, err := a.open(n)
		if err != nil {
			if spec.Backend == "auto" && errors.Is(err, ErrUnavailable) {
				skipped = append(skipped, err.Error())
				continue
			}
			return nil, "", err
		}
		note := "backend " + n
		if spec.Backend == "auto" {
			note = "backend auto: chose " + n
			if len(skipped) > 0 {
				note += " (" + strings.Join(skipped, "; ") + ")"
			}
		}
		svc, _ := Desired(*spec, nil)
		if err := b.Check(svc); err != nil && !spec.SchedulerSet && spec.Scheduler == DefaultScheduler {
			// The default wlc needs connection counts; use the closest
			// scheduler the backend can express rather than failing a
			// configuration that never asked for wlc.
			spec.Scheduler = "wrr"
			svc.Scheduler = "wrr"
			if b.Check(svc) == nil {
				note += "; default scheduler wlc is not expressible there, using wrr"
			} else {
				spec.Scheduler = DefaultScheduler
			}
		}
		return b, note, nil
	}
	return nil, "", fmt.Errorf("%w: no LVS backend usable: %s", ErrUnavailable, strings.Join(skipped, "; "))
}

// Exec implements lrmd.Builtin.
func (a *Agent) Exec(ctx context.Context, req lrmd.Request) lrmd.Result {
	var out lrmd.Output
	spec, err := ParseSpec(req.Params)
	if err != nil {
		return out.Result(lrmd.RCErrConfigured, err.Error())
	}
	switch req.Action {
	case lrmd.ActionStart, lrmd.ActionReload:
		return a.start(ctx, spec, &out)
	case lrmd.ActionStop:
		return a.stop(ctx, spec, &out)
	case lrmd.ActionMonitor, lrmd.ActionStatus:
		return a.monitor(ctx, spec, &out)
	case lrmd.ActionValidateAll:
		b, note, err := a.choose(&spec)
		if err != nil {
			return out.Result(errRC(err), err.Error())
		}
		out.Printf("%s", note)
		svc, _ := Desired(spec, nil)
		if err := b.Check(svc); err != nil {
			return out.Result(lrmd.RCErrConfigured, err.Error())
		}
		return out.Result(lrmd.RCOK, "")
	}
	return out.Result(lrmd.RCErrUnimplemented, "lvs has no action "+req.Action)
}

// errRC maps backend errors to OCF codes: a missing kernel feature is a
// hard error on this node (another node may have it), an inexpressible
// configuration is wrong everywhere.
func errRC(err error) lrmd.RC {
	switch {
	case errors.Is(err, ErrUnavailable):
		return lrmd.RCErrInstalled
	case errors.Is(err, ErrUnsupported), errors.Is(err, ErrConfig):
		return lrmd.RCErrConfigured
	}
	return lrmd.RCErrGeneric
}

func (a *Agent) start(ctx context.Context, spec Spec, out *lrmd.Output) lrmd.Result {
	b, note, err := a.choose(&spec)
	if err != nil {
		return out.Result(errRC(err), err.Error())
	}
	out.Printf("%s", note)
	svc, _ := Desired(spec, nil)
	if err := b.Check(svc); err != nil {
		return out.Result(lrmd.RCErrConfigured, err.Error())
	}
	a.stopChecking(spec.Key) // a restart or reload replaces the previous checker

	run := &svcRun{spec: spec, backend: b, health: map[netip.AddrPort]health.State{}, reasons: map[netip.AddrPort]string{}, since: map[netip.AddrPort]time.Time{}}
	var targets []netip.AddrPort
	for _, d := range spec.Real {
		targets = append(targets, d.Addr)
	}
	if checker := spec.Checker(a.cfg.Dial); checker != nil {
		// One round before anything is installed: dead servers must not
		// receive connections even for one check interval.
		now := time.Now()
		for t, err := range health.Round(ctx, checker, targets, spec.Check.Timeout) {
			run.since[t] = now
			if err != nil {
				run.health[t] = health.Down
				run.reasons[t] = err.Error()
				out.Printf("real server %s is down: %v", t, err)
			} else {
				run.health[t] = health.Up
			}
		}
	}
	checking := a.cfg.Persistent && spec.Check.Kind != CheckNone
	run.mu.Lock()
	run.checking = checking
	err = a.applyLocked(ctx, run)
	run.mu.Unlock()
	if err != nil {
		return out.Result(lrmd.RCErrGeneric, err.Error())
	}
	svc, sorry := Desired(spec, run.health)
	out.Printf("%s", strings.TrimRight(Render(svc), "\n"))
	if sorry {
		out.Printf("no real server is healthy: using sorry server %s", spec.Sorry)
	}
	if spec.Method == NAT && spec.Key.Proto != "fwm" && !spec.Masquerade {
		if v, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err == nil && strings.TrimSpace(string(v)) == "0" {
			out.Printf("warning: net.ipv4.ip_forward is 0: NAT forwarding to real servers will not work")
		}
	}
	if spec.Check.Kind != CheckNone {
		if checking {
			a.startChecking(run, false)
			out.Printf("health checks (%s) every %s", spec.Check.Kind, spec.Check.Interval)
		} else {
			out.Printf("one-shot start: checked once; continuous health checks run only inside the lrmd daemon")
		}
	}
	return out.Result(lrmd.RCOK, "")
}

// applyLocked installs the desired service for run's current health and
// rewrites the state file. run.mu must be held.
func (a *Agent) applyLocked(ctx context.Context, run *svcRun) error {
	svc, sorry := Desired(run.spec, run.health)
	if err := run.backend.Apply(ctx, svc); err != nil {
		return fmt.Errorf("apply %s via %s: %w", svc.Key, run.backend.Name(), err)
	}
	st := State{
		Service:   run.spec.Key.String(),
		Backend:   run.backend.Name(),
		Scheduler: svc.Scheduler,
		Method:    string(svc.Method),
		Check:     run.spec.Check.Kind,
		Checking:  run.checking,
		Updated:   time.Now().UTC(),
		PID:       os.Getpid(),
		Interval:  run.spec.Check.Interval,
	}
	for _, d := range run.spec.Real {
		h := health.Unknown
		if run.spec.Check.Kind != CheckNone {
			h = run.health[d.Addr]
		}
		st.RealServers = append(st.RealServers, RealServer{Addr: d.Addr.String(), Weight: d.Weight, Health: h.String(), Reason: run.reasons[d.Addr], Since: run.since[d.Addr]})
	}
	if run.spec.Sorry.IsValid() {
		st.Sorry, st.SorryActive = run.spec.Sorry.String(), sorry
	}
	if err := WriteState(a.cfg.RunDir, run.spec.Key, st); err != nil {
		// The state file only feeds `ringctl lvs list`; the service works.
		a.cfg.Log("lvs %s: write state file: %v", run.spec.Key, err)
	}
	return nil
}

// startChecking launches the health monitor of run; it re-applies the
// service on every health transition until stopChecking. With reapply the
// service is first re-installed for run's recorded health.
func (a *Agent) startChecking(run *svcRun, reapply bool) {
	ctx, cancel := context.WithCancel(context.Background())
	run.cancel, run.done = cancel, make(chan struct{})
	run.mu.Lock()
	run.checking = true
	initial := make(map[netip.AddrPort]health.State, len(run.health))
	for k, v := range run.health {
		initial[k] = v
	}
	var targets []netip.AddrPort
	for _, d := range run.spec.Real {
		targets = append(targets, d.Addr)
	}
	if reapply {
		if err := a.applyLocked(ctx, run); err != nil {
			a.cfg.Log("lvs %s: %v", run.spec.Key, err)
		}
	}
	run.mu.Unlock()
	a.mu.Lock()
	a.running[run.spec.Key] = run
	a.mu.Unlock()
	m := &health.Monitor{
		Checker:  run.spec.Checker(a.cfg.Dial),
		Interval: run.spec.Check.Interval,
		Timeout:  run.spec.Check.Timeout,
		Rise:     run.spec.Check.Rise,
		Fall:     run.spec.Check.Fall,
		OnChange: func(t netip.AddrPort, s health.State, err error) {
			run.mu.Lock()
			defer run.mu.Unlock()
			if ctx.Err() != nil {
				return // stopped meanwhile: never re-install a stopped service
			}
			run.health[t], run.since[t] = s, time.Now()
			run.reasons[t] = ""
			if err != nil {
				run.reasons[t] = err.Error()
			}
			a.cfg.Log("lvs %s: real server %s is %s %v", run.spec.Key, t, s, errOrEmpty(err))
			actx, acancel := context.WithTimeout(ctx, 10*time.Second)
			defer acancel()
			if err := a.applyLocked(actx, run); err != nil {
				a.cfg.Log("lvs %s: %v", run.spec.Key, err)
			}
		},
	}
	go func() {
		defer close(run.done)
		m.Run(ctx, targets, initial)
	}()
}

func errOrEmpty(err error) any {
	if err == nil {
		return ""
	}
	return err
}

// stopChecking stops the health monitor of key, if any, and waits for it.
func (a *Agent) stopChecking(k Key) {
	a.mu.Lock()
	run := a.running[k]
	delete(a.running, k)
	a.mu.Unlock()
	if run != nil {
		run.cancel()
		<-run.done
	}
}

// backendFor finds the backend a started service lives in: the one its
// state file names, else the configured one (for auto: every usable one).
func (a *Agent) backendsFor(spec Spec) []Backend {
	if st, err := ReadState(a.cfg.RunDir, spec.Key); err == nil && st.Backend != "" {
		if b, err := a.open(st.Backend); err == nil {
			return []Backend{b}
		}
	}
	names := []string{spec.Backend}
	if spec.Backend == "auto" {
		names = nil
		for _, f := range a.cfg.Backends {
			names = append(names, f.Name)
		}
	}
	var out []Backend
	for _, n := range names {
		if b, err := a.open(n); err == nil {
			out = append(out, b)
		}
	}
	return out
}

func (a *Agent) stop(ctx context.Context, spec Spec, out *lrmd.Output) lrmd.Result {
	a.stopChecking(spec.Key)
	bs := a.backendsFor(spec)
	if len(bs) == 0 && spec.Backend != "auto" {
		// The backend cannot even be opened here, so nothing of ours can
		// be installed in it: stopped.
		out.Printf("backend %s unavailable; %s cannot be installed", spec.Backend, spec.Key)
	}
	for _, b := range bs {
		if err := b.Remove(ctx, spec.Key); err != nil {
			return out.Result(lrmd.RCErrGeneric, fmt.Sprintf("remove %s via %s: %v", spec.Key, b.Name(), err))
		}
		out.Printf("removed %s (%s)", spec.Key, b.Name())
	}
	if err := RemoveState(a.cfg.RunDir, spec.Key); err != nil {
		out.Printf("warning: %v", err)
	}
	return out.Result(lrmd.RCOK, "")
}

func (a *Agent) monitor(ctx context.Context, spec Spec, out *lrmd.Output) lrmd.Result {
	for _, b := range a.backendsFor(spec) {
		svcs, err := b.List(ctx)
		if err != nil {
			return out.Result(lrmd.RCErrGeneric, fmt.Sprintf("list %s services: %v", b.Name(), err))
		}
		for _, s := range svcs {
			if s.Key != spec.Key {
				continue
			}
			out.Printf("%s", strings.TrimRight(Render(s), "\n"))
			a.mu.Lock()
			_, checking := a.running[spec.Key]
			a.mu.Unlock()
			if a.cfg.Persistent && !checking && spec.Check.Kind != CheckNone {
				// Started by an earlier lrmd (or a one-shot exec):
				// resume health checking from the recorded state.
				run := &svcRun{spec: spec, backend: b, health: map[netip.AddrPort]health.State{}, reasons: map[netip.AddrPort]string{}, since: map[netip.AddrPort]time.Time{}}
				if st, err := ReadState(a.cfg.RunDir, spec.Key); err == nil {
					for _, rs := range st.RealServers {
						if ap, err := netip.ParseAddrPort(rs.Addr); err == nil {
							run.health[ap] = parseHealth(rs.Health)
						}
					}
				}
				a.startChecking(run, true)
				out.Printf("resumed health checks")
			}
			return out.Result(lrmd.RCOK, "")
		}
	}
	return out.Result(lrmd.RCNotRunning, "")
}

func parseHealth(s string) health.State {
	switch s {
	case "up":
		return health.Up
	case "down":
		return health.Down
	}
	return health.Unknown
}

// Health returns the current health of a started service's real servers
// (persistent agents only; nil when not checking).
func (a *Agent) Health(k Key) map[netip.AddrPort]health.State {
	a.mu.Lock()
	run := a.running[k]
	a.mu.Unlock()
	if run == nil {
		return nil
	}
	run.mu.Lock()
	defer run.mu.Unlock()
	out := make(map[netip.AddrPort]health.State, len(run.health))
	for k, v := range run.health {
		out[k] = v
	}
	return out
}

// Close stops all health checking (the services stay installed) and
// closes the backends.
func (a *Agent) Close() error {
	a.mu.Lock()
	var keys []Key
	for k := range a.running {
		keys = append(keys, k)
	}
	a.mu.Unlock()
	for _, k := range keys {
		a.stopChecking(k)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for _, b := range a.backends {
		errs = append(errs, b.Close())
	}
	a.backends = map[string]Backend{}
	return errors.Join(errs...)
}
