package pengine

import (
	"strconv"
	"strings"

	"ringmaster/crm/cib"
)

// roleNext is rsc_state_matrix: the next role on the way from one role to
// another (a stopped resource starts before it can be promoted, a promoted
// one demotes before it stops).
var roleNext = [5][5]Role{
	/* Unknown */ {RoleUnknown, RoleStopped, RoleStopped, RoleStopped, RoleStopped},
	/* Stopped */ {RoleStopped, RoleStopped, RoleStarted, RoleUnpromoted, RoleUnpromoted},
	/* Started */ {RoleStopped, RoleStopped, RoleStarted, RoleUnpromoted, RolePromoted},
	/* Unpromoted */ {RoleStopped, RoleStopped, RoleStopped, RoleUnpromoted, RolePromoted},
	/* Promoted */ {RoleStopped, RoleUnpromoted, RoleUnpromoted, RoleUnpromoted, RolePromoted},
}

type transitionFn int

const (
	fnError transitionFn = iota
	fnStop
	fnStart
	fnPromote
	fnDemote
	fnNull
)

// roleAction is rsc_action_matrix: which action takes one role to the next.
var roleAction = [5][5]transitionFn{
	/* Unknown */ {fnError, fnStop, fnError, fnError, fnError},
	/* Stopped */ {fnError, fnNull, fnStart, fnStart, fnError},
	/* Started */ {fnError, fnStop, fnNull, fnNull, fnPromote},
	/* Unpromoted */ {fnError, fnStop, fnStop, fnNull, fnPromote},
	/* Promoted */ {fnError, fnDemote, fnDemote, fnDemote, fnNull},
}

func (s *scheduler) runTransition(fn transitionFn, r *resource, next *node, optional bool) bool {
	switch fn {
	case fnStop:
		return s.stopRsc(r, next, optional)
	case fnStart:
		return s.startRsc(r, next, optional)
	case fnPromote:
		return s.promoteRsc(r, next, optional)
	case fnDemote:
		return s.demoteRsc(r, next, optional)
	}
	return false
}

// createActions dispatches on variant.
func (s *scheduler) createActions(r *resource) {
	if r.isGroup {
		s.groupCreateActions(r)
		return
	}
	if r.isClone {
		s.cloneCreateActions(r)
		return
	}
	s.primitiveCreateActions(r)
}

func (s *scheduler) groupCreateActions(g *resource) {
	for _, c := range g.children {
		s.createActions(c)
	}
	tasks := []string{taskStart, taskStarted, taskStop, taskStopped}
	if p := g.parent; p != nil && p.isClone && p.clone.promotable {
		// A group in a promotable clone has role changes too, as
		// ordering points for its members'.
		tasks = append(tasks, taskDemote, taskDemoted, taskPromote, taskPromoted)
	}
	for _, t := range tasks {
		a := s.customAction(g, opKey(g.id, t, 0), t, nil, true, true)
		a.set(actPseudo | actRunnable)
	}
}

// primitiveCreateActions is pcmk__primitive_create_actions.
func (s *scheduler) primitiveCreateActions(r *resource) {
	if r.nextRole == RoleUnknown {
		if r.allocatedTo == nil {
			r.setNextRole(RoleStopped, "assignment")
		} else {
			r.setNextRole(RoleStarted, "assignment")
		}
	}
	needStop, needPromote, isMoving := false, false, false
	current, numAll, numClean := findActiveOn(r)
	if current != nil && r.allocatedTo != nil && current != r.allocatedTo && r.nextRole >= RoleStarted {
		isMoving = true
		needStop = true
	}
	var multiply bool
	if r.has(rscNeedsFencing) {
		multiply = numAll > 1
	} else {
		multiply = numClean > 1
	}
	if multiply {
		switch r.recovery {
		case recoveryStopStart:
			needStop = true
		case recoveryStopUnexpected:
			needStop = true
			r.set(rscStopUnexpected)
		}
	} else {
		r.clear(rscStopUnexpected)
	}
	if r.has(rscStartPending) {
		st := s.startAction(r, r.allocatedTo, true)
		st.set(actPrintAlways)
	}
	switch {
	case isMoving:
	case r.has(rscFailed):
		if r.has(rscStop) {
			needStop = true
		} else if r.nextRole == RolePromoted {
			needPromote = true
		}
	case r.has(rscBlock):
		needStop = true
	case r.role > RoleStarted && current != nil && r.allocatedTo != nil:
		st := s.startAction(r, r.allocatedTo, true)
		if !st.has(actOptional) {
			needStop = true
		}
	}
	s.scheduleRestartActions(r, current, r.allocatedTo, needStop, needPromote)
	s.scheduleRoleTransition(r)
	s.createRecurringActions(r)
}

// scheduleRestartActions brings a resource down to stopped on its current
// node and back up to its current role on its next node; the actions are
// optional unless a restart is needed.
func (s *scheduler) scheduleRestartActions(r *resource, current, chosen *node, needStop, needPromote bool) {
	role := r.role
	r.set(rscRestarting)
	for role != RoleStopped {
		next := roleNext[role][RoleStopped]
		if !s.runTransition(roleAction[role][next], r, current, !needStop) {
			break
		}
		role = next
	}
	for r.role <= r.nextRole && role != r.role && !r.has(rscBlock) {
		required := needStop
		next := roleNext[role][r.role]
		if next == RolePromoted && needPromote {
			required = true
		}
		if !s.runTransition(roleAction[role][next], r, chosen, !required) {
			break
		}
		role = next
	}
	r.clear(rscRestarting)
}

func (s *scheduler) scheduleRoleTransition(r *resource) {
	role := r.role
	for role != r.nextRole {
		next := roleNext[role][r.nextRole]
		if !s.runTransition(roleAction[role][next], r, r.allocatedTo, false) {
			break
		}
		role = next
	}
}

// isExpectedNode: with multiple-active=stop_unexpected, the node the
// resource stays on is not stopped (and its start is a pseudo action).
func isExpectedNode(r *resource, n *node) bool {
	return r.has(rscStopUnexpected) && r.has(rscRestarting) && r.nextRole > RoleStopped &&
		r.allocatedTo != nil && n != nil && r.allocatedTo == n
}

func (s *scheduler) stopRsc(r *resource, next *node, optional bool) bool {
	for _, cur := range r.runningOn {
		if isExpectedNode(r, cur) {
			continue
		}
		stop := s.stopAction(r, cur, optional)
		if r.allocatedTo == nil {
			stop.setReason("node availability", true)
		} else if r.has(rscRestarting) && r.has(rscStopUnexpected) {
			stop.setReason("being multiply active", true)
		}
		if !r.has(rscManaged) {
			stop.clear(actRunnable)
		}
		if s.removeAfter {
			s.deleteRsc(r, cur, optional)
		}
	}
	return true
}

func (s *scheduler) startRsc(r *resource, next *node, optional bool) bool {
	start := s.startAction(r, next, true)
	if start.has(actRunnable) && !optional {
		start.clear(actOptional)
	}
	if isExpectedNode(r, next) {
		start.set(actPseudo)
	}
	return true
}

func (s *scheduler) promoteRsc(r *resource, next *node, optional bool) bool {
	if next == nil {
		return false
	}
	runnable := true
	for _, st := range resourceActions(r, next, taskStart, true) {
		if !st.has(actRunnable) {
			runnable = false
		}
	}
	if runnable {
		p := s.customAction(r, opKey(r.id, taskPromote, 0), taskPromote, next, optional, true)
		if isExpectedNode(r, next) {
			p.set(actPseudo)
		}
		return true
	}
	for _, p := range resourceActions(r, next, taskPromote, true) {
		p.clear(actRunnable)
	}
	return true
}

func (s *scheduler) demoteRsc(r *resource, next *node, optional bool) bool {
	if isExpectedNode(r, next) {
		return true
	}
	for _, cur := range r.runningOn {
		s.customAction(r, opKey(r.id, taskDemote, 0), taskDemote, cur, optional, true)
	}
	return true
}

// deleteRsc is DeleteRsc: schedule clearing a resource's history on a node.
func (s *scheduler) deleteRsc(r *resource, n *node, optional bool) bool {
	if r.has(rscFailed) || n == nil || n.unclean || !n.online {
		return false
	}
	s.deleteAction(r, n, optional)
	then := orderOptional
	if optional {
		then = orderImpliesThen
	}
	s.orderResourceActions(r, taskStop, r, taskDelete, then)
	s.orderResourceActions(r, taskDelete, r, taskStart, then)
	return true
}

// --- recurring operations --------------------------------------------------

type recurringOp struct {
	op         *cib.Op
	name       string
	intervalMS int
	// role is the op's configured role; hasRole tells whether it has one
	// (an unknown role name counts as configured, as in Pacemaker).
	role    Role
	hasRole bool
	key     string
}

// recurringOps lists the configured operations that recur, as
// is_recurring_history decides: a non-zero interval, an action that may
// recur, enabled, and not configured twice with the same name and
// interval (then none of the duplicates is used).
func (s *scheduler) recurringOps(r *resource) []recurringOp {
	count := map[string]int{}
	for _, op := range r.ops {
		if iv := int(parseInterval(op.Interval)); iv != 0 {
			count[opKey(r.id, op.Name, iv)]++
		}
	}
	var out []recurringOp
	for _, op := range r.ops {
		iv := int(parseInterval(op.Interval))
		if iv == 0 {
			continue
		}
		switch op.Name {
		case taskStop, taskStart, taskDemote, taskPromote, taskReloadAgent, taskMigrateTo, taskMigrateFrom:
			continue
		}
		key := opKey(r.id, op.Name, iv)
		if count[key] > 1 || !op.Enabled() {
			continue
		}
		ro := recurringOp{op: op, name: op.Name, intervalMS: iv, key: key}
		if op.Role != "" {
			ro.role, ro.hasRole = parseRole(op.Role), true
		}
		out = append(out, ro)
	}
	return out
}

// createRecurringActions is pcmk__create_recurring_actions.
func (s *scheduler) createRecurringActions(r *resource) {
	if r.has(rscBlock) || r.has(rscMaintenance) {
		return
	}
	var start *action
	switch {
	case r.allocatedTo == nil:
	case r.allocatedTo.maintenance:
	case r.nextRole != RoleStopped || !r.has(rscManaged):
		start = s.startAction(r, r.allocatedTo, true)
	}
	for _, op := range s.recurringOps(r) {
		if start != nil {
			s.recurringForActive(r, start, r.allocatedTo, op)
		}
		s.recurringForInactive(r, r.allocatedTo, op)
	}
}

func (s *scheduler) activeRecurringOptional(r *resource, n *node, key string, start *action) bool {
	if n == nil {
		return false
	}
	if !s.actionFlags(start, nil).has(actOptional) {
		return false
	}
	matches := resourceActionsByKey(r, key, n)
	if len(matches) == 0 {
		return false
	}
	for _, m := range matches {
		if m.has(actReschedule) {
			return false
		}
	}
	return true
}

func resourceActionsByKey(r *resource, key string, n *node) []*action {
	var out []*action
	for _, a := range r.actions {
		if a.uuid == key && a.node != nil && a.node == n {
			out = append(out, a)
		}
	}
	return out
}

// recurringForActive is recurring_op_for_active: a monitor for the role
// the resource will have on its node, or a cancellation when the
// configured role does not match.
func (s *scheduler) recurringForActive(r *resource, start *action, n *node, op recurringOp) {
	if op.hasRole && op.role == RoleStopped {
		return
	}
	optional := s.activeRecurringOptional(r, n, op.key, start)
	if (op.hasRole && r.nextRole != op.role) || (!op.hasRole && r.nextRole == RolePromoted) {
		if optional {
			cancel := s.cancelAction(r, op.name, op.intervalMS, n)
			after := ""
			switch r.role {
			case RoleUnpromoted, RoleStarted:
				if r.nextRole == RolePromoted {
					after = opKey(r.id, taskPromote, 0)
				} else if r.nextRole == RoleStopped {
					after = opKey(r.id, taskStop, 0)
				}
			case RolePromoted:
				after = opKey(r.id, taskDemote, 0)
			}
			if after != "" {
				s.newOrdering(r, "", cancel, r, after, nil, orderRunnableLeft)
			}
		}
		return
	}
	mon := s.customAction(r, op.key, op.name, n, optional, true)
	switch {
	case !start.has(actRunnable):
		mon.clear(actRunnable)
	case n == nil || !n.online || n.unclean:
		mon.clear(actRunnable)
	}
	if r.nextRole == RolePromoted {
		mon.meta["op_target_rc"] = strconv.Itoa(ocfRunningPromoted)
	}
	if n == nil || r.has(rscManaged) {
		s.newOrdering(r, opKey(r.id, taskStart, 0), nil, nil, mon.uuid, mon, orderImpliesThen|orderRunnableLeft)
		s.newOrdering(r, opKey(r.id, taskReloadAgent, 0), nil, nil, mon.uuid, mon, orderImpliesThen|orderRunnableLeft)
		if r.nextRole == RolePromoted {
			s.newOrdering(r, opKey(r.id, taskPromote, 0), nil, r, "", mon, orderOptional|orderRunnableLeft)
		} else if r.role == RolePromoted {
			s.newOrdering(r, opKey(r.id, taskDemote, 0), nil, r, "", mon, orderOptional|orderRunnableLeft)
		}
	}
}

// recurringForInactive is recurring_op_for_inactive: a monitor configured
// for role Stopped runs on every node except the one the resource will be
// active on (where a running one is cancelled), after the resource's
// probes and stops there.
func (s *scheduler) recurringForInactive(r *resource, n *node, op recurringOp) {
	if !op.hasRole || op.role != RoleStopped {
		return
	}
	for _, stopNode := range s.nodes {
		if n != nil && strings.EqualFold(stopNode.name, n.name) {
			s.cancelIfRunning(r, n, op)
			continue
		}
		optional := len(resourceActionsByKey(r, op.key, stopNode)) > 0
		mon := s.customAction(r, op.key, op.name, stopNode, optional, true)
		mon.meta["op_target_rc"] = strconv.Itoa(ocfNotRunning)
		if r.has(rscManaged) {
			for _, probe := range resourceActions(r, stopNode, taskMonitor, false) {
				s.orderActions(probe, mon, orderRunnableLeft)
			}
		}
		s.orderAfterStops(r, stopNode, mon)
		if !stopNode.online || stopNode.unclean {
			mon.clear(actRunnable)
		}
	}
}

// cancelIfRunning cancels a Stopped-role monitor on the node where the
// resource will be active; a start there waits for the cancellation.
func (s *scheduler) cancelIfRunning(r *resource, n *node, op recurringOp) {
	if len(resourceActionsByKey(r, op.key, n)) == 0 {
		return
	}
	cancel := s.cancelAction(r, op.name, op.intervalMS, n)
	switch r.nextRole {
	case RoleStarted, RoleUnpromoted:
		s.newOrdering(r, "", cancel, r, opKey(r.id, taskStart, 0), nil, orderRunnableLeft)
	}
}

// orderAfterStops is order_after_stops: an action for the inactive role
// follows the resource's stops on the node and cannot run when they
// cannot.
func (s *scheduler) orderAfterStops(r *resource, n *node, a *action) {
	for _, stop := range resourceActions(r, n, taskStop, true) {
		if !stop.has(actOptional) && !a.has(actOptional) && !r.has(rscManaged) {
			a.set(actOptional)
		}
		if !stop.has(actRunnable) {
			a.clear(actRunnable)
		}
		if r.has(rscManaged) {
			s.newOrdering(r, opKey(r.id, taskStop, 0), stop, nil, "", a, orderImpliesThen|orderRunnableLeft)
		}
	}
}

// --- probes ------------------------------------------------------------------

// scheduleProbes is pcmk__schedule_probes: probe every resource whose state
// on an online, clean node is unknown.
func (s *scheduler) scheduleProbes() {
	for _, n := range s.nodes {
		if !n.online || n.unclean {
			continue
		}
		if v, ok := n.attrs["probe_complete"]; ok && !cib.IsTrue(v) {
			a := s.customAction(nil, "probe_nodes-"+n.name, "probe_nodes", n, false, true)
			a.meta["op_no_wait"] = "true"
			continue
		}
		for _, r := range s.resources {
			s.probeRsc(r, n)
		}
	}
}

func (s *scheduler) probeRsc(r *resource, n *node) bool {
	if !s.probes {
		return false
	}
	if r.isClone {
		return s.cloneProbe(r, n)
	}
	if r.isGroup {
		any := false
		for _, c := range r.children {
			if s.probeRsc(c, n) {
				any = true
			}
		}
		return any
	}
	if r.has(rscOrphan) || r.knownOn[n.idx] {
		return false
	}
	top := r.top()
	allowedHas := r.allowed.has[n.idx]
	if r.has(rscExclusiveDiscover) || top.has(rscExclusiveDiscover) {
		if !allowedHas || r.allowed.discover[n.idx] != discoverExclusive {
			return false
		}
	}
	if allowedHas && r.allowed.discover[n.idx] == discoverNever {
		return false
	}
	probe := s.customAction(r, opKey(r.id, taskMonitor, 0), taskMonitor, n, false, true)
	probe.clear(actOptional)
	if !r.isRunningOn(n) {
		probe.meta["op_target_rc"] = strconv.Itoa(ocfNotRunning)
	} else if r.role == RolePromoted {
		probe.meta["op_target_rc"] = strconv.Itoa(ocfRunningPromoted)
	}
	flags := orderOptional
	if !probe.has(actRunnable) && len(r.runningOn) == 0 {
		flags |= orderRunnableLeft
	}
	s.newOrdering(r, "", probe, r, opKey(r.id, taskStart, 0), nil, flags)
	s.newOrdering(r, "", probe, r, opKey(r.id, taskReloadAgent, 0), nil, orderOptional)
	return true
}
