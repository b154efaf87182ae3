package stonithd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Executor runs one agent action. Implementations (stonithd/agent) must be
// safe for concurrent use: the Driver runs commands of different devices
// and operations in parallel. Exec must return soon after ctx is done;
// the Driver puts the command's timeout on ctx and waits Command.Delay
// itself before calling.
type Executor interface {
	Exec(ctx context.Context, cmd Command) CommandResult
}

// ExecutorFunc adapts a function to Executor.
type ExecutorFunc func(ctx context.Context, cmd Command) CommandResult

// Exec calls fn.
func (fn ExecutorFunc) Exec(ctx context.Context, cmd Command) CommandResult { return fn(ctx, cmd) }

// ErrClosed is returned by a closed Driver.
var ErrClosed = errors.New("stonithd: driver closed")

// DriverConfig configures a Driver.
type DriverConfig struct {
	Fencer   Config
	Executor Executor
	// Now is the clock (default time.Now).
	Now func() time.Time
	// TickInterval is how often deadlines are checked (default 250ms:
	// the Executor enforces timeouts itself, this is the backstop for
	// an Executor that hangs, so it need not be tight).
	TickInterval time.Duration
	// OnHistory receives entries this node recorded, for the ringd wiring
	// to multicast; peers apply them with MergeHistory. It is called
	// without the Driver's lock held, possibly from several goroutines
	// (entries merge in any order), and before the operation's waiters get
	// their Outcome: the entry is on its way when the controller learns
	// the result.
	OnHistory func([]Entry)
}

// Driver runs a Fencer: it owns the goroutines, the clock and the
// executor. Its methods may be called from any goroutine.
type Driver struct {
	cfg     DriverConfig
	mu      sync.Mutex
	f       *Fencer
	waiters map[OpID][]chan Outcome
	running map[CmdID]context.CancelFunc
	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
	closed  bool
}

// NewDriver starts a driver around a new Fencer.
func NewDriver(cfg DriverConfig) *Driver {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = 250 * time.Millisecond
	}
	ctx, stop := context.WithCancel(context.Background())
	d := &Driver{
		cfg:     cfg,
		f:       New(cfg.Fencer),
		waiters: map[OpID][]chan Outcome{},
		running: map[CmdID]context.CancelFunc{},
		ctx:     ctx,
		stop:    stop,
	}
	d.wg.Add(1)
	go d.ticker()
	return d
}

func (d *Driver) ticker() {
	defer d.wg.Done()
	t := time.NewTicker(d.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
			d.do(func(now time.Time) { d.f.Tick(now) })
		}
	}
}

// do runs fn on the core under the lock, then acts on its Ready.
func (d *Driver) do(fn func(now time.Time)) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	fn(d.cfg.Now())
	d.after(d.handleLocked())
}

// pending is what handleLocked leaves to do once the lock is released.
type pending struct {
	hist    []Entry
	deliver []func()
}

// after unlocks, publishes history, then wakes waiters.
func (d *Driver) after(p pending) {
	d.mu.Unlock()
	if len(p.hist) > 0 && d.cfg.OnHistory != nil {
		d.cfg.OnHistory(p.hist)
	}
	for _, fn := range p.deliver {
		fn()
	}
}

func (d *Driver) handleLocked() pending {
	r := d.f.Ready()
	for _, id := range r.Cancel {
		if cancel, ok := d.running[id]; ok {
			cancel()
			delete(d.running, id)
		}
	}
	for _, c := range r.Commands {
		ctx, cancel := context.WithCancel(d.ctx)
		d.running[c.ID] = cancel
		d.wg.Add(1)
		go d.run(ctx, cancel, c)
	}
	var deliver []func()
	for _, o := range r.Done {
		for _, ch := range d.waiters[o.Op] {
			o, ch := o, ch
			deliver = append(deliver, func() { ch <- o }) // buffered: never blocks
		}
		delete(d.waiters, o.Op)
	}
	return pending{hist: r.History, deliver: deliver}
}

func (d *Driver) run(ctx context.Context, cancel context.CancelFunc, c Command) {
	defer d.wg.Done()
	defer cancel()
	if c.Delay > 0 {
		t := time.NewTimer(c.Delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	tctx, tcancel := context.WithTimeout(ctx, c.Timeout)
	res := d.cfg.Executor.Exec(tctx, c)
	if tctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		res.TimedOut = true
	}
	tcancel()
	if ctx.Err() != nil {
		return // abandoned (cancelled or closed): the core no longer waits
	}
	d.do(func(now time.Time) {
		delete(d.running, c.ID)
		d.f.Result(c.ID, res, now)
	})
}

// Submit starts (or joins) a fencing operation; its Outcome arrives on
// the returned channel (buffered: the caller may stop listening).
func (d *Driver) Submit(req Request) (OpID, <-chan Outcome, error) {
	ch := make(chan Outcome, 1)
	var id OpID
	var err error
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return 0, nil, ErrClosed
	}
	id, err = d.f.Fence(req, d.cfg.Now())
	if err == nil {
		d.waiters[id] = append(d.waiters[id], ch)
	}
	d.after(d.handleLocked())
	return id, ch, err
}

// Fence runs a fencing operation to completion. It returns the outcome
// (whose Err says why fencing failed) or ctx's error; an abandoned wait
// does not cancel the operation (use Cancel).
func (d *Driver) Fence(ctx context.Context, req Request) (Outcome, error) {
	_, ch, err := d.Submit(req)
	if err != nil {
		return Outcome{}, err
	}
	select {
	case o := <-ch:
		return o, o.Err
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
}

// Cancel ends the operations on target (see Fencer.Cancel).
func (d *Driver) Cancel(target, reason string) int {
	n := 0
	d.do(func(now time.Time) { n = d.f.Cancel(target, reason, now) })
	return n
}

// SetDevices replaces the devices.
func (d *Driver) SetDevices(ds []*Device) { d.do(func(time.Time) { d.f.SetDevices(ds) }) }

// SetTopology replaces the topology.
func (d *Driver) SetTopology(t *Topology) { d.do(func(time.Time) { d.f.SetTopology(t) }) }

// Devices returns the devices in the order they are tried.
func (d *Driver) Devices() []*Device {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.f.Devices()
}

// Topology returns the topology.
func (d *Driver) Topology() *Topology {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.f.Topology()
}

// History returns this node's copy of the fence history.
func (d *Driver) History() []Entry {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.f.History()
}

// MergeHistory applies entries received from a peer.
func (d *Driver) MergeHistory(entries []Entry) []Entry {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.f.MergeHistory(entries)
}

// Pending returns the operations in flight.
func (d *Driver) Pending() []Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.f.Pending()
}

// Query runs one agent action on a device outside any fencing operation:
// monitor (the device resource's health check), list, or status of a
// target. It uses the device's timeout for the action.
func (d *Driver) Query(ctx context.Context, device, action, target string) (CommandResult, error) {
	d.mu.Lock()
	dev := d.f.devices[device]
	d.mu.Unlock()
	if dev == nil {
		return CommandResult{}, fmt.Errorf("%w: no device %q", ErrNoDevice, device)
	}
	return RunQuery(ctx, d.cfg.Executor, dev, action, target), nil
}

// RunQuery runs one agent action on dev with its timeout, without a
// Fencer (ringctl uses it directly).
func RunQuery(ctx context.Context, ex Executor, dev *Device, action, target string) CommandResult {
	agentAction := dev.AgentAction(action)
	timeout := dev.Timeout(action)
	c := Command{
		Kind: KindQuery, Device: dev.ID, Agent: dev.Agent, Action: action, AgentAction: agentAction,
		Target: target, Args: dev.AgentArgs(agentAction, target), Timeout: timeout, Attempt: 1,
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := ex.Exec(tctx, c)
	if tctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		res.TimedOut = true
	}
	return res
}

// Close abandons every command and waits for the goroutines; waiting
// Fence calls return ErrClosed.
func (d *Driver) Close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	for op, chs := range d.waiters {
		for _, ch := range chs {
			ch <- Outcome{Op: op, Err: ErrClosed}
		}
	}
	d.waiters = nil
	d.mu.Unlock()
	d.stop()
	d.wg.Wait()
}
