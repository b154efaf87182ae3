package pengine

import (
	"sort"
	"strconv"
	"strings"

	"ringmaster/crm/cib"
)

// Executor operation status codes (enum pcmk_exec_status).
const (
	execPending       = -1
	execDone          = 0
	execCancelled     = 1
	execTimeout       = 2
	execNotSupported  = 3
	execError         = 4
	execErrorHard     = 5
	execErrorFatal    = 6
	execNotInstalled  = 7
	execNotConnected  = 8
	execInvalid       = 9
	execNoFenceDevice = 10
	execNoSecrets     = 11
)

// OCF exit codes.
const (
	ocfOK               = 0
	ocfUnknownError     = 1
	ocfInvalidParam     = 2
	ocfUnimplemented    = 3
	ocfInsufficientPriv = 4
	ocfNotInstalled     = 5
	ocfNotConfigured    = 6
	ocfNotRunning       = 7
	ocfRunningPromoted  = 8
	ocfFailedPromoted   = 9
	ocfDegraded         = 190
	ocfDegradedPromoted = 191
)

func ocfExitText(rc int) string {
	switch rc {
	case 0:
		return "ok"
	case 1:
		return "error"
	case 2:
		return "invalid parameter"
	case 3:
		return "unimplemented feature"
	case 4:
		return "insufficient privileges"
	case 5:
		return "not installed"
	case 6:
		return "not configured"
	case 7:
		return "not running"
	case 8:
		return "promoted"
	case 9:
		return "promoted (failed)"
	case 190:
		return "degraded"
	case 191:
		return "degraded promoted"
	}
	return "unknown"
}

// failedProbe is a history entry whose probe failed in a way that is shown
// as "not running" (e.g. agent not installed).
type failedProbe struct {
	rsc    string
	onNode string
	rc     int
}

func (s *scheduler) findNodeAny(id, uname string) *node {
	if n := s.nodeByID[id]; n != nil {
		return n
	}
	return s.nodeByName[lower(uname)]
}

func (s *scheduler) unpackStatus() {
	for _, ns := range s.in.Status.Nodes {
		s.unpackNodeState(ns)
	}
	for s.unpackNodeHistory(false) {
	}
	s.unpackNodeHistory(s.stonithEnabled)
}

func (s *scheduler) unpackNodeState(ns *cib.NodeState) {
	if ns.ID() == "" || ns.Uname() == "" {
		return
	}
	n := s.findNodeAny(ns.ID(), ns.Uname())
	if n == nil {
		s.warnf("ignoring recorded node state for %q because it is no longer in the configuration", ns.Uname())
		return
	}
	n.hasState = true
	s.addNodeAttrs(n, ns.Transient, true)
	if cib.IsTrue(n.attrs["standby"]) {
		n.standby = true
	}
	if cib.IsTrue(n.attrs["maintenance"]) {
		n.maintenance = true
	}
	n.unclean = false
	n.unseen = false
	s.determineOnlineStatus(ns, n)
	if !s.haveQuorum && n.online && s.noQuorum == noQuorumSuicide {
		s.fenceNode(n, "cluster does not have quorum", false)
	}
}

func shutdownRequested(n *node) bool {
	v, ok := n.attrs["shutdown"]
	return ok && v != "0"
}

func (s *scheduler) determineOnlineStatus(ns *cib.NodeState, n *node) {
	exp := ns.Attrs.Value("expected")
	n.shutdown = false
	n.expectedUp = false
	if shutdownRequested(n) {
		n.shutdown = true
	} else if strings.EqualFold(exp, "member") {
		n.expectedUp = true
	}
	var online bool
	if !s.stonithEnabled {
		online = s.onlineNoFencing(ns, n)
	} else {
		online = s.onlineFencing(ns, n)
	}
	if online {
		n.online = true
	} else {
		n.weight = -Infinity
	}
	if online && n.shutdown {
		n.weight = -Infinity
	}
}

func (s *scheduler) onlineNoFencing(ns *cib.NodeState, n *node) bool {
	inCluster := ns.Attrs.Value("in_ccm")
	peer := ns.Attrs.Value("crmd")
	join := ns.Attrs.Value("join")
	switch {
	case !cib.IsTrue(inCluster):
	case strings.EqualFold(peer, "online"):
		if strings.EqualFold(join, "member") {
			return true
		}
	case !n.expectedUp:
	default:
		s.fenceNode(n, "peer is unexpectedly down", false)
	}
	return false
}

func (s *scheduler) onlineFencing(ns *cib.NodeState, n *node) bool {
	inClusterS, hasInCluster := ns.Attrs.Get("in_ccm")
	inCluster := cib.IsTrue(inClusterS)
	peerOnline := strings.EqualFold(ns.Attrs.Value("crmd"), "online")
	join := ns.Attrs.Value("join")
	exp, hasExp := ns.Attrs.Get("expected")
	if !hasExp {
		exp = "down"
	}
	terminate := n.attrs["terminate"]
	doTerminate := cib.IsTrue(terminate) || (terminate != "" && terminate[0] != '0' && isDigit(terminate[0]))
	online := inCluster
	switch {
	case n.shutdown:
		online = peerOnline
	case !hasInCluster:
		s.fenceNode(n, "peer has not been seen by the cluster", false)
	case strings.EqualFold(join, "nack"):
		s.fenceNode(n, "peer failed Pacemaker membership criteria", false)
	case !doTerminate && strings.EqualFold(exp, "down"):
		if inCluster || peerOnline {
			n.standby = true
			n.pending = true
		}
	case doTerminate && strings.EqualFold(join, "down") && !inCluster && !peerOnline:
		online = false
	case !inCluster:
		s.fenceNode(n, "peer is no longer part of the cluster", true)
	case !peerOnline:
		s.fenceNode(n, "peer process is no longer available", false)
	case doTerminate:
		s.fenceNode(n, "termination was requested", false)
	case strings.EqualFold(join, "member"):
	case strings.EqualFold(join, "pending"), strings.EqualFold(join, "down"):
		n.standby = true
		n.pending = true
	default:
		s.fenceNode(n, "peer was in an unknown state", false)
	}
	return online
}

// unpackNodeHistory unpacks every not-yet-unpacked node's resource history
// that can be unpacked now; it reports whether it unpacked anything.
func (s *scheduler) unpackNodeHistory(fence bool) bool {
	any := false
	for _, ns := range s.in.Status.Nodes {
		if ns.ID() == "" || ns.Uname() == "" {
			continue
		}
		n := s.findNodeAny(ns.ID(), ns.Uname())
		if n == nil || n.unpacked {
			continue
		}
		if !fence && !s.stonithEnabled && !n.online {
			continue
		}
		n.unpacked = true
		for _, lr := range ns.Resources {
			s.unpackLRMResource(n, lr)
		}
		any = true
	}
	return any
}

func (s *scheduler) unpackLRMResource(n *node, lr *cib.LRMResource) {
	if len(lr.Ops) == 0 {
		return
	}
	r := s.byID[lr.ID()]
	if r != nil && r.isGroup {
		// History of a resource that is no longer a primitive is ignored.
		return
	}
	if r == nil {
		r = s.processOrphan(lr, n)
		if r == nil {
			return
		}
	}
	r.history[n.idx] = lr
	savedRole := r.role
	r.role = RoleUnknown
	ops := sortOpsByCallID(lr.Ops)
	var lastFailure *cib.LRMOp
	onFail := failIgnore
	for _, op := range ops {
		s.unpackRscOp(r, n, op, &lastFailure, &onFail)
	}
	start, stop := activeOps(ops)
	s.processRecurring(n, r, start, stop, ops)
	s.processRscState(r, n, onFail)
	if role, ok := targetRole(r.meta["target-role"]); ok {
		if r.nextRole == RoleUnknown || role < r.nextRole {
			r.setNextRole(role, "target-role")
		}
	}
	if savedRole > r.role {
		r.role = savedRole
	}
}

func (s *scheduler) processOrphan(lr *cib.LRMResource, n *node) *resource {
	cr := &cib.Resource{
		Kind:     "primitive",
		ID:       lr.ID(),
		Class:    lr.Attrs.Value("class"),
		Provider: lr.Attrs.Value("provider"),
		Type:     lr.Attrs.Value("type"),
	}
	r, err := s.unpackResource(cr, nil)
	if err != nil {
		return nil
	}
	r.set(rscOrphan)
	s.resources = append(s.resources, r)
	if !s.stopOrphans {
		r.clear(rscManaged)
	} else {
		s.resourceLocation(r, nil, -Infinity, "__orphan_do_not_run__")
	}
	return r
}

// sortOpsByCallID orders history by pe__is_newer_op (stable).
func sortOpsByCallID(ops []*cib.LRMOp) []*cib.LRMOp {
	// Pacemaker builds the list by prepending, so entries that compare
	// equal (duplicate ids) end up in reverse document order.
	out := make([]*cib.LRMOp, 0, len(ops))
	for i := len(ops) - 1; i >= 0; i-- {
		out = append(out, ops[i])
	}
	sort.SliceStable(out, func(i, j int) bool { return isNewerOp(out[i], out[j]) < 0 })
	return out
}

// isNewerOp is pe__is_newer_op for entries on the same node.
func isNewerOp(a, b *cib.LRMOp) int {
	if a.ID() == b.ID() {
		return 0
	}
	ac, bc := a.CallID(), b.CallID()
	switch {
	case ac == -1 && bc == -1:
		return 0
	case ac >= 0 && ac < bc:
		return -1
	case bc >= 0 && ac > bc:
		return 1
	case ac >= 0 && bc >= 0 && ac == bc:
		la, lb := a.LastRCChange(), b.LastRCChange()
		if la >= 0 && la < lb {
			return -1
		}
		if lb >= 0 && la > lb {
			return 1
		}
		return 0
	}
	// One of them is pending: compare the transitions that scheduled them.
	// An injected or shutdown-time result carries transition -1 and counts
	// as the newest.
	auuid, aid, aok := decodeTransitionMagic(a.Attrs.Value("transition-magic"))
	buuid, bid, bok := decodeTransitionMagic(b.Attrs.Value("transition-magic"))
	if !aok || !bok {
		return 0
	}
	switch {
	case auuid != buuid || aid == bid:
		if bc == -1 {
			return -1
		}
		if ac == -1 {
			return 1
		}
	case (aid >= 0 && aid < bid) || bid == -1:
		return -1
	case (bid >= 0 && aid > bid) || aid == -1:
		return 1
	}
	return 0
}

// decodeTransitionMagic extracts the controller UUID and transition number
// from "STATUS:RC;ACTION:TRANSITION:TARGET_RC:UUID".
func decodeTransitionMagic(magic string) (uuid string, transition int, ok bool) {
	_, key, found := strings.Cut(magic, ";")
	if !found {
		return "", 0, false
	}
	parts := strings.SplitN(key, ":", 4)
	if len(parts) != 4 {
		return "", 0, false
	}
	for _, p := range parts[:3] {
		if _, err := strconv.Atoi(p); err != nil {
			return "", 0, false
		}
	}
	transition, _ = strconv.Atoi(parts[1])
	return strings.ToLower(parts[3]), transition, true
}

// activeOps is calculate_active_ops: the index of the last start (or an
// implied start) and of the last successful stop.
func activeOps(ops []*cib.LRMOp) (start, stop int) {
	start, stop = -1, -1
	impliedMonitor, impliedClone := -1, -1
	for i, op := range ops {
		task := op.Task()
		status := op.Attrs.Value("op-status")
		switch {
		case task == taskStop && status == "0":
			stop = i
		case task == taskStart || task == taskMigrateFrom:
			start = i
		case impliedMonitor <= stop && task == taskMonitor:
			rc := op.Attrs.Value("rc-code")
			if rc == "0" || rc == "8" {
				impliedMonitor = i
			}
		case task == taskPromote || task == taskDemote:
			impliedClone = i
		}
	}
	if start == -1 {
		if impliedClone != -1 {
			start = impliedClone
		} else if impliedMonitor != -1 {
			start = impliedMonitor
		}
	}
	return start, stop
}

// processRecurring creates optional actions for recurring operations that
// the history says are active, so the scheduler knows not to start them.
func (s *scheduler) processRecurring(n *node, r *resource, start, stop int, ops []*cib.LRMOp) {
	for i, op := range ops {
		if !n.online {
			return
		}
		if start < stop && i <= stop {
			continue
		}
		if i < start {
			continue
		}
		iv := op.IntervalMS()
		if iv == 0 {
			continue
		}
		if op.Attrs.Value("op-status") == "-1" {
			continue
		}
		task := op.Task()
		s.customAction(r, opKey(r.id, task, iv), task, n, true, true)
	}
}

func opTaskKey(op *cib.LRMOp) string {
	if k, ok := op.Attrs.Get("operation_key"); ok && k != "" {
		return k
	}
	return op.ID()
}

func isProbeOp(op *cib.LRMOp) bool {
	return op.Task() == taskMonitor && op.IntervalMS() == 0
}

// maskProbeFailure is pcmk_xe_mask_probe_failure: probe results meaning the
// agent cannot run there are treated as "not running".
func maskProbeFailure(op *cib.LRMOp) bool {
	if !isProbeOp(op) {
		return false
	}
	rc := op.RC()
	return rc == ocfNotInstalled || rc == ocfInvalidParam || op.OpStatus() == execNotInstalled
}

func effectiveRC(rc int) int {
	switch rc {
	case ocfDegraded:
		return ocfOK
	case ocfDegradedPromoted:
		return ocfRunningPromoted
	}
	return rc
}

func (s *scheduler) setActive(r *resource) { r.role = RoleStarted }

// unpackRscOp is unpack_rsc_op: fold one history entry into the resource's
// state on the node.
func (s *scheduler) unpackRscOp(r *resource, n *node, op *cib.LRMOp, lastFailure **cib.LRMOp, onFail *failAction) {
	task := op.Task()
	if task == "" {
		return
	}
	status := op.OpStatus()
	if status < execPending || status > execNoSecrets {
		return
	}
	if task == taskNotify || task == "meta-data" {
		return
	}
	targetRC := op.TargetRC()
	rc := op.RC()
	intervalMS := op.IntervalMS()
	parent := r

	expired := false
	if status != execNotInstalled && s.checkOperationExpiry(r, n, rc, op) {
		expired = true
	}
	oldRC, oldTarget := rc, targetRC
	s.remapOperation(op, r, n, onFail, targetRC, &rc, &status)
	maskable := maskProbeFailure(op)

	if expired && maskable && oldRC != oldTarget {
		if r.role <= RoleStopped {
			r.role = RoleUnknown
		}
		return
	}
	if expired && rc != targetRC {
		if intervalMS == 0 {
			return
		}
		if n.online && !n.unclean {
			// Force the recurring monitor to be rescheduled.
			// (Pacemaker writes this into its copy of the CIB; the
			// scheduler keeps the input untouched and notes it aside.)
			if s.restartDigests == nil {
				s.restartDigests = map[*cib.LRMOp]string{}
			}
			s.restartDigests[op] = "calculated-failure-timeout"
			return
		}
	}
	if maskable {
		s.updateResourceState(r, n, op, task, targetRC, *lastFailure, onFail)
		s.recordFailedOp(r, n, op)
		s.resourceLocation(parent, n, -Infinity, "masked-probe-failure")
		return
	}
	key := opTaskKey(op)
	switch status {
	case execCancelled:
		return
	case execPending:
		switch task {
		case taskStart:
			r.set(rscStartPending)
			s.setActive(r)
		case taskPromote:
			r.role = RolePromoted
		}
		if r.pendingTask == "" && (intervalMS != 0 || task != taskMonitor) {
			r.pendingTask = task
			r.pendingNode = n
		}
		return
	case execDone:
		s.updateResourceState(r, n, op, task, rc, *lastFailure, onFail)
		return
	case execNotInstalled:
		strategy := s.actionOnFail(r, key, task)
		if strategy == failIgnore {
			*onFail = failMigrate
		}
		s.resourceLocation(parent, n, -Infinity, "hard-error")
		s.unpackRscOpFailure(r, n, rc, op, lastFailure, onFail)
		return
	case execNoFenceDevice, execNoSecrets:
		status = execErrorHard
	}
	strategy := s.actionOnFail(r, key, task)
	if strategy == failIgnore {
		s.updateResourceState(r, n, op, task, targetRC, *lastFailure, onFail)
		r.set(rscFailureIgnored)
		s.recordFailedOp(r, n, op)
		return
	}
	s.unpackRscOpFailure(r, n, rc, op, lastFailure, onFail)
	switch status {
	case execErrorHard:
		s.resourceLocation(parent, n, -Infinity, "hard-error")
	case execErrorFatal:
		s.resourceLocation(parent, nil, -Infinity, "fatal-error")
	}
}

// recordFailedOp is record_failed_op: the first failure per operation key
// and node (on an online node) is kept. Only masked probe failures matter
// here: the status display shows them as "Stopped (not installed)" and the
// like, but only when the entry records the node it ran on (on_node) —
// which is why an earlier entry without it hides a later one.
func (s *scheduler) recordFailedOp(r *resource, n *node, op *cib.LRMOp) {
	if !n.online {
		return
	}
	k := lower(opTaskKey(op)) + "\x00" + lower(n.name)
	if s.failedSeen[k] {
		return
	}
	if s.failedSeen == nil {
		s.failedSeen = map[string]bool{}
	}
	s.failedSeen[k] = true
	if !isProbeOp(op) {
		return
	}
	rc := op.RC()
	if rc != ocfNotInstalled && rc != ocfInvalidParam && op.OpStatus() != execNotInstalled {
		return
	}
	if on := op.Attrs.Value("on_node"); on != "" {
		s.failedProbes = append(s.failedProbes, failedProbe{rsc: r.id, onNode: on, rc: rc})
	}
}

// actionOnFail is get_action_on_fail.
func (s *scheduler) actionOnFail(r *resource, key, task string) failAction {
	a := s.customAction(r, key, task, nil, true, false)
	return a.onFail
}

func (s *scheduler) checkRecoverable(r *resource, n *node, task string) {
	if task != taskStop {
		return
	}
	if s.canFence(n) {
		return
	}
	r.clear(rscManaged)
	r.set(rscBlock)
}

// remapOperation is remap_operation: decide whether a result is a failure
// given the expected result, and what it says about the role.
func (s *scheduler) remapOperation(op *cib.LRMOp, r *resource, n *node, onFail *failAction, targetRC int, rc, status *int) {
	task := op.Task()
	if task == taskMonitor {
		*rc = effectiveRC(*rc)
	}
	if maskProbeFailure(op) {
		*status = execDone
		*rc = ocfNotRunning
	}
	if *status != execDone && *status != execError {
		return
	}
	*status = execDone
	isProbe := isProbeOp(op)
	if isProbe {
		task = "probe"
	}
	if targetRC < 0 {
		*status = execError
	} else if targetRC != *rc {
		*status = execError
	}
	switch *rc {
	case ocfOK:
		if isProbe && targetRC == ocfNotRunning {
			*status = execDone
		}
	case ocfNotRunning:
		if isProbe || targetRC == *rc || !r.has(rscManaged) {
			*status = execDone
			r.role = RoleStopped
			*onFail = failIgnore
			r.setNextRole(RoleUnknown, "not running")
		}
	case ocfRunningPromoted:
		if isProbe && *rc != targetRC {
			*status = execDone
		}
		r.role = RolePromoted
	case ocfDegradedPromoted, ocfFailedPromoted:
		r.role = RolePromoted
		*status = execError
	case ocfNotConfigured:
		*status = execErrorFatal
	case ocfUnimplemented:
		if op.IntervalMS() == 0 {
			s.checkRecoverable(r, n, task)
			*status = execErrorHard
		} else {
			*status = execNotSupported
		}
	case ocfNotInstalled, ocfInvalidParam, ocfInsufficientPriv:
		s.checkRecoverable(r, n, task)
		*status = execErrorHard
	default:
		if *status == execDone {
			*status = execError
		}
	}
}

// updateResourceState is update_resource_state: a successful (or ignored)
// result moves the resource's role.
func (s *scheduler) updateResourceState(r *resource, n *node, op *cib.LRMOp, task string, rc int, lastFailure *cib.LRMOp, onFail *failAction) {
	clearPast := false
	switch {
	case rc == ocfNotInstalled || maskProbeFailure(op):
		r.role = RoleStopped
	case rc == ocfNotRunning:
		clearPast = true
	case task == taskMonitor:
		if lastFailure != nil && opTaskKey(op) == opTaskKey(lastFailure) {
			clearPast = true
		}
		if r.role < RoleStarted {
			s.setActive(r)
		}
	case task == taskStart:
		r.role = RoleStarted
		clearPast = true
	case task == taskStop:
		r.role = RoleStopped
		clearPast = true
	case task == taskPromote:
		r.role = RolePromoted
		clearPast = true
	case task == taskDemote:
		if *onFail == failDemote {
			clearPast = true
		}
		r.role = RoleUnpromoted
	case task == taskMigrateFrom:
		r.role = RoleStarted
		clearPast = true
	case task == taskMigrateTo:
		// Live migration is not supported; treat a completed migrate_to
		// as leaving the resource active here (forces recovery).
		r.role = RoleStarted
		r.set(rscFailed | rscStop)
	default:
		if r.role < RoleStarted {
			s.setActive(r)
		}
	}
	if clearPast {
		switch *onFail {
		case failStop, failFence, failMigrate, failStandby:
		case failBlock, failIgnore, failDemote, failRecover, failRestartContainer:
			*onFail = failIgnore
			r.setNextRole(RoleUnknown, "clear past failures")
		}
	}
}

// cmpOnFail orders failure responses by severity (cmp_on_fail).
func cmpOnFail(first, second failAction) int {
	switch first {
	case failDemote:
		switch second {
		case failIgnore:
			return 1
		case failDemote:
			return 0
		default:
			return -1
		}
	case failResetRemote:
		switch second {
		case failIgnore, failDemote, failRecover:
			return 1
		case failResetRemote:
			return 0
		default:
			return -1
		}
	case failRestartContainer:
		switch second {
		case failIgnore, failDemote, failRecover, failResetRemote:
			return 1
		case failRestartContainer:
			return 0
		default:
			return -1
		}
	}
	switch second {
	case failDemote:
		if first == failIgnore {
			return -1
		}
		return 1
	case failResetRemote:
		switch first {
		case failIgnore, failDemote, failRecover:
			return -1
		}
		return 1
	case failRestartContainer:
		switch first {
		case failIgnore, failDemote, failRecover, failResetRemote:
			return -1
		}
		return 1
	}
	return int(first) - int(second)
}

func (s *scheduler) unpackRscOpFailure(r *resource, n *node, rc int, op *cib.LRMOp, lastFailure **cib.LRMOp, onFail *failAction) {
	s.recordFailedOp(r, n, op)
	task := op.Task()
	*lastFailure = op
	isProbe := isProbeOp(op)
	key := opTaskKey(op)
	a := s.customAction(r, key, task, nil, true, false)
	if cmpOnFail(*onFail, a.onFail) < 0 {
		*onFail = a.onFail
	}
	switch task {
	case taskStop:
		s.resourceLocation(r, n, -Infinity, "__stop_fail__")
	case taskPromote:
		r.role = RolePromoted
	case taskDemote:
		switch {
		case a.onFail == failBlock:
			r.role = RolePromoted
			r.setNextRole(RoleStopped, "demote with on-fail=block")
		case rc == ocfNotRunning:
			r.role = RoleStopped
		default:
			r.role = RoleUnpromoted
		}
	}
	if isProbe && rc == ocfNotInstalled {
		r.role = RoleStopped
	} else if r.role < RoleStarted {
		s.setActive(r)
	}
	if a.failRole != RoleStarted && r.nextRole < a.failRole {
		r.setNextRole(a.failRole, "failure")
	}
	if a.failRole == RoleStopped {
		for _, x := range s.nodes {
			r.allowed.has[x.idx] = true
			r.allowed.w[x.idx] = -Infinity
		}
	}
}

// processRscState is process_rsc_state: apply the net result of a node's
// history (role, failure handling) to the resource.
func (s *scheduler) processRscState(r *resource, n *node, onFail failAction) {
	if r.role != RoleUnknown {
		r.knownOn[n.idx] = true
	}
	if r.role > RoleStopped && !n.online && !n.maintenance && r.has(rscManaged) {
		if s.stonithEnabled {
			s.fenceNode(n, r.id+" is thought to be active there", false)
		}
	}
	saveOnFail := onFail
	if n.unclean {
		onFail = failIgnore
	}
	switch onFail {
	case failDemote:
		r.set(rscFailed)
	case failFence:
		s.fenceNode(n, r.id+" failed there", false)
	case failStandby:
		n.standby = true
		n.standbyOnFail = true
	case failBlock:
		r.clear(rscManaged)
		r.set(rscBlock)
	case failMigrate:
		s.resourceLocation(r, n, -Infinity, "__action_migration_auto__")
	case failStop:
		r.setNextRole(RoleStopped, "on-fail=stop")
	case failRecover, failRestartContainer, failResetRemote:
		if r.role != RoleStopped && r.role != RoleUnknown {
			r.set(rscFailed | rscStop)
			s.stopAction(r, n, false)
		}
	}
	if r.role != RoleStopped && r.role != RoleUnknown {
		s.addRunning(r, n, saveOnFail != failIgnore)
		switch onFail {
		case failIgnore:
		case failDemote, failBlock:
			r.set(rscFailed)
		default:
			r.set(rscFailed | rscStop)
		}
	} else {
		for _, a := range resourceActions(r, n, taskStop, false) {
			a.set(actOptional)
		}
	}
}

// addRunning is native_add_running.
func (s *scheduler) addRunning(r *resource, n *node, failed bool) {
	if r.isRunningOn(n) {
		return
	}
	r.runningOn = append(r.runningOn, n)
	if !r.isGroup {
		n.running = append(n.running, r)
		// Pacemaker 2.1.5 only makes the resource unmanaged here; it does
		// not get the maintenance flag (so its recurring monitors elsewhere
		// are still scheduled).
		if n.maintenance {
			r.clear(rscManaged)
		}
	}
	if !r.has(rscManaged) {
		s.resourceLocation(r, n, Infinity, "not_managed_default")
		for p := r.parent; p != nil && n.online; p = p.parent {
			p.runningOn = append(p.runningOn, n)
		}
		return
	}
	if !r.isGroup && s.activeCount(r) > 1 {
		switch r.recovery {
		case recoveryStopOnly:
			for _, x := range s.nodes {
				r.allowed.has[x.idx] = true
				r.allowed.w[x.idx] = -Infinity
			}
		case recoveryBlock:
			r.clear(rscManaged)
			r.set(rscBlock)
			if p := r.parent; p != nil && p.isGroup && p.recovery == recoveryBlock {
				for _, c := range p.children {
					c.clear(rscManaged)
					c.set(rscBlock)
				}
			}
		}
	}
	if r.parent != nil {
		s.addRunning(r.parent, n, false)
	}
}

// activeCount is pe__find_active_requires' count: all active nodes for a
// resource that requires fencing, clean ones otherwise.
func (s *scheduler) activeCount(r *resource) int {
	all, clean := 0, 0
	for _, n := range r.runningOn {
		all++
		if n.online && !n.unclean {
			clean++
		}
	}
	if r.has(rscNeedsFencing) {
		return all
	}
	return clean
}

// findActiveOn is pe__find_active_on.
func findActiveOn(r *resource) (active *node, all, clean int) {
	for _, n := range r.runningOn {
		happy := n.online && !n.unclean
		all++
		if happy {
			clean++
		}
		if !r.has(rscNeedsFencing) {
			if happy && (active == nil || !active.online || active.unclean) {
				active = n
			}
		}
		if active == nil {
			active = n
		}
	}
	return active, all, clean
}

// currentNodeOf is pe__current_node.
func currentNodeOf(r *resource) *node {
	n, _, _ := findActiveOn(r)
	return n
}

// --- fail counts -----------------------------------------------------------

// failcount is pe_get_failcount: the sum of the resource's fail-count node
// attributes on n, and the latest last-failure time. With effective, counts
// whose failures have all expired (failure-timeout) are ignored.
func (s *scheduler) failcount(n *node, r *resource, effective bool, xmlOp *cib.LRMOp) (count int, last int64) {
	for k, v := range n.attrs {
		if s.isFailAttr(k, "fail-count-", r.id) {
			count = AddScores(count, ParseScore(v))
		} else if s.isFailAttr(k, "last-failure-", r.id) {
			if t, err := strconv.ParseInt(v, 10, 64); err == nil && t > last {
				last = t
			}
		}
	}
	if count > 0 && r.failureTimeout > 0 && s.blockFailure(r, xmlOp) {
		r.failureTimeout = 0
	}
	if effective && count > 0 && last > 0 && r.failureTimeout != 0 {
		if s.now > last+int64(r.failureTimeout) {
			count = 0
		}
	}
	return count, last
}

// isFailAttr matches Pacemaker's fail-count attribute pattern
// ^PREFIX-RSC#.+_[0-9]+$ (or ^PREFIX-RSC$ for CIBs older than feature set
// 3.0.13, which kept one count per resource) without compiling a regular
// expression per lookup.
func (s *scheduler) isFailAttr(name, prefix, rsc string) bool {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return false
	}
	if rest, ok = strings.CutPrefix(rest, rsc); !ok {
		return false
	}
	if s.legacyFailcounts {
		return rest == ""
	}
	rest, ok = strings.CutPrefix(rest, "#")
	if !ok {
		return false
	}
	i := strings.LastIndexByte(rest, '_')
	if i < 1 || i == len(rest)-1 {
		return false
	}
	for _, c := range rest[i+1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// blockFailure reports whether the failure is for an op configured with
// on-fail=block (whose failures never expire).
func (s *scheduler) blockFailure(r *resource, xmlOp *cib.LRMOp) bool {
	for _, op := range r.ops {
		if lower(op.Attrs.Value("on-fail")) != "block" {
			continue
		}
		if xmlOp == nil {
			return true
		}
		iv := int(parseInterval(op.Interval))
		if iv != xmlOp.IntervalMS() || !strings.EqualFold(op.Name, xmlOp.Task()) {
			continue
		}
		if xmlOp.ID() == r.id+"_last_failure_0" {
			return true
		}
		if xmlOp.ID() == opKey(r.id, op.Name, iv) && xmlOp.RC() != xmlOp.TargetRC() {
			return true
		}
	}
	return false
}

// checkOperationExpiry is check_operation_expiry: whether a history entry
// is older than the failure timeout, and whether to clear a fail count.
func (s *scheduler) checkOperationExpiry(r *resource, n *node, rc int, op *cib.LRMOp) bool {
	isLastFailure := strings.HasSuffix(op.ID(), "_last_failure_0")
	expired := false
	unexpired := 0
	lastRun := op.LastRCChange()
	if r.failureTimeout > 0 && lastRun >= 0 {
		if s.now >= lastRun+int64(r.failureTimeout) {
			expired = true
		}
		unexpired, _ = s.failcount(n, r, true, op)
	}
	clearReason := ""
	if expired {
		if c, _ := s.failcount(n, r, false, op); c != 0 {
			if unexpired == 0 {
				clearReason = "it expired"
			} else {
				expired = false
			}
		}
	}
	if !expired && isLastFailure && s.shouldClearForParamChange(op, r, n) {
		clearReason = "resource parameters have changed"
	}
	if clearReason != "" {
		s.clearFailcount(r, n, clearReason)
	}
	if expired && op.IntervalMS() == 0 && op.Task() == taskMonitor {
		switch rc {
		case ocfOK, ocfNotRunning, ocfRunningPromoted, ocfDegraded, ocfDegradedPromoted:
			expired = false
		}
	}
	return expired
}

func (s *scheduler) shouldClearForParamChange(op *cib.LRMOp, r *resource, n *node) bool {
	task := op.Task()
	if task != taskStart && task != taskMonitor {
		return false
	}
	switch s.digestCompare(r, op, n).rc {
	case digestUnknown, digestMatch:
		return false
	}
	return true
}
