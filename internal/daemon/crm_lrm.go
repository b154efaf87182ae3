package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"ringmaster/config"
	"ringmaster/crm/cib"
	"ringmaster/crm/controld"
	"ringmaster/internal/events"
	"ringmaster/lrmd"
	"ringmaster/lrmd/agents"
	"ringmaster/stonithd"
	"ringmaster/totem"
)

// lrmRunner carries out the controller's operations on this node with the
// local resource manager (lrmd.Manager) and reports their results back
// under the executive's lock. It keeps the controller's contract: a
// recurring monitor reports its first result and then each change, a stop
// cancels the resource's recurring operations first, and a cancelled
// operation's ID is never reported again.
type lrmRunner struct {
	d    *Daemon
	log  *zap.Logger
	node string
	reg  *lrmd.Registry
	m    *lrmd.Manager
	post func(func(now time.Time))
	// opDone hands a result to the controller (under post).
	opDone func(now time.Time, r controld.OpResult)
	rec    events.Recorder
	fence  *fenceService
	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	// recurring maps a recurring op's lrmd key (RSC_ACTION_INTERVALms)
	// to the incarnation the controller runs now.
	recurring map[string]*recurringOp
	// queues holds, per resource, the lrmd calls not made yet: they
	// run in order on a goroutine of their own, never under the
	// executive's lock (StartRecurring and Exec fetch the agent's
	// meta-data first, which runs the agent: up to 5 s for a hung one).
	// A resource has a worker while it has an entry here.
	queues map[string][]func()
	// fenceUp lists the fence devices started on this node (their start
	// and monitor are the fencer's, not an agent's).
	fenceUp map[string]bool
	// active lists the resources this node's last results say are
	// running here (a clean shutdown waits for them to move away).
	active map[string]bool
}

// recurringOp is one incarnation of a recurring operation: the
// controller may cancel an op and start another with the same key (or
// start one that replaces it) while events of the old one still wait in
// lrmd's queue; those must not be reported under the new ID.
type recurringOp struct {
	id  uint64
	rsc string
	// meta is the Meta map of the lrmd.Op given to StartRecurring,
	// which lrmd hands back unchanged in the incarnation's events
	// (lrmdOp makes a new map for every op): it tells incarnations of
	// the same key apart.
	meta map[string]string
}

// sameIncarnation reports whether ev comes from r.
func (r *recurringOp) sameIncarnation(ev lrmd.Event) bool {
	return reflect.ValueOf(r.meta).UnsafePointer() == reflect.ValueOf(ev.Op.Meta).UnsafePointer()
}

// track updates active from a result.
func (l *lrmRunner) track(op lrmd.Op, res lrmd.Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ok := res.Status == lrmd.StatusDone
	switch {
	case op.Action == "stop":
		if ok && res.RC == lrmd.RCOK {
			delete(l.active, op.Resource)
		}
	case op.Action == "start" || op.Action == "promote" || op.Action == "demote":
		if ok && res.RC == lrmd.RCOK {
			l.active[op.Resource] = true
		}
	case op.Action == "monitor":
		switch {
		case ok && res.RC == lrmd.RCNotRunning:
			delete(l.active, op.Resource)
		case ok && (res.RC == lrmd.RCOK || res.RC == lrmd.RCRunningPromoted):
			l.active[op.Resource] = true
		}
	}
}

// activeCount is how many resources run here.
func (l *lrmRunner) activeCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.active)
}

func newLRMRunner(d *Daemon, r *config.Resources, node string, post func(func(time.Time)), fence *fenceService) (*lrmRunner, error) {
	log := d.log.Named("lrmd")
	runDir := r.RunDirFor(int(d.node))
	if r.RunDir == "" {
		if err := os.MkdirAll(runDir, 0o755); errors.Is(err, fs.ErrPermission) {
			// Not root: the default under /run is out of reach.
			fallback := filepath.Join(d.Config().System.StateDir, "run")
			log.Warn("cannot create the default run directory; using one under state_dir (set resources.run_dir to a tmpfs directory)",
				zap.String("default", runDir), zap.String("using", fallback))
			runDir = fallback
		}
	}
	env, err := agentEnv(runDir, d.Config().IPC.Socket, log)
	if err != nil {
		return nil, err
	}
	reg, err := agents.NewRegistry(agents.Config{OCFRoot: r.OCFRoot, InitDir: r.InitDir, RunDir: runDir, Persistent: true,
		OCFEnv: env, Log: func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) }})
	if err != nil {
		return nil, err
	}
	m, err := lrmd.NewManager(lrmd.Config{Registry: reg, Node: node})
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	var rec events.Recorder = events.Discard
	if d.obs != nil {
		rec = d.obs.events
	}
	l := &lrmRunner{d: d, log: log, node: node, reg: reg, m: m, post: post, rec: rec, fence: fence, ctx: ctx, stop: stop,
		recurring: map[string]*recurringOp{}, queues: map[string][]func(){}, fenceUp: map[string]bool{}, active: map[string]bool{}}
	l.wg.Add(1)
	go l.events()
	return l, nil
}

// attrTools are the Pacemaker commands OCF agents call that ringctl
// answers when run under their name (crm_attribute --promotion in
// ocf:pacemaker:Stateful, crm_master, attrd_updater).
var attrTools = []string{"crm_attribute", "crm_master", "attrd_updater"}

// agentEnv prepares the node's run directory and the OCF agents' extra
// environment: HA_RSCTMP and HA_VARRUN in the run directory (agents keep
// their state and pid files there: one per node, even when nodes share a
// host), the socket for
// ringctl, and HA_SBIN_DIR pointing at links named after attrTools to the
// ringctl installed next to ringd (when there is one).
func agentEnv(runDir, socket string, log *zap.Logger) ([]string, error) {
	tmp, varrun := filepath.Join(runDir, "rsctmp"), filepath.Join(runDir, "varrun")
	for _, d := range []string{tmp, varrun} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("resources.run_dir: %w", err)
		}
	}
	env := []string{"HA_RSCTMP=" + tmp, "HA_VARRUN=" + varrun + "/", "RINGMASTER_SOCKET=" + socket}
	self, err := os.Executable()
	if err != nil {
		return env, nil
	}
	ringctl := filepath.Join(filepath.Dir(self), "ringctl")
	if _, err := os.Stat(ringctl); err != nil {
		log.Info("no ringctl next to ringd: OCF agents that call crm_attribute will not reach this cluster", zap.String("looked_for", ringctl))
		return env, nil
	}
	sbin := filepath.Join(runDir, "sbin")
	if err := os.MkdirAll(sbin, 0o755); err != nil {
		return nil, fmt.Errorf("resources.run_dir: %w", err)
	}
	for _, t := range attrTools {
		p := filepath.Join(sbin, t)
		_ = os.Remove(p)
		if err := os.Symlink(ringctl, p); err != nil {
			return nil, fmt.Errorf("resources.run_dir: %w", err)
		}
	}
	return append(env, "HA_SBIN_DIR="+sbin), nil
}

// agentName is lrmd's name of a CIB agent.
func agentName(op controld.Op) string {
	if op.Provider != "" {
		return op.Class + ":" + op.Provider + ":" + op.Type
	}
	return op.Class + ":" + op.Type
}

// lrmdOp translates an operation for the lrmd on node (its name and ID):
// as Pacemaker's executor, every operation tells the agent where it runs
// (OCF_RESKEY_CRM_meta_on_node, which crm_attribute uses as the node).
func lrmdOp(op controld.Op, node string, id totem.NodeID) lrmd.Op {
	meta := make(map[string]string, len(op.Meta)+2)
	maps.Copy(meta, op.Meta)
	if meta["on_node"] == "" {
		meta["on_node"] = node
	}
	if meta["on_node_uuid"] == "" {
		meta["on_node_uuid"] = strconv.FormatUint(uint64(id), 10)
	}
	lop := lrmd.Op{Resource: op.Rsc, Agent: agentName(op), Action: op.Task, Params: op.Params, Meta: meta,
		Interval: time.Duration(op.IntervalMS) * time.Millisecond, Timeout: op.Timeout, ExpectedRC: lrmd.RCOK}
	if rc, err := strconv.Atoi(op.Meta["op_target_rc"]); err == nil && op.IntervalMS > 0 {
		lop.ExpectedRC = lrmd.RC(rc)
	}
	return lop
}

// run starts op; it never blocks (called under the executive's lock):
// the lrmd calls go to the resource's queue, in order. What must hold at
// once is decided here: a cancelled (or stopped) recurring op is
// forgotten now, so none of its results is reported after this call.
func (l *lrmRunner) run(op controld.Op) {
	lop := lrmdOp(op, l.node, l.d.node)
	if stonithd.IsFenceDevice(&cib.Resource{Class: op.Class, Type: op.Type}) {
		l.runFenceDevice(op)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	key := lop.Key()
	switch {
	case op.Kind == controld.OpCancel:
		if r := l.recurring[key]; r != nil && r.id == op.ID {
			delete(l.recurring, key)
			l.enqueue(op.Rsc, func() { _ = l.m.Cancel(lop.Resource, lop.Action, lop.Interval) })
		}
	case op.Task == "stop":
		// Pacemaker's executor cancels the recurring operations of a
		// resource before it stops it.
		for k, r := range l.recurring {
			if r.rsc == op.Rsc {
				delete(l.recurring, k)
			}
		}
		l.enqueue(op.Rsc, func() {
			l.m.CancelAll(op.Rsc)
			l.exec(op, lop)
		})
	case lop.Interval > 0:
		r := &recurringOp{id: op.ID, rsc: op.Rsc, meta: lop.Meta}
		l.recurring[key] = r
		l.enqueue(op.Rsc, func() {
			if err := l.m.StartRecurring(lop); err != nil {
				l.post(func(now time.Time) {
					l.mu.Lock()
					cur := l.recurring[key]
					if cur == r {
						delete(l.recurring, key)
					}
					l.mu.Unlock()
					if cur == r {
						l.done(now, op, lrmd.Result{RC: lrmd.RCErrGeneric, Status: lrmd.StatusExecError, Reason: err.Error()})
					}
				})
			}
		})
	default:
		l.enqueue(op.Rsc, func() { l.exec(op, lop) })
	}
}

// enqueue adds f to rsc's queue and starts its worker if needed (l.mu
// held).
func (l *lrmRunner) enqueue(rsc string, f func()) {
	q, running := l.queues[rsc]
	l.queues[rsc] = append(q, f)
	if running {
		return
	}
	l.wg.Add(1)
	go l.work(rsc)
}

// work runs rsc's queue until it is empty.
func (l *lrmRunner) work(rsc string) {
	defer l.wg.Done()
	for {
		l.mu.Lock()
		q := l.queues[rsc]
		if len(q) == 0 {
			delete(l.queues, rsc)
			l.mu.Unlock()
			return
		}
		f := q[0]
		l.queues[rsc] = q[1:]
		l.mu.Unlock()
		f()
	}
}

// exec runs a one-shot op on its own goroutine (queued in lrmd behind
// the resource's earlier ops) and reports its result.
func (l *lrmRunner) exec(op controld.Op, lop lrmd.Op) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.report(op, l.m.Exec(l.ctx, lop))
	}()
}

// runFenceDevice: a fence device's start, stop and monitor are
// bookkeeping of the fencer on this node (Pacemaker's fenced registers
// the device); the agent itself runs only to fence or when queried.
func (l *lrmRunner) runFenceDevice(op controld.Op) {
	if op.Kind == controld.OpCancel {
		return
	}
	l.mu.Lock()
	rc := lrmd.RCOK
	switch op.Task {
	case "start":
		l.fenceUp[op.Rsc] = true
	case "stop":
		delete(l.fenceUp, op.Rsc)
	case "monitor":
		if !l.fenceUp[op.Rsc] {
			rc = lrmd.RCNotRunning
		}
	}
	l.mu.Unlock()
	// Reported from a goroutine: results always come back through post.
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.report(op, lrmd.Result{RC: rc, Status: lrmd.StatusDone})
	}()
}

// events forwards recurring monitors' changes, each under the ID of the
// incarnation that produced it (and only while that incarnation is the
// controller's).
func (l *lrmRunner) events() {
	defer l.wg.Done()
	for ev := range l.m.Events() {
		key := ev.Op.Key()
		l.mu.Lock()
		r := l.recurring[key]
		l.mu.Unlock()
		if r == nil || !r.sameIncarnation(ev) {
			continue
		}
		l.reportRecurring(key, r, ev)
	}
}

func (l *lrmRunner) reportRecurring(key string, r *recurringOp, ev lrmd.Event) {
	l.post(func(now time.Time) {
		l.mu.Lock()
		cur := l.recurring[key]
		l.mu.Unlock()
		if cur != r {
			return // cancelled or replaced meanwhile
		}
		l.track(ev.Op, ev.Result)
		l.opDone(now, opResult(r.id, ev.Result))
		l.record(ev.Op, ev.Result)
	})
}

func (l *lrmRunner) report(op controld.Op, res lrmd.Result) {
	l.post(func(now time.Time) { l.done(now, op, res) })
}

// done hands op's result to the controller (under post).
func (l *lrmRunner) done(now time.Time, op controld.Op, res lrmd.Result) {
	if !stonithd.IsFenceDevice(&cib.Resource{Class: op.Class, Type: op.Type}) {
		l.track(lrmdOp(op, l.node, l.d.node), res)
	}
	l.opDone(now, opResult(op.ID, res))
	l.record(lrmdOp(op, l.node, l.d.node), res)
}

// record logs the result and adds it to the event log when it is a
// failure or changes the resource's state.
func (l *lrmRunner) record(op lrmd.Op, res lrmd.Result) {
	failed := op.Failed(res)
	if op.IsProbe() && !failed {
		return
	}
	if (op.Action == "monitor" || op.Action == "notify") && !failed {
		return
	}
	f := []zap.Field{zap.String("resource", op.Resource), zap.String("op", op.Action), zap.Duration("interval", op.Interval),
		zap.Int("rc", int(res.RC)), zap.Duration("took", res.Duration)}
	if failed {
		l.log.Warn("operation failed", append(f, zap.String("reason", res.Summary()))...)
	} else {
		l.log.Info("operation done", f...)
	}
	result := "ok"
	if failed {
		result = "failed"
	}
	l.rec.Record(events.Resource, op.Action+" "+op.Resource, events.Fields{
		"resource": op.Resource, "operation": op.Action, "rc": int(res.RC), "result": result,
		"ms": res.Duration.Milliseconds(), "reason": res.Reason})
}

// opResult translates lrmd's result for the controller: Pacemaker's
// execution statuses (PCMK_EXEC_*) from lrmd's.
func opResult(id uint64, res lrmd.Result) controld.OpResult {
	st := 0
	switch res.Status {
	case lrmd.StatusDone, lrmd.StatusInvalid:
		// Invalid: rejected before the agent ran; RC says why (not
		// configured is fatal to the scheduler, as in Pacemaker).
	case lrmd.StatusCancelled:
		st = 1
	case lrmd.StatusTimedOut:
		st = 2
	case lrmd.StatusNotInstalled:
		st = 7
	default:
		st = 4
	}
	reason := res.Reason
	if len(reason) > 256 {
		reason = reason[:256]
	}
	return controld.OpResult{ID: id, RC: int(res.RC), Status: st, ExitReason: reason, ExecTime: res.Duration}
}

// close stops reporting and the recurring operations; resources stay as
// they are.
func (l *lrmRunner) close() {
	l.stop()
	_ = l.m.Close()
	l.wg.Wait()
	_ = l.reg.Close()
}
