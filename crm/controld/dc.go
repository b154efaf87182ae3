package controld

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"ringmaster/crm/cib"
	"ringmaster/crm/graph"
	"ringmaster/crm/pengine"
	"ringmaster/totem"
)

// dcState is the coordinator's scheduler and transition engine.
//
//	state \ event      | change (membership, quorum, config,       | result of a running action
//	                   | unexpected result, attribute, timer)      |
//	-------------------+-------------------------------------------+------------------------------
//	idle               | schedule → running (or idle: empty graph) | (unsolicited: a change)
//	running            | abort → aborted                           | done/failed; fire what is ready;
//	                   |                                           | failed → aborted; all done → idle
//	aborted            | (stays aborted)                           | when nothing runs → schedule
type dcState struct {
	tr          *transition
	dirty       bool
	reason      string
	nextID      int
	uuid        string
	holdUntil   time.Time // after a failed fencing: no re-plan before
	recheckAt   time.Time
	addingNodes bool
	nextFence   uint64
	lastActions int
	// confirmed holds the keys of successful fencings whose result this
	// DC multicast but has not delivered yet (see fenceDone).
	confirmed map[string]bool
	// deletes counts the history deletions (a graph's delete actions)
	// this DC multicast and has not delivered yet: delivering one is the
	// plan's own step, not a change to abort the transition for.
	deletes map[cleanupMsg]int
}

type actState uint8

const (
	actWaiting actState = iota
	actRunning
	actDone
	actFailed
)

// transition is an incremental execution of one graph: the controller's
// event-driven counterpart of graph.Executor, with the same firing rule
// (every input completed successfully; after an abort only pseudo
// actions) and the same scan order.
type transition struct {
	id      int
	g       *graph.Graph
	state   map[int]actState
	running int
	aborted bool
	fences  map[uint64]int // fence request → action
	targets map[int]totem.NodeID
	// timers: when a running resource action is given up (its timeout
	// plus cluster-delay, as Pacemaker's action timer).
	timers       map[int]time.Time
	clusterDelay time.Duration
	stonithTO    time.Duration
}

func newDC(c *Controller, now time.Time) *dcState {
	return &dcState{uuid: fmt.Sprintf("dc%d-%d", c.self, c.ring.Ring.Seq), recheckAt: now.Add(c.cfg.Recheck), confirmed: map[string]bool{},
		deletes: map[cleanupMsg]int{}}
}

// ownDelete reports whether cl, delivered from this node, is one of the
// DC's history deletions (and forgets it). Delivering one does not abort
// the transition, but the DC plans again after it (replanAfter).
func (d *dcState) ownDelete(cl cleanupMsg) bool {
	if d.deletes[cl] == 0 {
		return false
	}
	if d.deletes[cl]--; d.deletes[cl] == 0 {
		delete(d.deletes, cl)
	}
	return true
}

// replanAfter asks for a new plan once the running transition is over,
// without aborting it.
func (d *dcState) replanAfter(reason string) {
	if !d.dirty {
		d.reason = reason
	}
	d.dirty = true
}

func (d *dcState) markDirty(reason string) {
	d.replanAfter(reason)
	if d.tr != nil {
		d.tr.aborted = true
	}
}

func (d *dcState) deadline() time.Time {
	t := d.recheckAt
	earlier := func(x time.Time) {
		if !x.IsZero() && (t.IsZero() || x.Before(t)) {
			t = x
		}
	}
	earlier(d.holdUntil)
	if d.tr != nil {
		for _, x := range d.tr.timers {
			earlier(x)
		}
	}
	return t
}

// expireTimers fails the running actions whose timer popped: the node
// neither answered nor left. The transition aborts and the scheduler
// decides again (the node's history still says what it knows).
func (d *dcState) expireTimers(c *Controller, now time.Time) {
	if d.tr == nil {
		return
	}
	var ids []int
	for id, at := range d.tr.timers {
		if !now.Before(at) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		delete(d.tr.timers, id)
		a := d.tr.g.Lookup(id)
		d.finish(c, id, false)
		d.markDirty(fmt.Sprintf("action timer of %s on %s popped", a.Key, a.Node))
		c.rd.Events = append(c.rd.Events, Event{Kind: EventTransition, Node: d.tr.targets[id],
			Text: fmt.Sprintf("no result for %s on %s: action timer popped", a.Key, a.Node)})
	}
}

// parseMS reads a Pacemaker duration (crm_get_msec): a number with an
// optional unit ms, s/sec, m/min, h/hr; seconds when there is none.
func parseMS(s string, def time.Duration) time.Duration {
	s = strings.TrimSpace(strings.ToLower(s))
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9') {
		i++
	}
	if i == 0 {
		return def
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil || n > 1<<40 {
		return def
	}
	unit := time.Second
	switch strings.TrimSpace(s[i:]) {
	case "", "s", "sec":
	case "ms", "msec":
		unit = time.Millisecond
	case "m", "min":
		unit = time.Minute
	case "h", "hr":
		unit = time.Hour
	default:
		return def
	}
	return time.Duration(n) * unit
}

// membershipChanged: actions on nodes that left will never report; a
// fencing of a node that came back is abandoned (the new schedule decides
// whether it is still needed). The transition is aborted.
func (d *dcState) membershipChanged(c *Controller, now time.Time) {
	if c.coordinator() != c.self {
		return // SyncDone hands over
	}
	d.markDirty("membership")
	tr := d.tr
	if tr == nil {
		return
	}
	for id, st := range tr.state {
		if st != actRunning {
			continue
		}
		t := tr.targets[id]
		a := tr.g.Lookup(id)
		if a.Kind == graph.KindFence {
			if c.isMember(t) {
				d.finish(c, id, false)
			}
			continue
		}
		// A target that left, or came back through a restart (it is
		// among the joined members), will never report.
		if t != 0 && (!c.isMember(t) || slices.Contains(c.ring.Joined, t)) {
			d.finish(c, id, false)
		}
	}
	for fid, aid := range tr.fences {
		if tr.state[aid] != actRunning {
			delete(tr.fences, fid)
		}
	}
}

// drive runs the DC's loop: re-plan when something changed and nothing
// runs, fire ready actions.
func (c *Controller) drive(now time.Time) {
	d := c.dc
	if d == nil || c.syncing || !c.quorumKnown || c.coordinator() != c.self {
		return
	}
	if !c.startupUntil.IsZero() {
		if now.Before(c.startupUntil) {
			return
		}
		c.startupUntil = time.Time{}
	}
	if !d.recheckAt.IsZero() && !now.Before(d.recheckAt) {
		d.recheckAt = now.Add(d.recheck(c))
		d.markDirty("recheck")
	}
	d.expireTimers(c, now)
	for {
		if d.tr != nil {
			d.fire(c, now)
			if d.tr.running > 0 || (!d.tr.aborted && d.tr.runnable()) {
				return
			}
			c.rd.Events = append(c.rd.Events, Event{Kind: EventTransition, Text: fmt.Sprintf("transition %d complete (aborted=%v)", d.tr.id, d.tr.aborted)})
			if d.tr.aborted {
				d.dirty = true
			}
			d.tr = nil
		}
		if !d.dirty {
			return
		}
		if len(d.confirmed) > 0 {
			// A fencing result of ours is still on its way: the next
			// plan must see the node fenced (else it fences again).
			return
		}
		if !d.holdUntil.IsZero() && now.Before(d.holdUntil) {
			return
		}
		d.holdUntil = time.Time{}
		d.dirty = false
		if !d.schedule(c, now) {
			return
		}
	}
}

// schedule runs the scheduler on the current CIB; it reports whether a
// transition was started.
func (d *dcState) schedule(c *Controller, now time.Time) bool {
	in := c.SchedulerInput(now)
	c.rd.PEInputs = append(c.rd.PEInputs, PEInput{Seq: c.peSeq, CIB: in})
	c.peSeq++
	res, err := pengine.Schedule(in, now, pengine.Options{})
	if err != nil {
		d.lastActions = -1
		c.rd.Events = append(c.rd.Events, Event{Kind: EventSchedulerError, Err: err})
		return false
	}
	d.lastActions = len(res.Graph.Actions)
	if len(res.Graph.Actions) == 0 {
		return false
	}
	d.nextID++
	tr := &transition{id: d.nextID, g: res.Graph, state: map[int]actState{}, fences: map[uint64]int{}, targets: map[int]totem.NodeID{},
		timers: map[int]time.Time{}, clusterDelay: time.Minute, stonithTO: time.Minute}
	for _, kv := range res.Graph.Attrs {
		switch kv[0] {
		case "cluster-delay":
			tr.clusterDelay = parseMS(kv[1], time.Minute)
		case "stonith-timeout":
			tr.stonithTO = parseMS(kv[1], time.Minute)
		}
	}
	for _, a := range res.Graph.Actions {
		tr.state[a.ID] = actWaiting
		if a.NodeID != "" {
			if id, ok := parseNodeID(a.NodeID); ok {
				tr.targets[a.ID] = id
			} else if id, ok := c.nodeByUname(a.Node); ok {
				tr.targets[a.ID] = id
			}
		}
	}
	d.tr = tr
	c.rd.Events = append(c.rd.Events, Event{Kind: EventTransition, Text: fmt.Sprintf("transition %d started (%s)", tr.id, d.reason), Actions: len(res.Graph.Actions)})
	return true
}

// SchedulerInput is the CIB the scheduler runs on at now: the current CIB
// with the quorum, the DC and the execution date on its root (what a saved
// pe-input holds).
func (c *Controller) SchedulerInput(now time.Time) *cib.CIB {
	return SchedulerInputFor(c.cur, c.quorate, c.self, now)
}

// SchedulerInputFor is the scheduler's input on a copy of x (x is not
// changed): the quorum, the DC and the execution date set on its root.
// Anyone holding the CIB plans with it as the DC does (ringctl crm wait).
func SchedulerInputFor(x *cib.CIB, quorate bool, dc totem.NodeID, now time.Time) *cib.CIB {
	in := shallow(x)
	q := "0"
	if quorate {
		q = "1"
	}
	in.Attrs.Set("have-quorum", q)
	in.Attrs.Set("dc-uuid", nodeIDString(dc))
	in.Attrs.Set("execution-date", strconv.FormatInt(now.Unix(), 10))
	return in
}

func (t *transition) canStart(a *graph.Action) bool {
	if t.state[a.ID] != actWaiting {
		return false
	}
	for _, in := range a.Inputs {
		if t.state[in] != actDone {
			return false
		}
	}
	return !t.aborted || a.Kind == graph.KindPseudo
}

func (t *transition) runnable() bool {
	for _, a := range t.g.Actions {
		if t.canStart(a) {
			return true
		}
	}
	return false
}

func (d *dcState) key(a *graph.Action) string {
	return fmt.Sprintf("%d:%d:%d:%s", a.ID, d.tr.id, a.TargetRC(), d.uuid)
}

// parseKey splits a transition key into action, transition and uuid.
func parseKey(k string) (action, transition int, uuid string, ok bool) {
	p := strings.SplitN(k, ":", 4)
	if len(p) != 4 {
		return 0, 0, "", false
	}
	a, err1 := strconv.Atoi(p[0])
	t, err2 := strconv.Atoi(p[1])
	return a, t, p[3], err1 == nil && err2 == nil
}

// fire starts every ready action, in graph order, until nothing more can
// start (pseudo and cluster actions complete at once).
func (d *dcState) fire(c *Controller, now time.Time) {
	tr := d.tr
	for progress := true; progress; {
		progress = false
		for _, a := range tr.g.Actions {
			if !tr.canStart(a) {
				continue
			}
			progress = true
			tr.state[a.ID] = actRunning
			tr.running++
			d.start(c, now, a)
		}
	}
}

func (d *dcState) start(c *Controller, now time.Time, a *graph.Action) {
	target := d.tr.targets[a.ID]
	switch a.Kind {
	case graph.KindPseudo:
		d.finish(c, a.ID, true)
	case graph.KindFence:
		d.nextFence++
		id := d.nextFence
		d.tr.fences[id] = a.ID
		act := a.Meta["stonith_action"]
		if act == "" {
			act = "reboot"
		}
		c.rd.Fences = append(c.rd.Fences, FenceRequest{ID: id, Target: target, Uname: a.Node, Action: act, Timeout: d.tr.stonithTO})
	case graph.KindCluster:
		switch a.Task {
		case "clear_failcount":
			c.send(MsgCleanup, totem.Agreed, (&cleanupMsg{Resource: a.Resource, Node: target, FailcountOnly: true}).encode(), false)
		case "lrm_delete":
			c.send(MsgCleanup, totem.Agreed, (&cleanupMsg{Resource: a.Resource, Node: target}).encode(), false)
		case "do_shutdown":
			if target != 0 && c.isMember(target) {
				c.send(MsgAction, totem.Safe, d.actionMsg(c, a, target).encode(), false)
			}
		}
		// Later actions are sent after these messages, so every node
		// applies them first: they are complete now.
		d.finish(c, a.ID, true)
	default:
		if target == 0 || !c.isMember(target) {
			d.finish(c, a.ID, false)
			return
		}
		switch a.Task {
		case "delete":
			// An orphan's history (a resource no longer configured,
			// stopped): forget it on the node, as Pacemaker's
			// controller erases the lrm_resource. Left in place, every
			// later plan would list the delete again.
			rsc := a.Resource
			if a.HistoryID != "" {
				rsc = a.HistoryID
			}
			cl := cleanupMsg{Resource: rsc, Node: target}
			d.deletes[cl]++
			c.send(MsgCleanup, totem.Agreed, cl.encode(), false)
			d.finish(c, a.ID, true)
			return
		case "meta-data":
			d.finish(c, a.ID, true)
			return
		}
		c.send(MsgAction, totem.Safe, d.actionMsg(c, a, target).encode(), false)
		timeout := 20 * time.Second
		if ms, err := strconv.Atoi(a.Meta["timeout"]); err == nil && ms > 0 {
			timeout = time.Duration(ms) * time.Millisecond
		}
		d.tr.timers[a.ID] = now.Add(timeout + d.tr.clusterDelay)
	}
}

// actionMsg is the order for the target. An anonymous clone instance
// ("db:0") runs and is recorded under the configured resource's id ("db",
// the action's HistoryID), as Pacemaker's executor does: the agent sees
// OCF_RESOURCE_INSTANCE=db, so crm_attribute --promotion sets master-db,
// and its state files do not depend on which instance a node got.
func (d *dcState) actionMsg(c *Controller, a *graph.Action, target totem.NodeID) *actionMsg {
	rsc, key := a.Resource, a.Key
	if a.HistoryID != "" && a.HistoryID != a.Resource {
		rsc = a.HistoryID
		if rest, ok := strings.CutPrefix(a.Key, a.Resource+"_"); ok {
			key = a.HistoryID + "_" + rest
		}
	}
	return &actionMsg{Ring: c.ring.Ring, Key: d.key(a), Target: target, Task: a.Task, OpKey: key, Resource: rsc,
		Class: a.Class, Provider: a.Provider, Type: a.Type, Node: a.Node, IntervalMS: a.IntervalMS, Meta: a.Meta, Params: a.Params}
}

func (d *dcState) finish(c *Controller, id int, ok bool) {
	tr := d.tr
	if tr == nil || tr.state[id] != actRunning {
		return
	}
	tr.running--
	delete(tr.timers, id)
	if ok {
		tr.state[id] = actDone
		return
	}
	tr.state[id] = actFailed
	tr.aborted = true
	d.dirty = true
	if d.reason == "" {
		d.reason = "action failed"
	}
}

// result matches an operation result with the running transition. A
// result of anything else (a recurring monitor's later failure, an
// action of an earlier DC) is a change that needs a new plan.
func (d *dcState) result(c *Controller, now time.Time, sender totem.NodeID, r *resultMsg) {
	aid, tid, uuid, ok := parseKey(r.Key)
	tr := d.tr
	if ok && tr != nil && uuid == d.uuid && tid == tr.id && tr.state[aid] == actRunning && tr.targets[aid] == sender {
		a := tr.g.Lookup(aid)
		if r.IntervalMS > 0 && a.IntervalMS == 0 {
			return
		}
		success := r.Cancelled || (r.OpStatus == 0 && r.RC == a.TargetRC())
		d.finish(c, aid, success)
		if !success {
			d.markDirty(fmt.Sprintf("%s_%s_%d on %s returned %d", r.Resource, r.Task, r.IntervalMS, c.uname(sender), r.RC))
		}
		return
	}
	if r.Cancelled {
		return
	}
	if r.OpStatus == 0 && r.RC == r.TargetRC && r.IntervalMS == 0 && uuid == d.uuid {
		// A late result of one of our own earlier transitions that
		// went as expected.
		return
	}
	d.markDirty(fmt.Sprintf("%s_%s_%d on %s returned %d", r.Resource, r.Task, r.IntervalMS, c.uname(sender), r.RC))
}

// lost: our own action message reached the ring only after the ring it
// was meant for had gone, so every node dropped it.
func (d *dcState) lost(c *Controller, key string) {
	aid, tid, uuid, ok := parseKey(key)
	if ok && d.tr != nil && uuid == d.uuid && tid == d.tr.id {
		d.finish(c, aid, false)
	}
}

// fenceDone: the fencer answered; the result goes to every node first.
//
// A success completes the fencing action at once, so the actions ordered
// after it go out right behind the result instead of one delivery later
// (on the failover path that is a token rotation, 3–10 ms). This keeps
// "fenced before recovered" on every node: the fencer confirmed the
// fencing before anything is sent, and one sender's messages are
// delivered in the order sent (Totem's total order; a message that is
// delivered implies every earlier one of its sender was), so each node,
// the one that starts the resource included, applies the result before
// the action. If the ring changes in between, the result is still
// delivered on the next ring and the action is dropped as sent for a
// dead ring (lost). Until the DC itself has delivered the result it
// does not plan again (drive): a plan made on a CIB that still shows the
// node unclean would fence it again.
//
// A failure completes the action only when delivered, as before: the
// retry hold starts then.
func (d *dcState) fenceDone(c *Controller, now time.Time, res FenceResult) {
	tr := d.tr
	if tr == nil {
		return
	}
	aid, ok := tr.fences[res.ID]
	if !ok || tr.state[aid] != actRunning {
		return
	}
	a := tr.g.Lookup(aid)
	act := a.Meta["stonith_action"]
	if act == "" {
		act = "reboot"
	}
	m := &fenceMsg{Key: d.key(a), Target: tr.targets[aid], Uname: a.Node, Action: act, OK: res.OK, Reason: res.Reason, Time: now.Unix()}
	c.send(MsgFenceResult, totem.Agreed, m.encode(), false)
	if res.OK {
		d.confirmed[m.Key] = true
		d.completeFence(c, aid, true)
	}
}

// completeFence ends the transition's fencing action aid: the fencer's
// request for it is no longer outstanding.
func (d *dcState) completeFence(c *Controller, aid int, ok bool) {
	for fid, a := range d.tr.fences {
		if a == aid {
			delete(d.tr.fences, fid)
		}
	}
	d.finish(c, aid, ok)
}

func (d *dcState) fenceResult(c *Controller, now time.Time, sender totem.NodeID, f *fenceMsg) {
	if sender != c.self {
		d.markDirty("fencing by another node")
		return
	}
	if d.confirmed[f.Key] {
		// Completed when the fencer confirmed it (fenceDone).
		delete(d.confirmed, f.Key)
		return
	}
	aid, tid, uuid, ok := parseKey(f.Key)
	tr := d.tr
	if !ok || tr == nil || uuid != d.uuid || tid != tr.id || tr.state[aid] != actRunning {
		d.markDirty("fencing result")
		return
	}
	d.completeFence(c, aid, f.OK)
	if !f.OK {
		d.markDirty("fencing of " + f.Uname + " failed")
		// Retry, but not in a tight loop against a broken device.
		d.holdUntil = now.Add(c.cfg.FenceRetry)
	}
}

// recheck is cluster-recheck-interval from the CIB (crm_config), else
// Config.Recheck; 0 disables it (as in Pacemaker) and leaves a day.
func (d *dcState) recheck(c *Controller) time.Duration {
	for _, set := range c.cur.Config.CrmConfig {
		for _, p := range set.Pairs {
			if p.Name == "cluster-recheck-interval" && p.HasValue {
				if v := parseMS(p.Value, -1); v > 0 {
					return v
				} else if v == 0 {
					return 24 * time.Hour
				}
			}
		}
	}
	return c.cfg.Recheck
}

// addMissingNodes adds a <node> entry for members the configuration does
// not list yet (Pacemaker adds nodes as they join), as a configuration
// change ordered like any other.
func (d *dcState) addMissingNodes(c *Controller) {
	if d.addingNodes {
		return
	}
	have := map[string]bool{}
	for _, n := range c.cur.Config.Nodes {
		have[n.ID] = true
	}
	var missing []totem.NodeID
	for _, id := range c.ring.Members {
		if !have[nodeIDString(id)] {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return
	}
	slices.Sort(missing)
	cfg := c.cur.ConfigElement()
	if cfg == nil {
		return
	}
	nodes := cfg.Child("nodes")
	if nodes == nil {
		nodes = &cib.Element{Name: "nodes"}
		cfg.Children = append(cfg.Children, nodes)
	}
	for _, id := range missing {
		nodes.Children = append(nodes.Children, &cib.Element{Name: "node", Attrs: cib.Attrs{
			{Name: "id", Value: nodeIDString(id)}, {Name: "uname", Value: c.uname(id)}, {Name: "type", Value: "member"}}})
	}
	root := &cib.Element{Name: "cib", Attrs: c.cur.Attrs.Clone(), Children: []*cib.Element{cfg}}
	var b strings.Builder
	if err := root.Write(&b, 0); err != nil {
		return
	}
	v := c.Version()
	m := &configMsg{Base: v, CIB: []byte(b.String())}
	d.addingNodes = true
	c.send(MsgConfig, totem.Agreed, m.encode(), false)
}

// PendingActions lists the DC's running actions ("KEY on NODE"), for
// status displays and diagnostics.
func (c *Controller) PendingActions() []string {
	if c.dc == nil || c.dc.tr == nil {
		return nil
	}
	var out []string
	for _, a := range c.dc.tr.g.Actions {
		if c.dc.tr.state[a.ID] == actRunning {
			out = append(out, fmt.Sprintf("%s on %s", a.Key, a.Node))
		}
	}
	return out
}
