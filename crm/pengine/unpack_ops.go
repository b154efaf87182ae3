package pengine

import (
	"sort"
	"strconv"
	"strings"

	"ringmaster/crm/cib"
)

// Operation history: ordering the entries of a resource on a node, and
// deciding from them what runs where, what failed and how to recover.

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
		s.customAction(r, opKey(r.id, taskDemote, 0), taskDemote, n, false, true)
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
	if !r.collective() {
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
	if !r.collective() && s.activeCount(r) > 1 {
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
