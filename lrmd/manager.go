package lrmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"
)

// DefaultTimeout is the operation timeout when an Op sets none: pacemaker's
// default op timeout, so agents written for pacemaker behave the same.
const DefaultTimeout = 20 * time.Second

// Config configures a Manager.
type Config struct {
	// Registry resolves agent classes. Required.
	Registry *Registry
	// Node is this node's name, recorded in fail counts and events.
	// Default: the host name (pacemaker's default node name).
	Node string
	// DefaultTimeout applies to ops with Timeout 0. Default: DefaultTimeout.
	DefaultTimeout time.Duration
	// MetaDataTimeout bounds fetching an agent's meta-data for parameter
	// validation. Default: 5s, the timeout agents advertise for meta-data.
	MetaDataTimeout time.Duration
}

// Op is one operation on one resource.
type Op struct {
	Resource string            // resource instance name; ops with the same name are serialised
	Agent    string            // "ocf:heartbeat:Dummy", "lsb:ssh", "builtin:vip"
	Action   string            // start, stop, monitor, ...
	Params   map[string]string // instance attributes
	Meta     map[string]string // meta attributes passed as OCF_RESKEY_CRM_meta_*
	// Interval is the period of a recurring op (StartRecurring); 0 for
	// one-shot ops. A monitor with interval 0 is a probe.
	Interval time.Duration
	// Timeout bounds one execution; 0 means Config.DefaultTimeout.
	Timeout time.Duration
	// ExpectedRC is the answer that counts as success (RCOK, or
	// RCRunningPromoted for the monitor of a promoted instance). Probes
	// accept any "state" answer (running, not running, promoted).
	ExpectedRC RC
}

// IsProbe reports whether op is a one-shot monitor, whose purpose is to
// find out the state rather than to check an expected one.
func (op Op) IsProbe() bool { return op.Action == ActionMonitor && op.Interval == 0 }

// Failed reports whether r is a failure of op: not run to completion, or
// an answer other than the expected one (degraded counts as its
// non-degraded counterpart, as pacemaker does).
func (op Op) Failed(r Result) bool {
	if r.Status != StatusDone {
		return true
	}
	if op.IsProbe() {
		switch r.RC {
		case RCOK, RCNotRunning, RCRunningPromoted, RCDegraded, RCDegradedPromoted:
			return false
		}
		return true
	}
	rc := r.RC
	switch rc {
	case RCDegraded:
		rc = RCOK
	case RCDegradedPromoted:
		rc = RCRunningPromoted
	}
	return rc != op.ExpectedRC
}

// countsFailure reports whether a failed op increments the fail count:
// informational actions (meta-data, validate-all) and probes never do.
func (op Op) countsFailure() bool {
	return op.Action != ActionMetaData && op.Action != ActionValidateAll && !op.IsProbe()
}

// Key names a recurring op the way pacemaker does (RSC_ACTION_INTERVALms).
func (op Op) Key() string {
	return fmt.Sprintf("%s_%s_%d", op.Resource, op.Action, op.Interval.Milliseconds())
}

// Event reports a recurring op's result when it differs from the previous
// one (including the first result), so a resource that keeps failing in
// the same way is reported once.
type Event struct {
	Node   string
	Op     Op
	Result Result
	// Failed is Op.Failed(Result).
	Failed bool
	// FailCount is the resource's fail count after this event.
	FailCount int
}

// FailCount is the failure record of one resource on one node.
type FailCount struct {
	Resource    string
	Node        string
	Count       int
	LastFailure time.Time
	LastOp      string // e.g. "monitor 10s" or "start"
	LastResult  Result
}

// Manager is the local resource manager: it runs operations through the
// agent classes, one at a time per resource in arrival order, runs
// recurring monitors, keeps fail counts and reports monitor changes.
//
// Concurrency contract: every method is safe for concurrent use. Ops on
// the same resource (Op.Resource) are executed strictly one at a time in
// the order Exec/the recurring timer queued them; ops on different
// resources run in parallel. Events are delivered on one channel in the
// order they happened; a slow reader never blocks operations (events are
// queued without bound) but events still queued at Close are dropped.
type Manager struct {
	cfg    Config
	ctx    context.Context // cancelled by Close: stops recurring ops
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	queues    map[string]*rscQueue
	recurring map[string]*recurring
	fails     map[string]*FailCount

	events *eventQueue
}

type rscQueue struct {
	pending []*job
}

type job struct {
	ctx    context.Context
	op     Op
	class  Class
	req    Request
	done   chan Result // buffered: the worker never blocks on it
	queued bool        // guarded by Manager.mu: still in pending
}

type recurring struct {
	op     Op
	cancel context.CancelFunc
	last   *Result
}

// NewManager makes a Manager. Call Close to stop recurring ops.
func NewManager(cfg Config) (*Manager, error) {
	if cfg.Registry == nil {
		return nil, errors.New("lrmd: Config.Registry is required")
	}
	if cfg.Node == "" {
		cfg.Node, _ = os.Hostname()
	}
	if cfg.DefaultTimeout <= 0 {
		cfg.DefaultTimeout = DefaultTimeout
	}
	if cfg.MetaDataTimeout <= 0 {
		cfg.MetaDataTimeout = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		cfg:       cfg,
		ctx:       ctx,
		cancel:    cancel,
		queues:    make(map[string]*rscQueue),
		recurring: make(map[string]*recurring),
		fails:     make(map[string]*FailCount),
		events:    newEventQueue(),
	}
	return m, nil
}

// Node returns the node name the Manager records.
func (m *Manager) Node() string { return m.cfg.Node }

// Registry returns the class registry.
func (m *Manager) Registry() *Registry { return m.cfg.Registry }

// Events returns the channel of recurring-op events. It is closed by Close.
func (m *Manager) Events() <-chan Event { return m.events.out }

// Exec runs one operation and returns its result. It queues behind other
// ops of the same resource. Cancelling ctx removes a queued op (result
// StatusCancelled) or kills a running one. A failed op (see Op.Failed)
// increments the resource's fail count.
func (m *Manager) Exec(ctx context.Context, op Op) Result {
	class, req, bad := m.prepare(ctx, op)
	if bad != nil {
		return *bad
	}
	res := m.run(ctx, op, class, req)
	if op.Failed(res) && op.countsFailure() && res.Status != StatusCancelled {
		m.addFailure(op, res)
	}
	return res
}

// prepare resolves the agent and validates the parameters against the
// agent's meta-data, so a configuration error is reported (rc 6) without
// running the agent.
func (m *Manager) prepare(ctx context.Context, op Op) (Class, Request, *Result) {
	invalid := func(rc RC, st Status, format string, args ...any) (Class, Request, *Result) {
		return nil, Request{}, &Result{RC: rc, Status: st, Reason: fmt.Sprintf(format, args...), Started: time.Now()}
	}
	id, err := ParseAgent(op.Agent)
	if err != nil {
		return invalid(RCErrConfigured, StatusInvalid, "%v", err)
	}
	if op.Action == "" {
		return invalid(RCErrArgs, StatusInvalid, "no action given")
	}
	class, err := m.cfg.Registry.Class(id.Class)
	if err != nil {
		return invalid(RCErrInstalled, StatusNotInstalled, "%v", err)
	}
	req := Request{
		Agent:    id,
		Resource: op.Resource,
		Action:   op.Action,
		Params:   copyMap(op.Params),
		Meta:     copyMap(op.Meta),
		Interval: op.Interval,
		Timeout:  op.Timeout,
	}
	if req.Resource == "" {
		req.Resource = id.Type
	}
	if req.Timeout <= 0 {
		req.Timeout = m.cfg.DefaultTimeout
	}
	if op.Action == ActionMetaData {
		return class, req, nil
	}
	mctx, cancel := context.WithTimeout(ctx, m.cfg.MetaDataTimeout)
	defer cancel()
	md, err := class.MetaData(mctx, id)
	switch {
	case errors.Is(err, ErrNotInstalled):
		return invalid(RCErrInstalled, StatusNotInstalled, "%v", err)
	case err != nil:
		// An agent with broken meta-data may still run; pacemaker does
		// not refuse it either. The agent's own validation applies.
	default:
		strict := false
		if sc, ok := class.(StrictClass); ok {
			strict = sc.Strict()
		}
		if err := md.Validate(req.Params, strict); err != nil {
			return invalid(RCErrConfigured, StatusInvalid, "%v", err)
		}
	}
	return class, req, nil
}

// run queues the op on its resource and waits for the result.
func (m *Manager) run(ctx context.Context, op Op, class Class, req Request) Result {
	j := &job{ctx: ctx, op: op, class: class, req: req, done: make(chan Result, 1)}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return Result{RC: RCErrGeneric, Status: StatusCancelled, Reason: ErrClosed.Error(), Started: time.Now()}
	}
	q := m.queues[req.Resource]
	if q == nil {
		q = &rscQueue{}
		m.queues[req.Resource] = q
		m.wg.Add(1)
		go m.worker(req.Resource, q)
	}
	j.queued = true
	q.pending = append(q.pending, j)
	m.mu.Unlock()

	select {
	case r := <-j.done:
		return r
	case <-ctx.Done():
	}
	m.mu.Lock()
	if j.queued {
		// Still waiting: take it out of the queue, it never runs.
		for i, p := range q.pending {
			if p == j {
				q.pending = append(q.pending[:i], q.pending[i+1:]...)
				break
			}
		}
		j.queued = false
		m.mu.Unlock()
		r := InterruptedResult(ctx, "")
		r.Reason = "cancelled while queued: " + r.Reason
		r.Started = time.Now()
		return r
	}
	m.mu.Unlock()
	// Running: its context is derived from ctx, so it ends promptly.
	return <-j.done
}

// worker executes the queue of one resource, one op at a time. It exits
// (and forgets the queue) when the queue is empty, so idle resources cost
// no goroutine.
func (m *Manager) worker(rsc string, q *rscQueue) {
	defer m.wg.Done()
	for {
		m.mu.Lock()
		if len(q.pending) == 0 {
			delete(m.queues, rsc)
			m.mu.Unlock()
			return
		}
		j := q.pending[0]
		q.pending = q.pending[1:]
		j.queued = false
		m.mu.Unlock()
		j.done <- m.execute(j)
	}
}

func (m *Manager) execute(j *job) Result {
	start := time.Now()
	ctx, cancel := context.WithTimeoutCause(j.ctx, j.req.Timeout, ErrTimedOut)
	defer cancel()
	var res Result
	if ctx.Err() != nil {
		res = InterruptedResult(ctx, "")
	} else {
		res = j.class.Exec(ctx, j.req)
	}
	if res.Started.IsZero() {
		res.Started = start
	}
	if res.Duration == 0 {
		res.Duration = time.Since(start)
	}
	return res
}

// StartRecurring runs op every op.Interval (measured from the end of one
// execution to the start of the next, as pacemaker does), starting now,
// until Cancel or Close. Results are reported on Events only when they
// differ from the previous one. Starting an op with the same resource,
// action and interval replaces the running one. Parameters are validated
// now; a validation failure is returned as an error.
func (m *Manager) StartRecurring(op Op) error {
	if op.Interval <= 0 {
		return fmt.Errorf("%w: recurring op %s needs an interval", ErrBadParam, op.Key())
	}
	class, req, bad := m.prepare(m.ctx, op)
	if bad != nil {
		return fmt.Errorf("recurring op %s: %s", op.Key(), bad.Reason)
	}
	op.Resource = req.Resource
	ctx, cancel := context.WithCancel(m.ctx)
	rec := &recurring{op: op, cancel: cancel}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		cancel()
		return ErrClosed
	}
	if old := m.recurring[op.Key()]; old != nil {
		old.cancel()
	}
	m.recurring[op.Key()] = rec
	m.wg.Add(1)
	m.mu.Unlock()
	go m.recur(ctx, rec, class, req)
	return nil
}

func (m *Manager) recur(ctx context.Context, rec *recurring, class Class, req Request) {
	defer m.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		res := m.run(ctx, rec.op, class, req)
		if ctx.Err() != nil {
			return // cancelled: pacemaker does not report cancelled monitors as failures
		}
		m.observe(rec, res)
		timer.Reset(rec.op.Interval)
	}
}

// observe reports res if it differs from the previous result.
func (m *Manager) observe(rec *recurring, res Result) {
	last := rec.last
	rec.last = &res
	if last != nil && last.RC == res.RC && last.Status == res.Status {
		return
	}
	failed := rec.op.Failed(res)
	count := 0
	if failed {
		count = m.addFailure(rec.op, res)
	} else {
		count = m.FailCount(rec.op.Resource).Count
	}
	m.events.push(Event{Node: m.cfg.Node, Op: rec.op, Result: res, Failed: failed, FailCount: count})
}

// Cancel stops the recurring op of resource rsc with the given action and
// interval. A queued execution of it is dropped; one already running
// finishes but is not reported. Returns an error wrapping ErrNotFound when
// there is no such op.
func (m *Manager) Cancel(rsc, action string, interval time.Duration) error {
	key := Op{Resource: rsc, Action: action, Interval: interval}.Key()
	m.mu.Lock()
	rec := m.recurring[key]
	delete(m.recurring, key)
	m.mu.Unlock()
	if rec == nil {
		return fmt.Errorf("recurring op %s: %w", key, ErrNotFound)
	}
	rec.cancel()
	return nil
}

// CancelAll stops every recurring op of resource rsc (before a stop).
func (m *Manager) CancelAll(rsc string) {
	m.mu.Lock()
	var recs []*recurring
	for k, r := range m.recurring {
		if r.op.Resource == rsc {
			recs = append(recs, r)
			delete(m.recurring, k)
		}
	}
	m.mu.Unlock()
	for _, r := range recs {
		r.cancel()
	}
}

// Recurring returns the recurring ops currently scheduled, sorted by key.
func (m *Manager) Recurring() []Op {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Op, 0, len(m.recurring))
	for _, r := range m.recurring {
		out = append(out, r.op)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}

func (m *Manager) addFailure(op Op, res Result) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	fc := m.fails[op.Resource]
	if fc == nil {
		fc = &FailCount{Resource: op.Resource, Node: m.cfg.Node}
		m.fails[op.Resource] = fc
	}
	fc.Count++
	fc.LastFailure = res.Started.Add(res.Duration)
	fc.LastOp = op.Action
	if op.Interval > 0 {
		fc.LastOp += " " + op.Interval.String()
	}
	fc.LastResult = res
	return fc.Count
}

// FailCount returns the fail count of rsc on this node (zero if none).
func (m *Manager) FailCount(rsc string) FailCount {
	m.mu.Lock()
	defer m.mu.Unlock()
	if fc := m.fails[rsc]; fc != nil {
		return *fc
	}
	return FailCount{Resource: rsc, Node: m.cfg.Node}
}

// FailCounts returns every non-zero fail count, sorted by resource.
func (m *Manager) FailCounts() []FailCount {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]FailCount, 0, len(m.fails))
	for _, fc := range m.fails {
		out = append(out, *fc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Resource < out[j].Resource })
	return out
}

// ClearFailCount resets the fail count of rsc (crm_resource --cleanup).
func (m *Manager) ClearFailCount(rsc string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.fails, rsc)
}

// Close stops recurring ops, waits for running ops to finish (they are
// bounded by their timeouts) and closes the Events channel. Exec after
// Close returns StatusCancelled. Close does not close the Registry, which
// the caller owns.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.recurring = map[string]*recurring{}
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	m.events.close()
	return nil
}

func copyMap(in map[string]string) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

// eventQueue decouples event producers from the reader: push never blocks.
type eventQueue struct {
	mu     sync.Mutex
	items  []Event
	wake   chan struct{}
	stop   chan struct{}
	out    chan Event
	closed bool
}

func newEventQueue() *eventQueue {
	q := &eventQueue{wake: make(chan struct{}, 1), stop: make(chan struct{}), out: make(chan Event)}
	go q.pump()
	return q
}

func (q *eventQueue) push(e Event) {
	q.mu.Lock()
	if !q.closed {
		q.items = append(q.items, e)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *eventQueue) pump() {
	defer close(q.out)
	for {
		q.mu.Lock()
		items := q.items
		q.items = nil
		q.mu.Unlock()
		for _, e := range items {
			select {
			case q.out <- e:
			case <-q.stop:
				return
			}
		}
		select {
		case <-q.wake:
		case <-q.stop:
			return
		}
	}
}

func (q *eventQueue) close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	q.mu.Unlock()
	close(q.stop)
}

// Pending returns how many ops of rsc are queued behind the running one
// (for status displays and tests).
func (m *Manager) Pending(rsc string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if q := m.queues[rsc]; q != nil {
		return len(q.pending)
	}
	return 0
}
