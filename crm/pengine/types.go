package pengine

import (
	"ringmaster/crm/cib"
)

// Role is a resource role, ordered as Pacemaker orders them.
type Role int

// Roles.
const (
	RoleUnknown Role = iota
	RoleStopped
	RoleStarted
	RoleUnpromoted
	RolePromoted
)

func (r Role) String() string {
	switch r {
	case RoleStopped:
		return "Stopped"
	case RoleStarted:
		return "Started"
	case RoleUnpromoted:
		return "Unpromoted"
	case RolePromoted:
		return "Promoted"
	}
	return "Unknown"
}

func parseRole(s string) Role {
	switch lower(s) {
	case "stopped":
		return RoleStopped
	case "started":
		return RoleStarted
	case "slave", "unpromoted":
		return RoleUnpromoted
	case "master", "promoted":
		return RolePromoted
	}
	return RoleUnknown
}

// node is a cluster node during one scheduling run.
type node struct {
	id    string
	name  string
	idx   int // position in the name-sorted node list
	attrs map[string]string

	online, unclean, shutdown, standby, standbyOnFail bool
	maintenance, pending, expectedUp, unseen, isDC    bool
	hasState                                          bool
	unpacked                                          bool

	// weight is the node's base score: 0, or -INFINITY once it is known
	// to be offline or shutting down.
	weight int
	// numResources counts resources assigned so far (load balancing).
	numResources int
	running      []*resource
}

// available is pcmk__node_available without score or guest checks.
func (n *node) available() bool {
	return n != nil && n.online && !n.shutdown && !n.unclean && !n.standby && !n.maintenance
}

// scoreTable holds a resource's per-node scores ("allowed nodes"). A node
// that is absent is not allowed at all (asymmetric clusters), which differs
// from being present with -INFINITY only in a few places Pacemaker cares
// about. Indexed by node.idx.
type scoreTable struct {
	has []bool
	w   []int
	// discover is the resource-discovery mode per node.
	discover []int8
}

const (
	discoverAlways int8 = iota
	discoverNever
	discoverExclusive
)

func newScoreTable(n int) *scoreTable {
	return &scoreTable{has: make([]bool, n), w: make([]int, n), discover: make([]int8, n)}
}

func (t *scoreTable) clone() *scoreTable {
	return &scoreTable{
		has:      append([]bool(nil), t.has...),
		w:        append([]int(nil), t.w...),
		discover: append([]int8(nil), t.discover...),
	}
}

// get returns the score of node i and whether it is allowed at all.
func (t *scoreTable) get(i int) (int, bool) { return t.w[i], t.has[i] }

// resource flags mirror Pacemaker's pe_rsc_* flags that matter here.
type rscFlags uint64

const (
	rscOrphan rscFlags = 1 << iota
	rscManaged
	rscBlock
	rscFailed
	rscStop // failed and must be stopped (recovery)
	rscProvisional
	rscAllocating
	rscMerging
	rscRestarting
	rscStopUnexpected
	rscStartPending
	rscFailureIgnored
	rscMaintenance
	rscNeedsFencing
	rscNeedsQuorum
	rscFenceDevice
	rscCritical
	rscReload
	rscExclusiveDiscover
)

type recoveryType int

const (
	recoveryStopStart recoveryType = iota
	recoveryStopOnly
	recoveryBlock
	recoveryStopUnexpected
)

// resource is a primitive or group during one scheduling run.
type resource struct {
	id       string
	cfg      *cib.Resource
	isGroup  bool
	parent   *resource
	children []*resource

	meta   map[string]string
	params map[string]string // instance attributes evaluated without a node
	ops    []*cib.Op

	priority           int
	stickiness         int
	migrationThreshold int
	failureTimeout     int // seconds
	recovery           recoveryType
	flags              rscFlags

	role, nextRole Role
	nextRoleReason string

	runningOn []*node
	knownOn   []bool
	allowed   *scoreTable

	allocatedTo *node
	// allocatedScore is the resource's score on allocatedTo when it was
	// assigned (the weight of Pacemaker's allocated_to node copy), which a
	// mandatory colocation with a promotable clone's role adds to the
	// dependent's scores.
	allocatedScore int
	actions        []*action // creation order
	// lastByTask is the newest of actions per task, so that clone-wide
	// flag updates need not scan every instance's list.
	lastByTask map[string]*action

	thisWith []*colocation // colocations where this is the dependent
	withThis []*colocation // colocations where this is the primary

	pendingTask string
	pendingNode *node

	groupOrdered, groupColocated bool

	// isClone marks a clone; clone holds its settings (clone.go). Its
	// children are the instances, numbered in their ids (rsc:0, rsc:1).
	isClone bool
	clone   *cloneInfo
	// cloneName is, for an anonymous clone instance, the id its history
	// was recorded under ("rsc" or an older "rsc:N"), as Pacemaker's
	// clone_name.
	cloneName string

	// history keeps each node's lrm_resource entry for this resource, used
	// by the configuration-change checks and failure-probe display.
	history map[int]*cib.LRMResource
	// failedProbes records nodes where a probe failed with a masked result
	// (not installed, ...): node index -> rc.
	failedProbe map[int]int
}

// collective reports whether r is a group or a clone (it has children and
// no agent of its own).
func (r *resource) collective() bool { return r.isGroup || r.isClone }

func (r *resource) has(f rscFlags) bool { return r.flags&f != 0 }
func (r *resource) set(f rscFlags)      { r.flags |= f }
func (r *resource) clear(f rscFlags)    { r.flags &^= f }

func (r *resource) top() *resource {
	for r.parent != nil {
		r = r.parent
	}
	return r
}

func (r *resource) isRunningOn(n *node) bool {
	for _, x := range r.runningOn {
		if x == n {
			return true
		}
	}
	return false
}

func (r *resource) setNextRole(role Role, why string) {
	r.nextRole = role
	r.nextRoleReason = why
}

type colocation struct {
	id            string
	dependent     *resource
	primary       *resource
	score         int
	dependentRole Role
	primaryRole   Role
	nodeAttribute string
	influence     bool
}

// action flags mirror pe_action_flags.
type actFlags uint32

const (
	actRunnable actFlags = 1 << iota
	actOptional
	actPseudo
	actPrintAlways
	actDC
	actRequiresAny
	actReschedule
	actImpliedByStonith
	actDumped
	actDedup
	actMigrateRunnable
	actHaveNodeAttrs
)

// ordering flags mirror enum pe_ordering.
type orderFlags uint32

const (
	orderNone                 orderFlags = 0
	orderOptional             orderFlags = 0x1
	orderImpliesFirst         orderFlags = 0x10
	orderImpliesThen          orderFlags = 0x20
	orderPromotedImpliesFirst orderFlags = 0x40
	orderImpliesFirstMig      orderFlags = 0x80
	orderRunnableLeft         orderFlags = 0x100
	orderPseudoLeft           orderFlags = 0x200
	orderImpliesThenOnNode    orderFlags = 0x400
	orderProbe                orderFlags = 0x800
	orderRestart              orderFlags = 0x1000
	orderSerializeOnly        orderFlags = 0x4000
	orderSameNode             orderFlags = 0x8000
	orderImpliesFirstPrinted  orderFlags = 0x10000
	orderImpliesThenPrinted   orderFlags = 0x20000
	orderAsymmetrical         orderFlags = 0x100000
	orderLoad                 orderFlags = 0x200000
	orderOneOrMore            orderFlags = 0x400000
	orderAntiColocation       orderFlags = 0x800000
	orderPreserve             orderFlags = 0x1000000
	orderThenCancelsFirst     orderFlags = 0x2000000
)

type failAction int

// Numbered as Pacemaker's enum action_fail_response; cmpOnFail knows that
// demote (added last) is less severe than its number says.
const (
	failIgnore failAction = iota
	failRecover
	failMigrate
	failBlock
	failStop
	failStandby
	failFence
	failRestartContainer
	failResetRemote
	failDemote
)

type requirement int

const (
	needsNothing requirement = iota
	needsQuorum
	needsFencing
)

type action struct {
	id     int
	uuid   string
	task   string
	rsc    *resource
	node   *node
	flags  actFlags
	meta   map[string]string
	reason string

	intervalMS int
	onFail     failAction
	failRole   Role
	needs      requirement
	opEntry    *cib.Op
	cancelTask string

	before []*wrapper // insertion order; Pacemaker prepends, so iterate backwards
	after  []*wrapper

	runnableBefore, requiredRunnableBefore int
	// tracking marks actions visited by one probe-ordering walk.
	tracking bool
}

type wrapper struct {
	action *action
	typ    orderFlags
	dumped bool
}

func (a *action) has(f actFlags) bool { return a.flags&f != 0 }
func (a *action) set(f actFlags)      { a.flags |= f }
func (a *action) clear(f actFlags)    { a.flags &^= f }

// ordering is an ordering constraint between (possibly not yet created)
// actions, as pe__ordering_t.
type ordering struct {
	id       int
	flags    orderFlags
	lhRsc    *resource
	rhRsc    *resource
	lhAction *action
	rhAction *action
	lhTask   string
	rhTask   string
}

type locationConstraint struct {
	id         string
	rsc        *resource
	roleFilter Role
	discover   int8
	nodes      []nodeWeight
}

type nodeWeight struct {
	node   *node
	weight int
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}
