package stonithd

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// DefaultListCacheTTL is how long a device's dynamic-list answer is
// reused. Outlet lists change when hardware is recabled, not between two
// fencing requests, and asking the device again would put a round trip to
// it in front of every fencing action.
const DefaultListCacheTTL = 60 * time.Second

// Config configures a Fencer.
type Config struct {
	// Node is this node's name: the executioner in history and the origin
	// of requests that do not name one.
	Node string
	// HistoryMax bounds the history (0: DefaultHistoryMax).
	HistoryMax int
	// ListCacheTTL (0: DefaultListCacheTTL).
	ListCacheTTL time.Duration
	// Rand returns a value in [0, n); it draws pcmk_delay_max delays.
	// Nil disables the random part (pcmk_delay_base still applies). It is
	// an input so that the core stays deterministic under test.
	Rand func(n int64) int64
	// NodeAttrs returns a node's attributes for target-attribute levels;
	// nil means no attributes.
	NodeAttrs func(node string) map[string]string
}

// Request asks for one fencing action.
type Request struct {
	Target string
	Action Action
	// Origin is the node that asked (default: Config.Node); Client the
	// component ("controld", "ringctl").
	Origin string
	Client string
	// Timeout bounds the whole operation (Pacemaker's stonith-timeout for
	// the attempt; the controller's FenceRequest.Timeout). 0: only each
	// device action's own timeout applies. A device action never gets
	// more than what is left of it.
	Timeout time.Duration
}

// OpID names a fencing operation of one Fencer; CmdID one command.
type (
	OpID  uint64
	CmdID uint64
)

// CommandKind tells a fencing action from a capability query.
type CommandKind uint8

// Command kinds.
const (
	// KindFence runs reboot/off/on on a device.
	KindFence CommandKind = iota + 1
	// KindQuery runs list or status to learn whether a device can fence
	// the target (pcmk_host_check dynamic-list / status).
	KindQuery
)

func (k CommandKind) String() string {
	if k == KindQuery {
		return "query"
	}
	return "fence"
}

// Command is one agent action the driver must run and report with
// Fencer.Result. Args are the agent's stdin key=value pairs (action=
// included); Agent says which agent implementation runs them.
type Command struct {
	ID     CmdID
	Op     OpID
	Kind   CommandKind
	Device string
	Agent  string
	// Action is the fencer's action ("reboot", "off", "on", "list",
	// "status"); AgentAction what the agent is asked (pcmk_*_action).
	Action      string
	AgentAction string
	Target      string
	Args        map[string]string
	// Delay is to be waited before running (pcmk_delay_base/max); it is
	// not part of Timeout.
	Delay   time.Duration
	Timeout time.Duration
	// Deadline is when the core gives up on the command by itself
	// (issue time + Delay + Timeout): Tick reports it timed out then, in
	// case the driver never answers.
	Deadline time.Time
	Attempt  int
}

// CommandResult is what the driver observed. RC is the agent's exit
// status (fence-agents: 0 success; status: 0 on, 2 off, 1 error).
type CommandResult struct {
	RC       int
	Output   string // stdout (list output), bounded by the driver
	Err      string // the agent could not run, or the driver's reason
	TimedOut bool
}

// OK reports success: exit 0, ran, in time.
func (r CommandResult) OK() bool { return r.Err == "" && !r.TimedOut && r.RC == 0 }

func (r CommandResult) String() string {
	switch {
	case r.TimedOut:
		return "timed out"
	case r.Err != "":
		return r.Err
	}
	s := fmt.Sprintf("rc=%d", r.RC)
	if out := firstLine(r.Output); out != "" && r.RC != 0 {
		s += ": " + out
	}
	return s
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// Outcome is a finished operation.
type Outcome struct {
	Op      OpID
	Request Request
	Entry   Entry // the history entry recorded for it
	// Err is nil on success, else wraps ErrNoDevice, ErrFailed or
	// ErrCancelled.
	Err error
}

// Ready is what the Fencer asks of its driver after a call: commands to
// start, commands to abandon (kill), finished operations, and new history
// entries to replicate. Fencer.Ready drains it.
type Ready struct {
	Commands []Command
	Cancel   []CmdID
	Done     []Outcome
	History  []Entry
}

// Empty reports whether there is nothing to do.
func (r Ready) Empty() bool {
	return len(r.Commands) == 0 && len(r.Cancel) == 0 && len(r.Done) == 0 && len(r.History) == 0
}

type opPhase uint8

const (
	phaseQuery opPhase = iota
	phaseExec
)

// step is one device action of a level. Optional steps (the on half of a
// remapped reboot) may fail without failing the level.
type step struct {
	device   string
	action   string
	optional bool
}

type level struct {
	name    string // "level 2" or the device id
	devices []string
}

type op struct {
	id      OpID
	req     Request
	started time.Time
	expires time.Time // started + req.Timeout; zero: none
	phase   opPhase

	// query phase
	waiting    map[CmdID]string // outstanding queries -> device
	candidates []*Device
	capable    map[string]bool

	// exec phase
	levels   []level
	li       int
	steps    []step
	si       int
	attempt  int
	deadline time.Time // of the current step, all attempts together
	running  CmdID
	delayed  bool

	reasons []string
	lastDev string
}

type cmdState struct {
	cmd Command
	ops []OpID // ops waiting for the answer (list queries are shared)
}

type listCache struct {
	names []string
	at    time.Time
}

// Fencer is the pure fencing core. It holds the devices, the topology, the
// operations in flight and the history; it never runs anything, reads no
// clock and starts no goroutine. Every method takes the current time.
//
// Operation life cycle:
//
//	state \ event  | Fence              | query result        | command result            | Tick past deadline
//	---------------+--------------------+---------------------+---------------------------+-------------------
//	(none)         | query or exec      |                     |                           |
//	query          | merged (same op)   | exec when all known | -                         | query = not capable
//	exec           | merged (same op)   | -                   | next step / retry / level | as a timed-out result
//	done           | new op             |                     | ignored                   |
//
// A Fencer is not safe for concurrent use: Driver serialises calls.
type Fencer struct {
	cfg     Config
	devices map[string]*Device
	order   []*Device // by priority, then ID
	topo    *Topology
	ops     map[OpID]*op
	cmds    map[CmdID]*cmdState
	lists   map[string]listCache
	listCmd map[string]CmdID // device -> list query in flight
	nextOp  uint64
	nextCmd uint64
	hist    *History
	ready   Ready
}

// New returns a Fencer without devices.
func New(cfg Config) *Fencer {
	if cfg.ListCacheTTL <= 0 {
		cfg.ListCacheTTL = DefaultListCacheTTL
	}
	return &Fencer{
		cfg:     cfg,
		devices: map[string]*Device{},
		ops:     map[OpID]*op{},
		cmds:    map[CmdID]*cmdState{},
		lists:   map[string]listCache{},
		listCmd: map[string]CmdID{},
		hist:    NewHistory(cfg.HistoryMax),
		topo:    &Topology{},
	}
}

// SetDevices replaces the device set. Operations in flight keep their
// plan; a step naming a device that is gone fails its level. Cached list
// answers of devices that changed are dropped.
func (f *Fencer) SetDevices(ds []*Device) {
	f.devices = make(map[string]*Device, len(ds))
	f.order = nil
	for _, d := range ds {
		if d == nil {
			continue
		}
		f.devices[d.ID] = d
		f.order = append(f.order, d)
	}
	sortDevices(f.order)
	for id := range f.lists {
		if _, ok := f.devices[id]; !ok {
			delete(f.lists, id)
		}
	}
}

// Devices returns the devices, in the order they are tried without
// topology.
func (f *Fencer) Devices() []*Device { return append([]*Device(nil), f.order...) }

// SetTopology replaces the fencing topology (nil: none).
func (f *Fencer) SetTopology(t *Topology) {
	if t == nil {
		t = &Topology{}
	}
	f.topo = t
}

// Topology returns the current topology.
func (f *Fencer) Topology() *Topology { return f.topo }

// History returns the fencer's history (merge peers' entries into it
// with MergeHistory).
func (f *Fencer) History() []Entry { return f.hist.Entries() }

// MergeHistory adds entries from a peer; it returns those that were new.
func (f *Fencer) MergeHistory(entries []Entry) []Entry { return f.hist.Merge(entries...) }

// Ready returns and clears what the driver has to do.
func (f *Fencer) Ready() Ready {
	r := f.ready
	f.ready = Ready{}
	return r
}

// Pending returns the operations in flight, oldest first.
func (f *Fencer) Pending() []Request {
	ids := f.opIDs()
	out := make([]Request, 0, len(ids))
	for _, id := range ids {
		out = append(out, f.ops[id].req)
	}
	return out
}

func (f *Fencer) opIDs() []OpID {
	ids := make([]OpID, 0, len(f.ops))
	for id := range f.ops {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// Fence starts an operation, or joins the one already in flight for the
// same target and action (Pacemaker merges duplicate requests too: the
// controller may ask again before the first answer). The returned OpID
// appears in a later Ready().Done.
func (f *Fencer) Fence(req Request, now time.Time) (OpID, error) {
	req.Target = strings.TrimSpace(req.Target)
	if req.Target == "" {
		return 0, fmt.Errorf("%w: no target", ErrBadRequest)
	}
	if !req.Action.Valid() {
		return 0, fmt.Errorf("%w: action %q is not reboot, off or on", ErrBadRequest, req.Action)
	}
	if req.Origin == "" {
		req.Origin = f.cfg.Node
	}
	for _, id := range f.opIDs() {
		o := f.ops[id]
		if strings.EqualFold(o.req.Target, req.Target) && o.req.Action == req.Action {
			return id, nil
		}
	}
	f.nextOp++
	o := &op{id: OpID(f.nextOp), req: req, started: now, waiting: map[CmdID]string{}, capable: map[string]bool{}}
	if req.Timeout > 0 {
		o.expires = now.Add(req.Timeout)
	}
	f.ops[o.id] = o

	var attrs map[string]string
	if f.cfg.NodeAttrs != nil {
		attrs = f.cfg.NodeAttrs(req.Target)
	}
	if lv := f.topo.For(req.Target, attrs); len(lv) > 0 {
		// The operator assigned these devices to this target: no host
		// check, exactly as listed.
		for _, l := range lv {
			o.levels = append(o.levels, level{name: fmt.Sprintf("level %d", l.Index), devices: append([]string(nil), l.Devices...)})
		}
		f.startExec(o, now)
		return o.id, nil
	}
	// No topology: every device that can fence the target, by priority.
	for _, d := range f.order {
		if req.Action == ActionOn && !d.Supports(string(ActionOn)) {
			continue
		}
		switch d.CanFence(req.Target) {
		case CapYes:
			o.candidates = append(o.candidates, d)
			o.capable[d.ID] = true
		case CapUnknown:
			o.candidates = append(o.candidates, d)
			f.query(o, d, now)
		}
	}
	f.maybeEndQuery(o, now)
	return o.id, nil
}

// query asks d whether it can fence o's target, from the list cache when
// fresh, else by a list or status command.
func (f *Fencer) query(o *op, d *Device, now time.Time) {
	target := o.req.Target
	if d.HostCheck == HostCheckDynamic {
		if c, ok := f.lists[d.ID]; ok && now.Sub(c.at) < f.cfg.ListCacheTTL && !now.Before(c.at) {
			if d.CanFenceFromList(target, c.names) {
				o.capable[d.ID] = true
			} else {
				o.reasons = append(o.reasons, fmt.Sprintf("%s: %s not in its list", d.ID, target))
			}
			return
		}
		if id, ok := f.listCmd[d.ID]; ok {
			f.cmds[id].ops = append(f.cmds[id].ops, o.id)
			o.waiting[id] = d.ID
			return
		}
		c := f.issue(o, d, KindQuery, AgentList, "", now, d.Timeout(AgentList), 0)
		f.listCmd[d.ID] = c.ID
		return
	}
	f.issue(o, d, KindQuery, AgentStatus, target, now, d.Timeout(AgentStatus), 0)
}

func (f *Fencer) issue(o *op, d *Device, kind CommandKind, action, target string, now time.Time, timeout, delay time.Duration) Command {
	if !o.expires.IsZero() {
		if left := o.expires.Sub(now) - delay; left < timeout {
			timeout = max(left, time.Millisecond)
		}
	}
	f.nextCmd++
	agentAction := d.AgentAction(action)
	c := Command{
		ID:          CmdID(f.nextCmd),
		Op:          o.id,
		Kind:        kind,
		Device:      d.ID,
		Agent:       d.Agent,
		Action:      action,
		AgentAction: agentAction,
		Target:      target,
		Args:        d.AgentArgs(agentAction, target),
		Delay:       delay,
		Timeout:     timeout,
		Deadline:    now.Add(delay + timeout),
		Attempt:     o.attempt,
	}
	if kind == KindQuery {
		c.Attempt = 1
		o.waiting[c.ID] = d.ID
	} else {
		o.running = c.ID
	}
	f.cmds[c.ID] = &cmdState{cmd: c, ops: []OpID{o.id}}
	f.ready.Commands = append(f.ready.Commands, c)
	return c
}

// maybeEndQuery moves o to execution once every query is answered.
func (f *Fencer) maybeEndQuery(o *op, now time.Time) {
	if o.phase != phaseQuery || len(o.waiting) > 0 {
		return
	}
	for _, d := range o.candidates {
		if o.capable[d.ID] {
			o.levels = append(o.levels, level{name: d.ID, devices: []string{d.ID}})
		}
	}
	if len(o.levels) == 0 {
		reason := "no device can fence " + o.req.Target
		if len(o.reasons) > 0 {
			reason += " (" + strings.Join(o.reasons, "; ") + ")"
		}
		f.finish(o, now, fmt.Errorf("%w: %s", ErrNoDevice, reason), "", reason)
		return
	}
	f.startExec(o, now)
}

func (f *Fencer) startExec(o *op, now time.Time) {
	o.phase = phaseExec
	o.li = -1
	f.nextLevel(o, now)
}

// nextLevel moves to the next level and starts its first step, or fails
// the operation when none is left.
func (f *Fencer) nextLevel(o *op, now time.Time) {
	o.li++
	if o.li >= len(o.levels) {
		reason := "every device failed"
		if len(o.reasons) > 0 {
			reason = strings.Join(o.reasons, "; ")
		}
		f.finish(o, now, fmt.Errorf("%w: %s: %s", ErrFailed, o.req.Target, reason), o.lastDev, reason)
		return
	}
	l := o.levels[o.li]
	if len(l.devices) == 0 {
		// Only a Topology built in code can have one; never a success.
		f.levelFailed(o, now, l.name+": no devices")
		return
	}
	o.steps = o.steps[:0]
	if o.req.Action == ActionReboot && len(l.devices) > 1 {
		// A reboot through several devices (two power supplies) is done
		// as off on all of them, then on on all of them: rebooting them
		// one after the other would never cut the power completely. The on
		// half is best effort, as the node is fenced once all are off.
		for _, d := range l.devices {
			o.steps = append(o.steps, step{device: d, action: string(ActionOff)})
		}
		for _, d := range l.devices {
			o.steps = append(o.steps, step{device: d, action: string(ActionOn), optional: true})
		}
	} else {
		for _, d := range l.devices {
			o.steps = append(o.steps, step{device: d, action: string(o.req.Action)})
		}
	}
	o.si = -1
	f.nextStep(o, now)
}

// nextStep starts the next step of the level, or completes the level.
func (f *Fencer) nextStep(o *op, now time.Time) {
	if f.expire(o, now) {
		return
	}
	for {
		o.si++
		if o.si >= len(o.steps) {
			// Earlier failures (a failed level, a failed on of a
			// remapped reboot) stay visible in the entry's reason.
			l := o.levels[o.li]
			f.finish(o, now, nil, strings.Join(l.devices, ","), strings.Join(o.reasons, "; "))
			return
		}
		s := o.steps[o.si]
		d := f.devices[s.device]
		switch {
		case d == nil:
			if s.optional {
				continue
			}
			f.levelFailed(o, now, fmt.Sprintf("%s: device %s is not configured", o.levels[o.li].name, s.device))
			return
		case d.Disabled && !s.optional:
			f.levelFailed(o, now, fmt.Sprintf("%s: device %s is disabled", o.levels[o.li].name, s.device))
			return
		case !d.Supports(s.action):
			if s.optional {
				continue
			}
			f.levelFailed(o, now, fmt.Sprintf("%s: device %s does not support %s", o.levels[o.li].name, s.device, s.action))
			return
		case d.Disabled:
			continue
		case s.optional && d.StaysOff():
			// Configured to leave the node off (pcmk_reboot_action=off).
			continue
		}
		o.lastDev = d.ID
		o.attempt = 1
		timeout := d.Timeout(s.action)
		var delay time.Duration
		if !o.delayed && !s.optional {
			o.delayed = true
			delay = d.DelayBase
			if d.DelayMax > d.DelayBase && f.cfg.Rand != nil {
				delay += time.Duration(f.cfg.Rand(int64(d.DelayMax - d.DelayBase)))
			}
		}
		o.deadline = now.Add(delay + timeout)
		f.issue(o, d, KindFence, s.action, o.req.Target, now, timeout, delay)
		return
	}
}

func (f *Fencer) levelFailed(o *op, now time.Time, reason string) {
	o.reasons = append(o.reasons, reason)
	f.nextLevel(o, now)
}

// Result reports a command's outcome. Results of unknown or abandoned
// commands are ignored.
func (f *Fencer) Result(id CmdID, r CommandResult, now time.Time) {
	cs, ok := f.cmds[id]
	if !ok {
		return
	}
	delete(f.cmds, id)
	c := cs.cmd
	if c.Kind == KindQuery {
		f.queryResult(cs, r, now)
		return
	}
	o, ok := f.ops[c.Op]
	if !ok || o.running != id {
		return
	}
	o.running = 0
	s := o.steps[o.si]
	if r.OK() {
		f.nextStep(o, now)
		return
	}
	d := f.devices[s.device]
	if f.expire(o, now) {
		return
	}
	if !r.TimedOut && d != nil && o.attempt <= d.Retries(s.action) && now.Before(o.deadline) {
		// Retry within what is left of the action's timeout.
		o.attempt++
		f.issue(o, d, KindFence, s.action, o.req.Target, now, min(o.deadline.Sub(now), d.Timeout(s.action)), 0)
		return
	}
	reason := fmt.Sprintf("%s %s: %s", s.device, s.action, r)
	if name := o.levels[o.li].name; name != s.device {
		reason = name + ": " + reason
	}
	if o.attempt > 1 {
		reason += fmt.Sprintf(" (after %d attempts)", o.attempt)
	}
	if s.optional {
		o.reasons = append(o.reasons, reason)
		f.nextStep(o, now)
		return
	}
	f.levelFailed(o, now, reason)
}

func (f *Fencer) queryResult(cs *cmdState, r CommandResult, now time.Time) {
	c := cs.cmd
	d := f.devices[c.Device]
	var listed []string
	listOK := false
	if c.Action == AgentList {
		delete(f.listCmd, c.Device)
		if r.OK() {
			listed = ParseListOutput(r.Output)
			listOK = true
			f.lists[c.Device] = listCache{names: listed, at: now}
		}
	}
	for _, oid := range cs.ops {
		o, ok := f.ops[oid]
		if !ok || o.phase != phaseQuery {
			continue
		}
		delete(o.waiting, c.ID)
		switch {
		case c.Action == AgentList && listOK:
			if d != nil && d.CanFenceFromList(o.req.Target, listed) {
				o.capable[c.Device] = true
			} else {
				o.reasons = append(o.reasons, fmt.Sprintf("%s: %s not in its list", c.Device, o.req.Target))
			}
		case c.Action == AgentList && d != nil && d.Supports(AgentStatus):
			// The list action failed: ask about this target instead.
			o.reasons = append(o.reasons, fmt.Sprintf("%s: list: %s", c.Device, r))
			f.issue(o, d, KindQuery, AgentStatus, o.req.Target, now, d.Timeout(AgentStatus), 0)
		case c.Action == AgentStatus && !r.TimedOut && r.Err == "" && CanFenceFromStatus(r.RC):
			o.capable[c.Device] = true
		default:
			o.reasons = append(o.reasons, fmt.Sprintf("%s: %s: %s", c.Device, c.Action, r))
		}
		f.maybeEndQuery(o, now)
	}
}

// expire ends o when its Request.Timeout has passed.
func (f *Fencer) expire(o *op, now time.Time) bool {
	if o.expires.IsZero() || now.Before(o.expires) {
		return false
	}
	reason := fmt.Sprintf("timed out after %s", o.req.Timeout)
	if len(o.reasons) > 0 {
		reason += " (" + strings.Join(o.reasons, "; ") + ")"
	}
	f.finish(o, now, fmt.Errorf("%w: %s: %s", ErrFailed, o.req.Target, reason), o.lastDev, reason)
	return true
}

// Tick handles time passing: operations past their Request.Timeout fail,
// and commands past their deadline count as timed out; both kill what
// they were running (Ready().Cancel).
func (f *Fencer) Tick(now time.Time) {
	for _, id := range f.opIDs() {
		f.expire(f.ops[id], now)
	}
	ids := make([]CmdID, 0, len(f.cmds))
	for id, cs := range f.cmds {
		if now.After(cs.cmd.Deadline) {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		f.ready.Cancel = append(f.ready.Cancel, id)
		f.Result(id, CommandResult{RC: -1, TimedOut: true}, now)
	}
}

// NextDeadline is the earliest command deadline (zero when none): a
// driver may sleep until then instead of ticking.
func (f *Fencer) NextDeadline() time.Time {
	var t time.Time
	for _, o := range f.ops {
		if !o.expires.IsZero() && (t.IsZero() || o.expires.Before(t)) {
			t = o.expires
		}
	}
	for _, cs := range f.cmds {
		if t.IsZero() || cs.cmd.Deadline.Before(t) {
			t = cs.cmd.Deadline
		}
	}
	return t
}

// Cancel ends every operation on target (the node came back cleanly, or
// an operator gave up): they complete failed with ErrCancelled and their
// running commands are abandoned. It returns how many were cancelled.
func (f *Fencer) Cancel(target, reason string, now time.Time) int {
	n := 0
	for _, id := range f.opIDs() {
		o := f.ops[id]
		if !strings.EqualFold(o.req.Target, target) {
			continue
		}
		n++
		if reason == "" {
			reason = "cancelled"
		}
		f.finish(o, now, fmt.Errorf("%w: %s: %s", ErrCancelled, target, reason), o.lastDev, reason)
	}
	return n
}

// finish records o's outcome, abandons its commands and forgets it.
func (f *Fencer) finish(o *op, now time.Time, err error, device, reason string) {
	result := ResultSuccess
	if err != nil {
		result = ResultFailed
	}
	e := Entry{
		// Unique per fencer: its node, the start time (a restarted fencer
		// counts ops from 1 again) and the op number.
		ID:          fmt.Sprintf("%s-%d-%d", f.cfg.Node, o.started.UnixNano(), o.id),
		Target:      o.req.Target,
		Action:      string(o.req.Action),
		Device:      device,
		Result:      result,
		Time:        now,
		Started:     o.started,
		Origin:      o.req.Origin,
		Executioner: f.cfg.Node,
		Client:      o.req.Client,
		Reason:      reason,
	}
	// Commands still running for this op are abandoned; a shared list
	// query keeps running for the other ops waiting on it.
	for id, cs := range f.cmds {
		keep := cs.ops[:0]
		for _, oid := range cs.ops {
			if oid != o.id {
				keep = append(keep, oid)
			}
		}
		cs.ops = keep
		if len(keep) == 0 {
			delete(f.cmds, id)
			if cs.cmd.Kind == KindQuery && cs.cmd.Action == AgentList {
				delete(f.listCmd, cs.cmd.Device)
			}
			f.ready.Cancel = append(f.ready.Cancel, id)
		}
	}
	sort.Slice(f.ready.Cancel, func(i, j int) bool { return f.ready.Cancel[i] < f.ready.Cancel[j] })
	delete(f.ops, o.id)
	f.hist.Merge(e)
	f.ready.History = append(f.ready.History, e)
	f.ready.Done = append(f.ready.Done, Outcome{Op: o.id, Request: o.req, Entry: e, Err: err})
}
