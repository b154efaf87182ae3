package controld

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"ringmaster/crm/cib"
	"ringmaster/totem"
)

// Errors returned to local requests.
var (
	// ErrConflict: the configuration changed since the request's base
	// version (someone else's change was ordered first); re-read and retry.
	ErrConflict = errors.New("controld: configuration changed concurrently")
	// ErrTryAgain: a membership change is being synchronised; retry.
	ErrTryAgain = errors.New("controld: membership change in progress, try again")
	// ErrInvalid: the submitted configuration does not parse.
	ErrInvalid = errors.New("controld: invalid configuration")
)

// Version is Pacemaker's CIB version triple. Configuration changes bump
// Epoch (and reset NumUpdates), status changes bump NumUpdates; AdminEpoch
// only changes when an administrator says so.
type Version struct {
	AdminEpoch, Epoch, NumUpdates int64
}

// Less orders versions lexicographically (admin_epoch, epoch, num_updates).
func (v Version) Less(o Version) bool {
	if v.AdminEpoch != o.AdminEpoch {
		return v.AdminEpoch < o.AdminEpoch
	}
	if v.Epoch != o.Epoch {
		return v.Epoch < o.Epoch
	}
	return v.NumUpdates < o.NumUpdates
}

func (v Version) String() string {
	return fmt.Sprintf("%d.%d.%d", v.AdminEpoch, v.Epoch, v.NumUpdates)
}

func versionOf(c *cib.CIB) Version {
	g := func(n string) int64 {
		x, _ := strconv.ParseInt(c.Attrs.Value(n), 10, 64)
		return x
	}
	return Version{g("admin_epoch"), g("epoch"), g("num_updates")}
}

func setVersion(a *cib.Attrs, v Version) {
	a.Set("admin_epoch", strconv.FormatInt(v.AdminEpoch, 10))
	a.Set("epoch", strconv.FormatInt(v.Epoch, 10))
	a.Set("num_updates", strconv.FormatInt(v.NumUpdates, 10))
}

// Message is one crm message delivered by the ring (the driver passes the
// fields of totem.Message for service exec.ServiceCRM).
type Message struct {
	Sender  totem.NodeID
	ID      uint16
	Payload []byte
}

// Outgoing is a message to multicast on the ring, in order, with the
// given guarantee. Sync messages must go out even when the ring's queue is
// full (exec.Host.SendReliable); the others may be sent with Send and, on
// totem.ErrTryAgain, retried in order.
type Outgoing struct {
	ID        uint16
	Guarantee totem.Guarantee
	Payload   []byte
	// Sync marks MsgSync (send with SendReliable).
	Sync bool
}

// OpKind tells the local resource manager what to do with an Op.
type OpKind int

const (
	// OpExecute runs the operation (start, stop, monitor, probe, promote,
	// demote, ...); a recurring monitor (IntervalMS > 0) keeps running
	// until cancelled.
	OpExecute OpKind = iota
	// OpCancel stops the recurring operation with the same Rsc, Task and
	// IntervalMS. No result is expected.
	OpCancel
)

// Op is an operation for this node's lrmd.
//
// Contract for the driver: run it (with Timeout), then call
// Controller.OpDone with the Op's ID and the result. A recurring monitor
// reports its first result and then every change of result (not every
// repetition). A stop cancels the resource's recurring operations in the
// lrmd before it runs (as Pacemaker's executor does); their IDs are never
// reported again.
type Op struct {
	ID         uint64
	Kind       OpKind
	Rsc        string
	Class      string
	Provider   string
	Type       string
	Task       string // start, stop, monitor, promote, demote, ...
	IntervalMS int
	Timeout    time.Duration
	// Params are the instance attributes; Meta the operation's meta
	// attributes (OCF_RESKEY_CRM_meta_*), as in the transition graph.
	Params map[string]string
	Meta   map[string]string
}

// Probe reports whether the op is a probe (a one-off monitor).
func (o *Op) Probe() bool { return o.Task == "monitor" && o.IntervalMS == 0 }

// OpResult is what the lrmd reports for an Op.
type OpResult struct {
	ID uint64
	// RC is the agent's exit code (OCF codes: 0 ok, 7 not running, ...).
	RC int
	// Status is the executor status (0 done, 1 cancelled, 2 timed out,
	// 4 error, 5 hard error, 6 fatal, 7 not installed); anything but 0 is
	// a failure whatever RC says.
	Status     int
	ExitReason string
	ExecTime   time.Duration
}

// FenceRequest asks the fencer (stonithd) to fence a node. The driver calls
// Controller.FenceDone with the same ID once it succeeded or gave up.
type FenceRequest struct {
	ID     uint64
	Target totem.NodeID
	Uname  string
	// Action is reboot, off or on (stonith-action).
	Action string
	// Timeout is the stonith-timeout for the whole attempt (0: fencer's default).
	Timeout time.Duration
}

// FenceResult is the fencer's answer to a FenceRequest.
type FenceResult struct {
	ID     uint64
	OK     bool
	Reason string
}

// PEInput is a scheduler input to save as state_dir/pe-inputs/pe-input-N.xml
// (N = Seq mod Config.MaxPEInputs). CIB is an immutable snapshot: write it
// with WriteTo from any goroutine.
type PEInput struct {
	Seq int
	CIB *cib.CIB
}

// Name is the file name of the input.
func (p PEInput) Name(max int) string {
	if max <= 0 {
		max = DefaultMaxPEInputs
	}
	return fmt.Sprintf("pe-input-%d.xml", p.Seq%max)
}

// EventKind classifies Event.
type EventKind int

const (
	// EventConfigApplied answers a local ReplaceConfig (Err nil, or the
	// reason it was refused on every node).
	EventConfigApplied EventKind = iota
	// EventFenceFailed: a fencing attempt failed; it is retried.
	EventFenceFailed
	// EventFenced: a node was fenced (recorded on every node).
	EventFenced
	// EventTransition: the DC started (Err nil) or completed a transition.
	EventTransition
	// EventShutdownAllowed: the DC let this node leave (do_shutdown);
	// the driver may now leave the ring.
	EventShutdownAllowed
	// EventSchedulerError: the scheduler refused the CIB (Err says why).
	EventSchedulerError
	// EventCleanupApplied answers a local Cleanup (Req): this node has
	// applied it, so its CIB shows the history gone.
	EventCleanupApplied
)

// Event is a notification for the driver (logs, replies to clients).
type Event struct {
	Kind    EventKind
	Req     uint64
	Node    totem.NodeID
	Text    string
	Err     error
	Actions int
}

// Ready is what the controller wants done. Handle it in field order:
// persist CIB (write, fsync, rename, fsync dir), write PEInputs, multicast
// Messages in order, start Fences and Ops, deliver Events, and call Tick
// at Deadline. Everything in it belongs to the caller; CIB snapshots are
// immutable.
type Ready struct {
	CIB      *cib.CIB
	PEInputs []PEInput
	Messages []Outgoing
	Ops      []Op
	Fences   []FenceRequest
	Events   []Event
	// Deadline is when Tick must be called next (zero: no timer).
	Deadline time.Time
}
