// Package reconfig is the pure core of the cluster-wide configuration
// reload (`ringctl config reload`, corosync-cfgtool -R): a two-phase
// commit run over the ring's total order, so that every member applies a
// new configuration at the same point of the ordered stream, or none
// does.
//
// No clock, goroutine, file or socket: inputs are the ring's deliveries
// and configuration changes, the local request and validation result, and
// the time as a value; outputs are Actions (messages to multicast, "validate
// your file", "commit", "abort", "answer the operator"). The daemon's
// driver (internal/daemon/cluster_reload.go) does the I/O.
//
// # Protocol
//
//  1. The initiator multicasts Prepare(seq, ring, timeout). Delivered in
//     the ring it names, while no other transaction runs and after the
//     ring's sync, it opens transaction (initiator, seq) on every member
//     at the same point of the stream; otherwise every member refuses it
//     alike (busy, membership changed, syncing) and only the initiator
//     reports it.
//  2. Every member validates its own file (Validate), pre-loads the new
//     keys for decryption only, and multicasts its Vote: OK with the
//     digests of the cluster-wide parts, or the error naming its file and
//     line.
//  3. The delivery of the last member's vote is the commit point: when
//     every member voted OK with the same digests, every member commits
//     there; a refusal aborts at its own delivery, different digests at
//     the last vote. Since a member multicasts its vote only after it
//     pre-loaded the new keys, by the commit point every member can open
//     datagrams sealed with them.
//  4. An Abort delivered first (a member's deadline passed), or a
//     configuration change (transitional or regular: a member left or
//     joined), aborts the transaction everywhere it is delivered.
//
// Every decision is taken on delivery of an ordered message or
// configuration change, which every member sees in the same order (and,
// by virtual synchrony, members that move on together see the same ones
// before a configuration change), so members decide alike. A member cut
// off exactly at the commit point (the others deliver the last vote, it
// does not before its transitional configuration) aborts while the
// others commit: corosync's reload has the same gap. Its file already
// holds the new configuration; SIGHUP or a restart brings it in line.
//
// # States
//
//	state \ event | Prepare(R)               | Vote                  | Abort       | conf change  | Tick ≥ deadline
//	--------------+--------------------------+-----------------------+-------------+--------------+----------------
//	idle          | R current, synced, from  | ignore                | ignore      | record ring  | -
//	              | a member: → voting       |                       |             |              |
//	              | (Validate); else refuse  |                       |             |              |
//	voting(T)     | refuse (busy)            | T's, new member: not  | T's: abort  | abort        | send Abort once
//	              |                          | OK → abort; last →    |             |              |
//	              |                          | digests equal? commit |             |              |
//	              |                          | : abort               |             |              |
package reconfig

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"ringmaster/reconfig/wire"
	"ringmaster/totem"
)

// Sentinel errors of an outcome (errors.Is).
var (
	// ErrBusy: another reload was in progress when the Prepare was
	// delivered.
	ErrBusy = errors.New("another configuration reload is in progress")
	// ErrRefused: a member's file does not validate or cannot be applied.
	ErrRefused = errors.New("refused")
	// ErrMismatch: members' files differ in a cluster-wide part.
	ErrMismatch = errors.New("the nodes' configurations differ")
	// ErrTimeout: not every member voted in time.
	ErrTimeout = errors.New("timed out waiting for every member's vote")
	// ErrMembership: the membership changed during the reload (or before
	// its Prepare was delivered).
	ErrMembership = errors.New("the membership changed")
	// ErrSyncing: the ring's post-membership sync had not finished; try
	// again.
	ErrSyncing = errors.New("the ring is synchronising after a membership change")
	// ErrNoRing: this node is in no ring yet.
	ErrNoRing = errors.New("not in a ring yet")
	// ErrInvalid: a request the machine cannot take.
	ErrInvalid = errors.New("invalid reload request")
)

// MaxPending bounds the local requests whose Prepare the ring has not
// delivered yet: only one transaction runs at a time, so more would only
// be refused busy on delivery.
const MaxPending = 4

// ID names a transaction: its initiator and the initiator's number for it.
type ID struct {
	Initiator totem.NodeID
	Seq       uint64
}

func (id ID) String() string { return fmt.Sprintf("%d.%d", id.Initiator, id.Seq) }

// ActionKind says what the driver must do.
type ActionKind int

// Actions, in the order the driver must carry them out.
const (
	// ActSend: multicast Msg/Payload on the ring (reliably: in order, retried
	// while the ring's queue is full).
	ActSend ActionKind = iota + 1
	// ActValidate: load and validate this node's file for transaction
	// ID, pre-load its keys for decryption, and call Machine.Vote.
	ActValidate
	// ActCommit: apply what was validated for ID (Outcome has every
	// member's vote).
	ActCommit
	// ActAbort: drop what was validated for ID (and the pre-loaded
	// keys); the running configuration stays.
	ActAbort
	// ActDone: answer the local operator who asked for ID.
	ActDone
)

// Action is one output of the machine.
type Action struct {
	Kind    ActionKind
	ID      ID
	Msg     uint16 // ActSend
	Payload []byte // ActSend
	// Outcome of ActCommit, ActAbort and ActDone.
	Outcome *Outcome
}

// Outcome is how a transaction ended.
type Outcome struct {
	ID ID
	// Err is nil when it committed; otherwise it wraps one of the
	// sentinels and says which member refused and why.
	Err error
	// Votes are the members' votes (committed: every member's, by node
	// ID).
	Votes []MemberVote
	// Refusals are the members that refused (with their file:line).
	Refusals []MemberVote
}

// MemberVote is one member's vote.
type MemberVote struct {
	Node totem.NodeID
	Vote wire.Vote
}

// Machine is one node's reload state machine. It is not safe for
// concurrent use; the driver calls it under the executive's lock.
type Machine struct {
	local   totem.NodeID
	ring    totem.RingID
	members []totem.NodeID
	synced  bool

	seq     uint64
	pending map[uint64]time.Duration // local requests whose Prepare is not delivered yet: seq → give-up time
	cur     *txn
	out     []Action
}

type txn struct {
	id        ID
	members   []totem.NodeID
	deadline  time.Duration
	timeout   time.Duration
	votes     map[totem.NodeID]wire.Vote
	voted     bool // this node sent its vote
	abortSent bool
}

// New returns the machine of node local, outside any ring.
func New(local totem.NodeID) *Machine {
	return &Machine{local: local, pending: map[uint64]time.Duration{}}
}

// Busy reports the transaction in progress, if any.
func (m *Machine) Busy() (ID, bool) {
	if m.cur == nil {
		return ID{}, false
	}
	return m.cur.id, true
}

// Start asks for a reload: it returns the transaction's ID and queues its
// Prepare. The outcome comes as an ActDone for that ID (refused ones too).
// While a transaction runs, or MaxPending requests wait, it returns
// ErrBusy and sends nothing.
func (m *Machine) Start(now, timeout time.Duration) (ID, error) {
	if len(m.members) == 0 {
		return ID{}, ErrNoRing
	}
	if timeout <= 0 || timeout > wire.MaxTimeout {
		return ID{}, fmt.Errorf("%w: timeout %v (want up to %v)", ErrInvalid, timeout, wire.MaxTimeout)
	}
	// Bounded, so that a client asking again and again without waiting
	// neither grows the state nor floods the ring: while a transaction
	// runs a Prepare could only be refused busy when delivered, so it is
	// refused now; and few requests may wait for their Prepare.
	if m.cur != nil {
		return ID{}, fmt.Errorf("%w (%s, asked by node %d)", ErrBusy, m.cur.id, m.cur.id.Initiator)
	}
	if len(m.pending) >= MaxPending {
		return ID{}, fmt.Errorf("%w: %d requests of this node wait for the ring already", ErrBusy, len(m.pending))
	}
	timeout = timeout.Truncate(time.Millisecond)
	m.seq++
	id := ID{Initiator: m.local, Seq: m.seq}
	// If the Prepare never comes back (the ring never delivers it) the
	// operator is answered after twice the timeout.
	m.pending[id.Seq] = now + 2*timeout
	m.send(wire.MsgPrepare, wire.EncodePrepare(wire.Prepare{Seq: id.Seq, Ring: m.ring, Timeout: timeout}))
	return id, nil
}

// ConfChange takes a configuration change in delivery order: any change
// aborts the transaction in progress; a regular one is the new ring (not
// synced until SyncDone).
func (m *Machine) ConfChange(c totem.ConfChange) {
	if m.cur != nil {
		m.finish(fmt.Errorf("%w (%s configuration %s: members %v, left %v, joined %v)", ErrMembership, c.Kind, c.Ring, c.Members, c.Left, c.Joined))
	}
	if c.Kind == totem.Regular {
		m.ring = c.Ring
		m.members = slices.Sorted(slices.Values(c.Members))
		m.synced = false
	}
}

// SyncDone: the executive's sync barrier after the last regular
// configuration completed (at the same point of the stream everywhere).
func (m *Machine) SyncDone() { m.synced = true }

// Deliver takes one of the service's ring messages in delivery order. A
// message that does not decode is returned as an error and changes
// nothing.
func (m *Machine) Deliver(now time.Duration, from totem.NodeID, msg uint16, payload []byte) error {
	switch msg {
	case wire.MsgPrepare:
		p, err := wire.DecodePrepare(payload)
		if err != nil {
			return err
		}
		m.prepare(now, from, p)
	case wire.MsgVote:
		v, err := wire.DecodeVote(payload)
		if err != nil {
			return err
		}
		m.vote(from, v)
	case wire.MsgAbort:
		a, err := wire.DecodeAbort(payload)
		if err != nil {
			return err
		}
		if m.cur != nil && m.cur.id == (ID{a.Initiator, a.Seq}) && slices.Contains(m.cur.members, from) {
			m.finish(fmt.Errorf("%w: node %d gave up after %v", ErrTimeout, from, m.cur.timeout))
		}
	default:
		return fmt.Errorf("%w: message %d", wire.ErrMalformed, msg)
	}
	return nil
}

func (m *Machine) prepare(now time.Duration, from totem.NodeID, p wire.Prepare) {
	id := ID{Initiator: from, Seq: p.Seq}
	if from == m.local {
		delete(m.pending, p.Seq)
	}
	var err error
	switch {
	case p.Ring != m.ring || !slices.Contains(m.members, from):
		err = fmt.Errorf("%w before the reload started (asked in ring %s, delivered in %s): try again", ErrMembership, p.Ring, m.ring)
	case !m.synced:
		err = fmt.Errorf("%w: try again", ErrSyncing)
	case m.cur != nil:
		err = fmt.Errorf("%w (%s, asked by node %d)", ErrBusy, m.cur.id, m.cur.id.Initiator)
	}
	if err != nil {
		if from == m.local {
			m.out = append(m.out, Action{Kind: ActDone, ID: id, Outcome: &Outcome{ID: id, Err: err}})
		}
		return
	}
	m.cur = &txn{id: id, members: slices.Clone(m.members), deadline: now + p.Timeout, timeout: p.Timeout, votes: map[totem.NodeID]wire.Vote{}}
	m.out = append(m.out, Action{Kind: ActValidate, ID: id})
}

// Vote is this node's answer to ActValidate: v.OK with the digests, or
// v.Error. The vote is multicast (its Initiator and Seq are set here). A
// vote for a transaction that has ended meanwhile is dropped.
func (m *Machine) Vote(id ID, v wire.Vote) {
	if m.cur == nil || m.cur.id != id || m.cur.voted {
		return
	}
	m.cur.voted = true
	v.Initiator, v.Seq = id.Initiator, id.Seq
	m.send(wire.MsgVote, wire.EncodeVote(v))
}

func (m *Machine) vote(from totem.NodeID, v wire.Vote) {
	t := m.cur
	if t == nil || t.id != (ID{v.Initiator, v.Seq}) || !slices.Contains(t.members, from) {
		return
	}
	if _, dup := t.votes[from]; dup {
		return
	}
	t.votes[from] = v
	if !v.OK {
		m.finish(fmt.Errorf("%w by node %d: %s", ErrRefused, from, v.Error))
		return
	}
	if len(t.votes) < len(t.members) {
		return
	}
	// Every member voted OK: the commit point, if their cluster-wide
	// parts agree. They are compared with the initiator's (a member), so
	// the report names who differs from whom.
	ref := t.votes[t.id.Initiator]
	var diffs []string
	for _, n := range t.members {
		for s := wire.Section(1); s < wire.NumSections; s++ {
			if t.votes[n].Digests[s] != ref.Digests[s] {
				diffs = append(diffs, fmt.Sprintf("node %d's %s differs from node %d's", n, s, t.id.Initiator))
			}
		}
	}
	if len(diffs) > 0 {
		m.finish(fmt.Errorf("%w: %s", ErrMismatch, strings.Join(diffs, "; ")))
		return
	}
	m.finish(nil)
}

// Tick tells the machine the time: a transaction past its deadline gets
// an Abort multicast (once; its delivery aborts everywhere unless the last
// vote came first), and a local request whose Prepare never came back is
// answered.
func (m *Machine) Tick(now time.Duration) {
	if t := m.cur; t != nil && !t.abortSent && now >= t.deadline {
		t.abortSent = true
		m.send(wire.MsgAbort, wire.EncodeAbort(wire.Abort{Initiator: t.id.Initiator, Seq: t.id.Seq, Reason: wire.AbortTimeout}))
	}
	for _, seq := range slices.Sorted(maps.Keys(m.pending)) {
		if now >= m.pending[seq] {
			delete(m.pending, seq)
			id := ID{Initiator: m.local, Seq: seq}
			m.out = append(m.out, Action{Kind: ActDone, ID: id, Outcome: &Outcome{ID: id,
				Err: fmt.Errorf("%w: the ring did not deliver the request", ErrTimeout)}})
		}
	}
}

// Deadline is when Tick must be called next (0: no timer).
func (m *Machine) Deadline() time.Duration {
	var d time.Duration
	if t := m.cur; t != nil && !t.abortSent {
		d = t.deadline
	}
	for _, at := range m.pending {
		if d == 0 || at < d {
			d = at
		}
	}
	return d
}

// Ready returns the actions produced since the last call, in order.
func (m *Machine) Ready() []Action {
	out := m.out
	m.out = nil
	return out
}

func (m *Machine) send(msg uint16, p []byte) {
	m.out = append(m.out, Action{Kind: ActSend, Msg: msg, Payload: p})
}

// finish ends the transaction in progress: commit when err is nil.
func (m *Machine) finish(err error) {
	t := m.cur
	m.cur = nil
	o := &Outcome{ID: t.id, Err: err}
	for _, n := range t.members {
		v, ok := t.votes[n]
		if !ok {
			continue
		}
		o.Votes = append(o.Votes, MemberVote{Node: n, Vote: v})
		if !v.OK {
			o.Refusals = append(o.Refusals, MemberVote{Node: n, Vote: v})
		}
	}
	kind := ActCommit
	if err != nil {
		kind = ActAbort
	}
	m.out = append(m.out, Action{Kind: kind, ID: t.id, Outcome: o})
	if t.id.Initiator == m.local {
		m.out = append(m.out, Action{Kind: ActDone, ID: t.id, Outcome: o})
	}
}
