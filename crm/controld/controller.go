package controld

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"ringmaster/crm/cib"
	"ringmaster/totem"
)

// Defaults.
const (
	// DefaultMaxPEInputs bounds the saved scheduler inputs, as Pacemaker's
	// pe-input-series-max (4000) does; 1000 files of a small cluster are a
	// few MB and cover days of history.
	DefaultMaxPEInputs = 1000
	// DefaultFenceRetry is how long the DC waits after a failed fencing
	// before it schedules it again: long enough not to hammer a fence
	// device that is down, short enough to recover soon after it is back.
	DefaultFenceRetry = 5 * time.Second
	// DefaultStartupWait is dc-deadtime: a node that just started and has
	// not yet been in a ring with anyone else does not coordinate for this
	// long. Alone in its first ring it would otherwise find every other
	// node "lost" and fence it (with no-quorum-policy=ignore, or a
	// two-node cluster), and the victim, restarting, would do the same.
	DefaultStartupWait = 20 * time.Second
	// DefaultRecheck is cluster-recheck-interval: the DC re-runs the
	// scheduler this often even when nothing happened (failure-timeout
	// expiries).
	DefaultRecheck = 15 * time.Minute
)

// Config configures a Controller.
type Config struct {
	// Node is this node's ID.
	Node totem.NodeID
	// Names maps node IDs to node names (the nodelist's name); a node
	// without one is named by its <node> entry in the CIB, else "node<ID>".
	Names map[totem.NodeID]string
	// CIB is the CIB persisted in state_dir (nil: an empty one). This
	// node's own operation history and transient attributes are dropped:
	// after a restart nothing runs here that the lrmd knows of, and probes
	// find what does.
	CIB *cib.CIB
	// MaxPEInputs bounds the saved scheduler inputs (DefaultMaxPEInputs).
	MaxPEInputs int
	// PEInputSeq is the sequence number of the first scheduler input saved
	// (the driver continues after the newest file it finds).
	PEInputSeq int
	// FenceRetry (DefaultFenceRetry) and Recheck (DefaultRecheck).
	FenceRetry time.Duration
	Recheck    time.Duration
	// StartupWait (DefaultStartupWait; negative: none).
	StartupWait time.Duration
}

// Controller is the pure core of the resource manager on one node: the
// replicated CIB, the local operation dispatcher and, on the DC, the
// scheduler and transition engine. Not safe for concurrent use: the
// driver calls it from one goroutine (the executive's lock).
type Controller struct {
	cfg  Config
	self totem.NodeID

	cur        *cib.CIB
	gen        map[totem.NodeID]uint64
	cibChanged bool

	// Membership.
	ring        totem.ConfChange // last regular configuration
	haveRing    bool
	trans       []totem.NodeID // members of the last transitional configuration
	syncing     bool
	exchange    bool // this sync exchanges state (members were added)
	syncMsgs    map[totem.NodeID]*syncMsg
	held        []Message // state updates delivered during sync
	quorate     bool
	quorumKnown bool // SetQuorum was called since the last regular configuration
	fresh       bool // no sync completed since start
	nextReq     uint64
	pendingReqs map[uint64]bool
	// cleanups are this node's Cleanups on their way round the ring.
	cleanups []localCleanup

	// Local operations.
	nextOpID uint64
	callID   int
	ops      map[uint64]*localOp

	// DC (nil unless this node coordinates its partition).
	dc *dcState

	peSeq int
	rd    Ready
	// startupUntil: no coordination before, unless this node has been in
	// a ring with others (zero then).
	startupUntil time.Time
}

// localOp is an operation this node's lrmd runs.
type localOp struct {
	op     Op
	key    string // transition key
	target int
	digest string
	callID int
	// reported: the first result went out (recurring ops keep running).
	reported bool
	lastRC   int
	lastStat int
}

// New creates a controller; now is the current time.
func New(cfg Config, now time.Time) (*Controller, error) {
	if cfg.Node == 0 {
		return nil, fmt.Errorf("controld: node id 0")
	}
	if cfg.MaxPEInputs <= 0 {
		cfg.MaxPEInputs = DefaultMaxPEInputs
	}
	if cfg.FenceRetry <= 0 {
		cfg.FenceRetry = DefaultFenceRetry
	}
	if cfg.Recheck <= 0 {
		cfg.Recheck = DefaultRecheck
	}
	if cfg.StartupWait == 0 {
		cfg.StartupWait = DefaultStartupWait
	}
	c := &Controller{
		cfg: cfg, self: cfg.Node, gen: map[totem.NodeID]uint64{},
		syncing: true, fresh: true, ops: map[uint64]*localOp{}, pendingReqs: map[uint64]bool{},
		peSeq: cfg.PEInputSeq, callID: 0,
	}
	if cfg.StartupWait > 0 {
		c.startupUntil = now.Add(cfg.StartupWait)
	}
	if cfg.CIB != nil {
		c.cur = shallow(cfg.CIB)
	} else {
		c.cur = emptyCIB()
	}
	if c.cur.Status == nil {
		c.cur.Status = &cib.Status{}
	}
	// Our own history is rebuilt from what the lrmd reports.
	c.editNode(c.self, func(ns *cib.NodeState) bool {
		ns.ClearHistory()
		ns.ClearTransient()
		return true
	})
	return c, nil
}

// CIB returns the current CIB (an immutable snapshot).
func (c *Controller) CIB() *cib.CIB { return c.cur }

// Version returns the current CIB version.
func (c *Controller) Version() Version { return versionOf(c.cur) }

// Status summarises the controller's view.
type Status struct {
	Node    totem.NodeID
	Ring    totem.RingID
	Members []totem.NodeID
	Synced  bool
	Quorate bool
	// DC is the designated controller of this partition: its lowest
	// member, when the partition is quorate (0 otherwise).
	DC totem.NodeID
	// Transition is the DC's running transition (0 when idle or not DC).
	Transition int
	Pending    int
	Version    Version
}

// Status returns the controller's view of the cluster.
func (c *Controller) Status() Status {
	s := Status{Node: c.self, Ring: c.ring.Ring, Members: slices.Clone(c.ring.Members), Synced: !c.syncing,
		Quorate: c.quorate, Version: c.Version()}
	if c.haveRing && c.quorate && len(c.ring.Members) > 0 {
		s.DC = c.ring.Members[0]
	}
	if c.dc != nil && c.dc.tr != nil {
		s.Transition = c.dc.tr.id
		s.Pending = c.dc.tr.running
	}
	return s
}

// Idle reports whether this node coordinates its partition and has
// nothing to do: synced, no transition in flight and nothing to re-plan.
func (c *Controller) Idle() bool {
	return c.dc != nil && !c.syncing && c.dc.tr == nil && !c.dc.dirty
}

// LastGraphActions is the number of actions of the DC's last schedule.
func (c *Controller) LastGraphActions() int {
	if c.dc == nil {
		return -1
	}
	return c.dc.lastActions
}

func (c *Controller) coordinator() totem.NodeID {
	if !c.haveRing || len(c.ring.Members) == 0 {
		return 0
	}
	return c.ring.Members[0]
}

func (c *Controller) isMember(n totem.NodeID) bool {
	return slices.Contains(c.ring.Members, n)
}

// uname names a node.
func (c *Controller) uname(id totem.NodeID) string {
	if n, ok := c.cfg.Names[id]; ok && n != "" {
		return n
	}
	sid := nodeIDString(id)
	for _, n := range c.cur.Config.Nodes {
		if n.ID == sid && n.Uname != "" {
			return n.Uname
		}
	}
	return "node" + sid
}

// nodeByUname finds a node's ID from its name (status, graph actions).
func (c *Controller) nodeByUname(uname string) (totem.NodeID, bool) {
	for id, n := range c.cfg.Names {
		if strings.EqualFold(n, uname) {
			return id, true
		}
	}
	for _, n := range c.cur.Config.Nodes {
		if strings.EqualFold(n.Uname, uname) {
			return parseNodeID(n.ID)
		}
	}
	if strings.HasPrefix(uname, "node") {
		return parseNodeID(strings.TrimPrefix(uname, "node"))
	}
	return 0, false
}

// editNode changes one node's state copy-on-write; f reports whether it
// changed anything. Every change bumps num_updates and the node's
// generation.
func (c *Controller) editNode(id totem.NodeID, f func(ns *cib.NodeState) bool) {
	sid := nodeIDString(id)
	idx := -1
	for i, ns := range c.cur.Status.Nodes {
		if ns.ID() == sid {
			idx = i
			break
		}
	}
	var ns *cib.NodeState
	if idx >= 0 {
		ns = cloneNodeState(c.cur.Status.Nodes[idx])
	} else {
		ns = &cib.NodeState{Attrs: cib.Attrs{{Name: "id", Value: sid}, {Name: "uname", Value: c.uname(id)}}}
	}
	if !f(ns) && idx >= 0 {
		return
	}
	n := shallow(c.cur)
	st := &cib.Status{Nodes: slices.Clone(c.cur.Status.Nodes), Other: c.cur.Status.Other}
	if idx >= 0 {
		st.Nodes[idx] = ns
	} else {
		st.Nodes = append(st.Nodes, ns)
	}
	n.Status = st
	v := versionOf(n)
	v.NumUpdates++
	setVersion(&n.Attrs, v)
	c.cur = n
	c.gen[id]++
	c.cibChanged = true
}

func (c *Controller) nodeState(id totem.NodeID) *cib.NodeState {
	sid := nodeIDString(id)
	for _, ns := range c.cur.Status.Nodes {
		if ns.ID() == sid {
			return ns
		}
	}
	return nil
}

// editResource changes one resource history of a node copy-on-write.
func (c *Controller) editResource(id totem.NodeID, rsc, class, provider, typ string, f func(r *cib.LRMResource)) {
	c.editNode(id, func(ns *cib.NodeState) bool {
		for i, r := range ns.Resources {
			if r.ID() == rsc {
				cr := cloneLRMResource(r)
				f(cr)
				ns.Resources[i] = cr
				return true
			}
		}
		r := ns.EnsureResource(rsc, class, typ, provider)
		f(r)
		return true
	})
}

// ---- Membership and sync ----

// ConfChange reports a configuration installed by the ring (transitional
// or regular), in delivery order. A regular configuration starts the
// sync: the messages it needs go out in this call's Ready (send them with
// exec.Host.SendReliable); the driver calls SyncDone when the executive's
// barrier completes.
func (c *Controller) ConfChange(now time.Time, cc totem.ConfChange) {
	if cc.Kind == totem.Transitional {
		c.trans = slices.Clone(cc.Members)
		return
	}
	// A sync interrupted by this configuration: the status updates held
	// for after its merge are applied now, so that this node's own state,
	// announced below, includes them (every member of the interrupted
	// ring delivered the same ones). If the interrupted sync was an
	// exchange, its merge never happened: this one must exchange too
	// (all members of the old ring were in that same sync and decide
	// alike).
	interrupted := c.syncing && c.haveRing
	mustExchange := interrupted && c.exchange
	if interrupted && len(c.held) > 0 {
		held := c.held
		c.held = nil
		c.syncing = false
		for _, m := range held {
			c.deliver(now, m)
		}
	}
	c.ring = totem.ConfChange{Kind: cc.Kind, Ring: cc.Ring, Members: slices.Clone(cc.Members),
		Left: slices.Clone(cc.Left), Joined: slices.Clone(cc.Joined)}
	slices.Sort(c.ring.Members)
	c.haveRing = true
	trans := c.trans
	c.trans = nil
	if trans == nil {
		trans = []totem.NodeID{c.self}
	}
	c.syncing = true
	c.quorumKnown = false
	c.syncMsgs = map[totem.NodeID]*syncMsg{}
	c.held = nil
	// Members that stayed together hold identical CIBs (virtual
	// synchrony); only when members were added is there anything to
	// agree on.
	c.exchange = len(cc.Joined) > 0 || c.fresh || mustExchange
	if c.dc != nil {
		c.dc.membershipChanged(c, now)
	}
	if !c.exchange {
		return
	}
	sm := &syncMsg{Ring: cc.Ring, Version: c.Version(), Digest: configDigest(c.cur)}
	if own := c.nodeState(c.self); own != nil {
		sm.Own = nodeStateXML(own)
	} else {
		sm.Own = nodeStateXML(&cib.NodeState{Attrs: cib.Attrs{{Name: "id", Value: nodeIDString(c.self)}, {Name: "uname", Value: c.uname(c.self)}}})
	}
	// The lowest member of our transitional configuration speaks for the
	// old ring: its configuration and its view of the nodes outside.
	if slices.Min(trans) == c.self {
		sm.Config = configXML(c.cur)
		for _, ns := range c.cur.Status.Nodes {
			id, ok := parseNodeID(ns.ID())
			if !ok || slices.Contains(c.ring.Members, id) {
				continue
			}
			sm.Others = append(sm.Others, nodeGen{Node: id, Gen: c.gen[id], State: nodeStateXML(ns)})
		}
	}
	c.send(MsgSync, totem.Agreed, sm.encode(), true)
}

// SetQuorum reports the partition's quorum (votequorum), after every
// regular configuration and whenever it changes. The DC does not schedule
// for a new membership before it knows that membership's quorum: a stale
// "quorate" in a partition that just lost the majority would fence the
// other side. (In ringd, register crm after votequorum so that quorum is
// known when crm's SyncDone runs.)
func (c *Controller) SetQuorum(now time.Time, quorate bool) {
	known := c.quorumKnown
	c.quorumKnown = true
	if c.quorate == quorate {
		if !known {
			c.drive(now)
		}
		return
	}
	c.quorate = quorate
	if c.dc != nil {
		c.dc.markDirty("quorum changed")
	}
	c.drive(now)
}

// SyncDone is called when every member's sync messages were delivered
// (the executive's barrier): at the same point of the stream on every
// member.
func (c *Controller) SyncDone(now time.Time) {
	if !c.syncing || !c.haveRing {
		return
	}
	if c.exchange {
		c.merge()
	}
	for _, id := range c.ring.Members {
		c.editNode(id, func(ns *cib.NodeState) bool {
			// A node the DC let go (do_shutdown) stays expected down.
			expected := "member"
			if ns.Attrs.Value("expected") == "down" && shuttingDown(ns) {
				expected = "down"
			}
			if ns.Attrs.Value("in_ccm") == "true" && ns.Attrs.Value("crmd") == "online" &&
				ns.Attrs.Value("join") == "member" && ns.Attrs.Value("expected") == expected {
				return false
			}
			setMembership(ns, true)
			ns.Attrs.Set("expected", expected)
			return true
		})
	}
	for _, ns := range c.cur.Status.Nodes {
		id, ok := parseNodeID(ns.ID())
		if !ok || c.isMember(id) || membershipIs(ns, false) {
			continue
		}
		c.editNode(id, func(ns *cib.NodeState) bool { setMembership(ns, false); return true })
	}
	c.syncing = false
	c.fresh = false
	c.syncMsgs = nil
	if len(c.ring.Members) > 1 {
		c.startupUntil = time.Time{}
	}
	held := c.held
	c.held = nil
	if c.coordinator() == c.self {
		if c.dc == nil {
			c.dc = newDC(c, now)
			c.dc.recheckAt = now.Add(c.dc.recheck(c))
		}
		c.dc.markDirty("membership")
		c.dc.holdUntil = time.Time{}
		c.dc.addMissingNodes(c)
	} else {
		c.dc = nil
	}
	for _, m := range held {
		c.deliver(now, m)
	}
	c.drive(now)
}

// merge agrees on the CIB after a membership change that added members:
// the newest configuration (highest version, then digest, then lowest
// sender), each member's own state as it announced it, and for the nodes
// outside the membership the state with the highest generation.
func (c *Controller) merge() {
	var win *syncMsg
	var winFrom totem.NodeID
	maxUpdates := int64(0)
	for _, id := range c.ring.Members {
		m := c.syncMsgs[id]
		if m == nil {
			continue
		}
		if m.Version.NumUpdates > maxUpdates {
			maxUpdates = m.Version.NumUpdates
		}
		if len(m.Config) == 0 {
			continue
		}
		if win == nil || better(m, id, win, winFrom) {
			win, winFrom = m, id
		}
	}
	base := c.cur
	if win != nil && !bytes.Equal(win.Digest, configDigest(c.cur)) {
		parsed, err := cib.Parse(bytes.NewReader(win.Config))
		if err == nil {
			base = parsed
		}
	}
	// The winner's configuration, our root attributes (versions below).
	n := shallow(base)
	n.Attrs = c.cur.Attrs.Clone()
	n.Status = c.cur.Status
	v := versionOf(c.cur)
	if win != nil {
		v.AdminEpoch, v.Epoch = win.Version.AdminEpoch, win.Version.Epoch
	}
	if maxUpdates > v.NumUpdates {
		v.NumUpdates = maxUpdates
	}
	v.NumUpdates++
	setVersion(&n.Attrs, v)

	// Status: the members' own states, then the best view of the others.
	states := map[totem.NodeID]*cib.NodeState{}
	gens := map[totem.NodeID]uint64{}
	from := map[totem.NodeID]totem.NodeID{}
	for _, id := range c.ring.Members {
		m := c.syncMsgs[id]
		if m == nil {
			if ns := c.nodeState(id); ns != nil {
				states[id] = ns
			}
			continue
		}
		if ns, err := parseNodeState(m.Own); err == nil && ns.ID() == nodeIDString(id) {
			states[id] = ns
			gens[id] = c.gen[id] + 1
		}
	}
	for _, id := range c.ring.Members {
		m := c.syncMsgs[id]
		if m == nil {
			continue
		}
		for _, o := range m.Others {
			if c.isMember(o.Node) {
				continue
			}
			old, seen := gens[o.Node]
			if seen && (o.Gen < old || (o.Gen == old && from[o.Node] < id)) {
				continue
			}
			ns, err := parseNodeState(o.State)
			if err != nil || ns.ID() != nodeIDString(o.Node) {
				continue
			}
			states[o.Node], gens[o.Node], from[o.Node] = ns, o.Gen, id
		}
	}
	// Nodes nobody spoke about keep our copy (it can only come from a
	// persisted CIB of a node that was alone).
	for _, ns := range c.cur.Status.Nodes {
		if id, ok := parseNodeID(ns.ID()); ok {
			if _, have := states[id]; !have {
				states[id] = ns
			}
		}
	}
	ids := make([]totem.NodeID, 0, len(states))
	for id := range states {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	st := &cib.Status{Other: c.cur.Status.Other}
	for _, id := range ids {
		st.Nodes = append(st.Nodes, states[id])
		if g, ok := gens[id]; ok {
			c.gen[id] = g
		}
	}
	n.Status = st
	c.cur = n
	c.cibChanged = true
}

// better reports whether sync state a (from node an) beats b (from bn).
func better(a *syncMsg, an totem.NodeID, b *syncMsg, bn totem.NodeID) bool {
	if a.Version != b.Version {
		return b.Version.Less(a.Version)
	}
	if d := bytes.Compare(a.Digest, b.Digest); d != 0 {
		return d > 0
	}
	return an < bn
}

func shuttingDown(ns *cib.NodeState) bool {
	v, ok := ns.TransientAttr("shutdown")
	return ok && v != "0" && v != ""
}

// ---- Delivery ----

// Deliver hands over a crm message in total order. Undecodable messages
// are dropped (every node drops the same ones).
func (c *Controller) Deliver(now time.Time, m Message) {
	c.deliver(now, m)
	c.drive(now)
}

func (c *Controller) deliver(now time.Time, m Message) {
	switch m.ID {
	case MsgSync:
		sm, err := decodeSync(m.Payload)
		if err != nil || !c.syncing || sm.Ring != c.ring.Ring || !c.isMember(m.Sender) {
			return
		}
		c.syncMsgs[m.Sender] = sm
	case MsgConfig:
		c.applyConfig(now, m)
	case MsgAction:
		am, err := decodeAction(m.Payload)
		if err != nil {
			return
		}
		c.applyAction(now, m.Sender, am)
	case MsgOpResult, MsgFenceResult, MsgAttr, MsgCleanup:
		if c.syncing {
			// The merge at SyncDone rebuilds the status from what was
			// announced; updates sent after the announcements are
			// applied on top of it.
			c.held = append(c.held, m)
			return
		}
		switch m.ID {
		case MsgOpResult:
			if r, err := decodeResult(m.Payload); err == nil {
				c.applyResult(now, m.Sender, r)
			}
		case MsgFenceResult:
			if f, err := decodeFence(m.Payload); err == nil {
				c.applyFence(now, m.Sender, f)
			}
		case MsgAttr:
			if a, err := decodeAttr(m.Payload); err == nil {
				c.editNode(m.Sender, func(ns *cib.NodeState) bool {
					if a.Delete {
						return removeTransient(ns, func(n string) bool { return n == a.Name })
					}
					if v, ok := ns.TransientAttr(a.Name); ok && v == a.Value {
						return false
					}
					ns.SetTransientAttr(a.Name, a.Value)
					return true
				})
				if c.dc != nil {
					c.dc.markDirty("attribute " + a.Name)
				}
			}
		case MsgCleanup:
			if cl, err := decodeCleanup(m.Payload); err == nil {
				changed := c.applyCleanup(cl)
				if m.Sender == c.self {
					c.cleanupDelivered(*cl)
				}
				switch {
				case c.dc == nil:
				case !(m.Sender == c.self && (cl.FailcountOnly || c.dc.ownDelete(*cl))):
					c.dc.markDirty("cleanup " + cl.Resource)
				case changed && !cl.FailcountOnly:
					// One of the plan's own deletes: the transition
					// carrying it goes on, but the next plan must see
					// the history gone (after an agent change, the
					// nodes whose history was erased are probed with
					// the new agent).
					c.dc.replanAfter("history of " + cl.Resource + " deleted")
				}
			}
		}
	}
}

func (c *Controller) applyConfig(now time.Time, m Message) {
	cm, err := decodeConfig(m.Payload)
	if err != nil {
		return
	}
	reply := func(err error) {
		if m.Sender == c.self && c.pendingReqs[cm.Req] {
			delete(c.pendingReqs, cm.Req)
			c.rd.Events = append(c.rd.Events, Event{Kind: EventConfigApplied, Req: cm.Req, Err: err})
		}
		if c.dc != nil {
			c.dc.addingNodes = false
		}
	}
	if c.syncing {
		reply(ErrTryAgain)
		return
	}
	cur := versionOf(c.cur)
	if !cm.Unconditional && (cm.Base.AdminEpoch != cur.AdminEpoch || cm.Base.Epoch != cur.Epoch) {
		reply(fmt.Errorf("%w: based on %d.%d, now %s", ErrConflict, cm.Base.AdminEpoch, cm.Base.Epoch, cur))
		return
	}
	parsed, err := cib.Parse(bytes.NewReader(cm.CIB))
	if err != nil {
		reply(fmt.Errorf("%w: %v", ErrInvalid, err))
		return
	}
	nv := versionOf(parsed)
	v := Version{AdminEpoch: max(cur.AdminEpoch, nv.AdminEpoch), Epoch: cur.Epoch + 1}
	if nv.AdminEpoch == v.AdminEpoch && nv.Epoch > v.Epoch {
		v.Epoch = nv.Epoch
	}
	n := *parsed
	n.Attrs = c.cur.Attrs.Clone()
	n.Status = c.cur.Status
	setVersion(&n.Attrs, v)
	c.cur = &n
	c.cibChanged = true
	reply(nil)
	if c.dc != nil {
		c.dc.markDirty("configuration")
	}
}

// applyAction records an action the DC sent (on every node) and runs it
// when it is ours. Only the coordinator of the ring the action was sent
// in may send actions; the ring check makes every node that delivers it
// (in the regular or the transitional configuration) decide alike.
func (c *Controller) applyAction(now time.Time, sender totem.NodeID, am *actionMsg) {
	if !c.haveRing || am.Ring != c.ring.Ring || sender != c.coordinator() {
		if sender == c.self && c.dc != nil {
			c.dc.lost(c, am.Key)
		}
		return
	}
	switch am.Task {
	case "do_shutdown":
		// The DC lets the node go: it is expected down from now on, so
		// its leaving is clean (no fencing).
		c.editNode(am.Target, func(ns *cib.NodeState) bool {
			if ns.Attrs.Value("expected") == "down" {
				return false
			}
			ns.Attrs.Set("expected", "down")
			return true
		})
	case "start", "promote":
		// Recorded as pending so that a DC that takes over sees it.
		m := &resultMsg{Task: am.Task, IntervalMS: am.IntervalMS, Key: am.Key, Time: now.Unix(), Digest: am.Meta["op-digest"]}
		c.editResource(am.Target, am.Resource, am.Class, am.Provider, am.Type, func(r *cib.LRMResource) {
			recordOp(r, m, am.Node, true)
		})
	}
	if am.Target != c.self {
		return
	}
	c.runLocal(now, am)
}

func (c *Controller) applyResult(now time.Time, sender totem.NodeID, r *resultMsg) {
	if r.Resource == "" {
		return
	}
	if r.Task == "notify" {
		// As in Pacemaker, a notification's result completes its action
		// but is neither recorded in the history (it would replace the
		// start or promote that says what runs) nor counted as a failure.
		if c.dc != nil {
			c.dc.result(c, now, sender, r)
		}
		return
	}
	uname := c.uname(sender)
	c.editResource(sender, r.Resource, r.Class, r.Provider, r.Type, func(lr *cib.LRMResource) {
		if r.Cancelled {
			removeOp(lr, fmt.Sprintf("%s_%s_%d", r.Resource, r.Task, r.IntervalMS))
			return
		}
		recordOp(lr, r, uname, false)
	})
	failed := r.OpStatus != 0 || r.RC != r.TargetRC
	probe := r.Task == "monitor" && r.IntervalMS == 0
	if failed && !r.Cancelled && !(probe && r.OpStatus == 0 && (r.RC == 0 || r.RC == 7 || r.RC == 8)) {
		count, last := failureAttrs(r.Resource, r.Task, r.IntervalMS)
		c.editNode(sender, func(ns *cib.NodeState) bool {
			ns.SetTransientAttr(count, "value++")
			ns.SetTransientAttr(last, strconv.FormatInt(r.Time, 10))
			return true
		})
	}
	if c.dc != nil {
		c.dc.result(c, now, sender, r)
	}
}

func (c *Controller) applyFence(now time.Time, sender totem.NodeID, f *fenceMsg) {
	if f.OK {
		c.rd.Events = append(c.rd.Events, Event{Kind: EventFenced, Node: f.Target, Text: f.Action})
		if f.Action != "on" && !c.isMember(f.Target) {
			c.editNode(f.Target, func(ns *cib.NodeState) bool {
				setMembership(ns, false)
				ns.Attrs.Set("expected", "down")
				ns.ClearHistory()
				ns.ClearTransient()
				return true
			})
		}
	} else {
		c.rd.Events = append(c.rd.Events, Event{Kind: EventFenceFailed, Node: f.Target, Text: f.Reason})
	}
	if c.dc != nil {
		c.dc.fenceResult(c, now, sender, f)
	}
}

// applyCleanup reports whether it changed anything.
func (c *Controller) applyCleanup(cl *cleanupMsg) bool {
	did := false
	for _, ns := range c.cur.Status.Nodes {
		id, ok := parseNodeID(ns.ID())
		if !ok || (cl.Node != 0 && cl.Node != id) {
			continue
		}
		prefix := []string{"fail-count-" + cl.Resource + "#", "last-failure-" + cl.Resource + "#"}
		gen := c.gen[id]
		c.editNode(id, func(ns *cib.NodeState) bool {
			changed := removeTransient(ns, func(n string) bool {
				return strings.HasPrefix(n, prefix[0]) || strings.HasPrefix(n, prefix[1])
			})
			if cl.FailcountOnly {
				return changed
			}
			out := ns.Resources[:0]
			for _, r := range ns.Resources {
				if r.ID() == cl.Resource {
					changed = true
					continue
				}
				out = append(out, r)
			}
			ns.Resources = out
			return changed
		})
		did = did || c.gen[id] != gen
	}
	return did
}

// ---- Local operations ----

func (c *Controller) runLocal(now time.Time, am *actionMsg) {
	target, _ := strconv.Atoi(am.Meta["op_target_rc"])
	switch am.Task {
	case "do_shutdown":
		c.rd.Events = append(c.rd.Events, Event{Kind: EventShutdownAllowed, Node: c.self})
		return
	case "cancel":
		task, iv := splitCancelKey(am.Resource, am.OpKey)
		for id, lo := range c.ops {
			if lo.op.Rsc == am.Resource && lo.op.Task == task && lo.op.IntervalMS == iv {
				c.rd.Ops = append(c.rd.Ops, Op{ID: id, Kind: OpCancel, Rsc: lo.op.Rsc, Class: lo.op.Class, Provider: lo.op.Provider,
					Type: lo.op.Type, Task: task, IntervalMS: iv})
				delete(c.ops, id)
			}
		}
		r := &resultMsg{Resource: am.Resource, Class: am.Class, Provider: am.Provider, Type: am.Type, Task: task,
			IntervalMS: iv, Key: am.Key, Time: now.Unix(), Cancelled: true}
		c.send(MsgOpResult, totem.Agreed, r.encode(), false)
		return
	case "stop":
		// The lrmd cancels the resource's recurring operations itself.
		for id, lo := range c.ops {
			if lo.op.Rsc == am.Resource && lo.op.IntervalMS > 0 {
				delete(c.ops, id)
			}
		}
	}
	c.nextOpID++
	c.callID++
	timeout := time.Duration(0)
	if ms, err := strconv.Atoi(am.Meta["timeout"]); err == nil {
		timeout = time.Duration(ms) * time.Millisecond
	}
	op := Op{ID: c.nextOpID, Kind: OpExecute, Rsc: am.Resource, Class: am.Class, Provider: am.Provider, Type: am.Type,
		Task: am.Task, IntervalMS: am.IntervalMS, Timeout: timeout, Params: am.Params, Meta: am.Meta}
	c.ops[op.ID] = &localOp{op: op, key: am.Key, target: target, digest: am.Meta["op-digest"], callID: c.callID}
	c.rd.Ops = append(c.rd.Ops, op)
}

// splitCancelKey returns the task and interval of a cancel action's key
// (RSC_TASK_INTERVAL).
func splitCancelKey(rsc, key string) (string, int) {
	rest := strings.TrimPrefix(key, rsc+"_")
	i := strings.LastIndexByte(rest, '_')
	if i < 0 {
		return rest, 0
	}
	iv, _ := strconv.Atoi(rest[i+1:])
	return rest[:i], iv
}

// OpDone reports a result of a local operation (see Op for the contract).
func (c *Controller) OpDone(now time.Time, res OpResult) {
	lo := c.ops[res.ID]
	if lo == nil {
		return // cancelled meanwhile
	}
	later := lo.reported
	if lo.op.IntervalMS > 0 {
		if lo.reported && lo.lastRC == res.RC && lo.lastStat == res.Status {
			return
		}
		lo.reported, lo.lastRC, lo.lastStat = true, res.RC, res.Status
	} else {
		delete(c.ops, res.ID)
	}
	r := &resultMsg{Resource: lo.op.Rsc, Class: lo.op.Class, Provider: lo.op.Provider, Type: lo.op.Type,
		Task: lo.op.Task, IntervalMS: lo.op.IntervalMS, RC: res.RC, OpStatus: res.Status, CallID: lo.callID,
		TargetRC: lo.target, Digest: lo.digest, Key: lo.key, Time: now.Unix(), ExecMS: res.ExecTime.Milliseconds(),
		Reason: res.ExitReason}
	if later {
		// Later results of a recurring operation get a call id of
		// their own, so they sort after everything before them.
		c.callID++
		r.CallID = c.callID
	}
	c.send(MsgOpResult, totem.Agreed, r.encode(), false)
	c.drive(now)
}

// FenceDone reports the outcome of a FenceRequest.
func (c *Controller) FenceDone(now time.Time, res FenceResult) {
	if c.dc != nil {
		c.dc.fenceDone(c, now, res)
	}
	c.drive(now)
}

// Tick lets time pass (recheck and retry timers).
func (c *Controller) Tick(now time.Time) { c.drive(now) }

// ---- Local requests ----

// ReplaceConfig asks the cluster to replace the configuration with the one
// in cibXML (a <cib>; its status is ignored). With base non-nil the change
// applies only if the configuration is still at base's (admin_epoch,
// epoch). The answer is an EventConfigApplied with the returned request
// number, decided identically on every node.
func (c *Controller) ReplaceConfig(now time.Time, cibXML []byte, base *Version) (uint64, error) {
	if _, err := cib.Parse(bytes.NewReader(cibXML)); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	c.nextReq++
	m := &configMsg{Req: c.nextReq, CIB: cibXML, Unconditional: base == nil}
	if base != nil {
		m.Base = *base
	}
	c.pendingReqs[m.Req] = true
	c.send(MsgConfig, totem.Agreed, m.encode(), false)
	return m.Req, nil
}

// SetAttribute sets (or deletes) one of this node's transient attributes
// (attrd_updater, crm_attribute --lifetime reboot).
func (c *Controller) SetAttribute(now time.Time, name, value string, del bool) {
	c.send(MsgAttr, totem.Agreed, (&attrMsg{Name: name, Value: value, Delete: del}).encode(), false)
}

// Cleanup forgets a resource's failures and history on one node (0: all),
// so the scheduler re-probes it (ringctl crm resource cleanup).
func (c *Controller) Cleanup(now time.Time, rsc string, node totem.NodeID) uint64 {
	c.nextReq++
	m := cleanupMsg{Resource: rsc, Node: node}
	c.cleanups = append(c.cleanups, localCleanup{req: c.nextReq, msg: m})
	c.send(MsgCleanup, totem.Agreed, m.encode(), false)
	return c.nextReq
}

// localCleanup is a Cleanup of this node's not yet delivered.
type localCleanup struct {
	req uint64
	msg cleanupMsg
}

// cleanupDelivered answers the oldest local Cleanup that cl (delivered
// from this node) matches. This node's messages arrive in the order it
// sent them; a DC's own delete of the same history may answer it first,
// which is as good: that history is gone.
func (c *Controller) cleanupDelivered(cl cleanupMsg) {
	i := slices.IndexFunc(c.cleanups, func(x localCleanup) bool { return x.msg == cl })
	if i < 0 {
		return
	}
	c.rd.Events = append(c.rd.Events, Event{Kind: EventCleanupApplied, Req: c.cleanups[i].req})
	c.cleanups = slices.Delete(c.cleanups, i, i+1)
}

// ---- Output ----

func (c *Controller) send(id uint16, g totem.Guarantee, p []byte, sync bool) {
	c.rd.Messages = append(c.rd.Messages, Outgoing{ID: id, Guarantee: g, Payload: p, Sync: sync})
}

// HasReady reports whether Ready has anything.
func (c *Controller) HasReady() bool {
	return c.cibChanged || len(c.rd.PEInputs)+len(c.rd.Messages)+len(c.rd.Ops)+len(c.rd.Fences)+len(c.rd.Events) > 0
}

// Ready returns what must be done and resets it.
func (c *Controller) Ready() Ready {
	rd := c.rd
	c.rd = Ready{}
	if c.cibChanged {
		rd.CIB = c.cur
		c.cibChanged = false
	}
	rd.Deadline = c.Deadline()
	return rd
}

// Deadline is when Tick must be called next (zero: no timer).
func (c *Controller) Deadline() time.Time {
	if c.dc == nil {
		return time.Time{}
	}
	t := c.dc.deadline()
	if s := c.startupUntil; !s.IsZero() && (t.IsZero() || s.Before(t)) {
		t = s
	}
	return t
}
