package pengine

import (
	"strings"
)

// orderActions is order_actions: link first before then, ignoring an
// existing link with an overlapping type.
func (s *scheduler) orderActions(first, then *action, typ orderFlags) bool {
	if typ == orderNone || first == nil || then == nil || first == then {
		return false
	}
	for _, w := range first.after {
		if w.action == then && w.typ&typ != 0 {
			return false
		}
	}
	first.after = append(first.after, &wrapper{action: then, typ: typ})
	then.before = append(then.before, &wrapper{action: first, typ: typ})
	return true
}

// findActionsByTask looks up a resource's actions by key, retrying with the
// resource's own id (orderings on a group's key reach its actions).
func findActionsByTask(r *resource, key string) []*action {
	list := findActions(r.actions, key, nil)
	if len(list) == 0 {
		if _, task, iv, ok := parseOpKey(key); ok {
			list = findActions(r.actions, opKey(r.id, task, iv), nil)
		}
	}
	return list
}

// applyOrderings is pcmk__apply_orderings: turn ordering constraints into
// action links in creation order (creating a missing "first" action where
// Pacemaker does), then propagate flags along the links.
func (s *scheduler) applyOrderings() {
	for _, o := range s.orderings {
		switch {
		case o.lhRsc != nil:
			s.rscOrderFirst(o.lhRsc, o)
		case o.rhRsc != nil:
			s.orderResourceActionsAfter(o.lhAction, o.rhRsc, o)
		default:
			s.orderActions(o.lhAction, o.rhAction, o.flags)
		}
	}
	for i := len(s.actions) - 1; i >= 0; i-- {
		s.blockColocatedStarts(s.actions[i])
	}
	s.orderProbes()
	for i := len(s.actions) - 1; i >= 0; i-- {
		s.updateActionForOrderings(s.actions[i])
	}
}

func (s *scheduler) orderResourceActionsAfter(first *action, r *resource, o *ordering) {
	var thens []*action
	if o.rhAction != nil {
		thens = []*action{o.rhAction}
	} else {
		thens = findActionsByTask(r, o.rhTask)
	}
	if len(thens) == 0 {
		return
	}
	flags := o.flags
	if first == nil && flags&orderImpliesThen == 0 {
		return
	}
	for _, then := range thens {
		if first != nil {
			s.orderActions(first, then, flags)
		} else {
			then.clear(actRunnable)
		}
	}
}

func (s *scheduler) rscOrderFirst(first *resource, o *ordering) {
	var firsts []*action
	if o.lhAction != nil {
		firsts = []*action{o.lhAction}
	} else {
		firsts = findActionsByTask(first, o.lhTask)
	}
	then := o.rhRsc
	if len(firsts) == 0 && first == then {
		// nothing to order
	} else if len(firsts) == 0 {
		_, task, iv, _ := parseOpKey(o.lhTask)
		state := s.rscState(first)
		if !(state == RoleStopped && task == taskStop) && !(state == RoleUnpromoted && task == taskDemote) {
			a := s.customAction(first, opKey(first.id, task, iv), task, nil, true, true)
			firsts = []*action{a}
		}
	}
	if then == nil {
		if o.rhAction == nil {
			return
		}
		then = o.rhAction.rsc
	}
	for _, f := range firsts {
		if then == nil {
			s.orderActions(f, o.rhAction, o.flags)
		} else {
			s.orderResourceActionsAfter(f, then, o)
		}
	}
}

// rscState is fns->state(rsc, TRUE): the current role (for a group, the
// highest role of its members).
func (s *scheduler) rscState(r *resource) Role {
	if !r.collective() {
		return r.role
	}
	role := RoleStopped
	for _, c := range r.children {
		if cr := s.rscState(c); cr > role {
			role = cr
		}
	}
	return role
}

// --- action flag propagation -------------------------------------------------

type graphChange int

const (
	updatedFirst graphChange = 1 << iota
	updatedThen
	graphDisable
)

// actionFlags is the variant's action_flags method. For a group action it
// derives optional/runnable from the members' corresponding actions (and
// updates the group action as a side effect, as Pacemaker does).
func (s *scheduler) actionFlags(a *action, n *node) *action {
	if a.rsc != nil && a.rsc.isClone {
		return s.cloneActionFlags(a, n)
	}
	if a.rsc == nil || !a.rsc.isGroup {
		return a
	}
	flags := actOptional | actRunnable | actPseudo
	task := complexTask(a.task)
	for _, c := range a.rsc.children {
		ct := task
		ca := findFirstAction(c.actions, "", ct, n)
		if ca != nil {
			cf := s.actionFlags(ca, n).flags
			if flags&actOptional != 0 && cf&actOptional == 0 {
				flags &^= actOptional
				a.clear(actOptional)
			}
			if !strings.EqualFold(ct, a.task) && flags&actRunnable != 0 && cf&actRunnable == 0 {
				flags &^= actRunnable
				a.clear(actRunnable)
			}
		} else if task != taskStop && task != taskDemote {
			flags &^= actRunnable
		}
	}
	return &action{flags: flags}
}

// complexTask folds a collective's "running"/"stopped" style task back into
// the member action name (get_complex_task for primitives).
func complexTask(task string) string {
	switch task {
	case taskStarted:
		return taskStart
	case taskStopped:
		return taskStop
	case taskPromoted:
		return taskPromote
	case taskDemoted:
		return taskDemote
	}
	return task
}

// actionForOrdering remaps a collective's start/stop to its running/stopped
// pseudo action, which completes only when all members have.
func (s *scheduler) actionForOrdering(a *action) *action {
	r := a.rsc
	if r == nil || !r.collective() || a.uuid == "" {
		return a
	}
	_, task, iv, ok := parseOpKey(a.uuid)
	if !ok || iv > 0 {
		return a
	}
	var remapped string
	switch task {
	case taskStop:
		remapped = taskStopped
	case taskStart:
		remapped = taskStarted
	case taskPromote:
		remapped = taskPromoted
	case taskDemote:
		remapped = taskDemoted
	case taskStopped, taskStarted, taskPromoted, taskDemoted:
		remapped = task
	default:
		return a
	}
	if res := findFirstAction(r.actions, opKey(r.id, remapped, 0), "", nil); res != nil {
		return res
	}
	return a
}

func isParent(child, parent *resource) bool {
	for p := child.parent; p != nil; p = p.parent {
		if p == parent {
			return true
		}
	}
	return false
}

// groupLocation is the group's location (fns->location with current=FALSE):
// the node its first assigned member goes to, if all agree.
func groupLocation(g *resource) *node {
	var one *node
	for _, c := range g.children {
		if c.allocatedTo == nil {
			continue
		}
		if one == nil {
			one = c.allocatedTo
		} else if one != c.allocatedTo {
			return nil
		}
	}
	return one
}

// actionFlagsForOrdering is action_flags_for_ordering: a clone action
// ordered against an action on a node takes its optional flag from the
// instances' actions on that node only (a clone starting an instance
// elsewhere does not make it required here), but counts as runnable if
// it is runnable anywhere.
func (s *scheduler) actionFlagsForOrdering(a *action, n *node) actFlags {
	flags := s.actionFlags(a, nil).flags
	if n == nil || a.rsc == nil || !a.rsc.isClone {
		return flags
	}
	runnable := flags&actRunnable != 0
	flags = s.actionFlags(a, n).flags
	if runnable {
		flags |= actRunnable
	}
	return flags
}

// updateActionForOrderings is pcmk__update_action_for_orderings.
func (s *scheduler) updateActionForOrderings(then *action) {
	var changed graphChange
	lastFlags := then.flags
	if then.has(actRequiresAny) {
		then.runnableBefore = 0
		if then.requiredRunnableBefore == 0 {
			then.requiredRunnableBefore = 1
		}
		then.clear(actRunnable)
	}
	for i := len(then.before) - 1; i >= 0; i-- {
		if i >= len(then.before) {
			continue
		}
		other := then.before[i]
		first := other.action
		thenNode := then.node
		firstNode := first.node
		if first.rsc != nil && first.rsc.isGroup && first.task == taskStart {
			if n := groupLocation(first.rsc); n != nil {
				firstNode = n
			}
		}
		if then.rsc != nil && then.rsc.isGroup && then.task == taskStart {
			if n := groupLocation(then.rsc); n != nil {
				thenNode = n
			}
		}
		if other.typ&orderSameNode != 0 && firstNode != nil && thenNode != nil && firstNode != thenNode {
			other.typ = orderNone
			continue
		}
		changed &^= updatedFirst
		if first.rsc != nil && other.typ&orderThenCancelsFirst != 0 && !then.has(actOptional) {
			first.set(actOptional)
			if first.task == taskReloadAgent {
				first.rsc.clear(rscReload)
			}
		}
		if first.rsc != nil && then.rsc != nil && first.rsc != then.rsc && !isParent(then.rsc, first.rsc) {
			first = s.actionForOrdering(first)
		}
		if first == other.action {
			firstFlags := s.actionFlagsForOrdering(first, thenNode)
			thenFlags := s.actionFlagsForOrdering(then, firstNode)
			changed |= s.updateForOrderingFlags(first, then, firstFlags, thenFlags, other)
		} else if s.orderActions(first, then, other.typ) {
			changed |= updatedThen | graphDisable
		}
		if changed&graphDisable != 0 {
			changed &^= graphDisable
			other.typ = orderNone
		}
		if changed&updatedFirst != 0 {
			// Newest link first, as Pacemaker's prepended list.
			after := append([]*wrapper(nil), first.after...)
			for i := len(after) - 1; i >= 0; i-- {
				s.updateActionForOrderings(after[i].action)
			}
			s.updateActionForOrderings(first)
		}
	}
	if then.has(actRequiresAny) {
		if lastFlags == then.flags {
			changed &^= updatedThen
		} else {
			changed |= updatedThen
		}
	}
	if changed&updatedThen != 0 {
		if lastFlags&actRunnable != 0 && !then.has(actRunnable) {
			s.blockColocatedStarts(then)
		}
		s.updateActionForOrderings(then)
		after := append([]*wrapper(nil), then.after...)
		for i := len(after) - 1; i >= 0; i-- {
			s.updateActionForOrderings(after[i].action)
		}
	}
}

// updateForOrderingFlags is update_action_for_ordering_flags.
func (s *scheduler) updateForOrderingFlags(first, then *action, firstFlags, thenFlags actFlags, order *wrapper) graphChange {
	var changed graphChange
	n := then.node
	if order.typ&orderImpliesThenOnNode != 0 {
		order.typ &^= orderImpliesThenOnNode
		order.typ |= orderImpliesThen
		n = first.node
	}
	if order.typ&orderImpliesThen != 0 {
		if then.rsc != nil {
			changed |= s.updateActions(first, then, n, firstFlags&actOptional, actOptional, orderImpliesThen)
		} else if firstFlags&actOptional == 0 && then.has(actOptional) {
			then.clear(actOptional)
			changed |= updatedThen
		}
	}
	if order.typ&orderRestart != 0 && then.rsc != nil {
		changed |= s.updateActions(first, then, n, firstFlags, actOptional|actRunnable, orderRestart)
	}
	if order.typ&orderImpliesFirst != 0 {
		if first.rsc != nil {
			changed |= s.updateActions(first, then, n, firstFlags, actOptional, orderImpliesFirst)
		} else if firstFlags&actOptional == 0 && first.has(actRunnable) {
			first.clear(actRunnable)
			changed |= updatedFirst
		}
	}
	if order.typ&orderPromotedImpliesFirst != 0 && then.rsc != nil {
		changed |= s.updateActions(first, then, n, firstFlags&actOptional, actOptional, orderPromotedImpliesFirst)
	}
	if order.typ&orderOneOrMore != 0 {
		if then.rsc != nil {
			changed |= s.updateActions(first, then, n, firstFlags, actRunnable, orderOneOrMore)
		} else if firstFlags&actRunnable != 0 {
			then.runnableBefore++
			if then.runnableBefore >= then.requiredRunnableBefore && !then.has(actRunnable) {
				then.set(actRunnable)
				changed |= updatedThen
			}
		}
	}
	if order.typ&orderProbe != 0 && then.rsc != nil {
		if firstFlags&actRunnable == 0 && len(first.rsc.runningOn) > 0 {
			order.typ = orderNone
		} else {
			changed |= s.updateActions(first, then, n, firstFlags, actRunnable, orderRunnableLeft)
		}
	}
	if order.typ&orderRunnableLeft != 0 {
		if then.rsc != nil {
			changed |= s.updateActions(first, then, n, firstFlags, actRunnable, orderRunnableLeft)
		} else if firstFlags&actRunnable == 0 && then.has(actRunnable) {
			then.clear(actRunnable)
			changed |= updatedThen
		}
	}
	if order.typ&orderOptional != 0 && then.rsc != nil {
		changed |= s.updateActions(first, then, n, firstFlags, actRunnable, orderOptional)
	}
	if order.typ&orderAsymmetrical != 0 && then.rsc != nil {
		changed |= s.updateActions(first, then, n, firstFlags, actRunnable, orderAsymmetrical)
	}
	if first.has(actRunnable) && order.typ&orderImpliesThenPrinted != 0 && firstFlags&actOptional == 0 {
		then.set(actPrintAlways)
	}
	if order.typ&orderImpliesFirstPrinted != 0 && thenFlags&actOptional == 0 {
		first.set(actPrintAlways)
	}
	if order.typ&(orderImpliesThen|orderImpliesFirst|orderRestart) != 0 && first.rsc != nil &&
		!first.rsc.has(rscManaged) && first.rsc.has(rscBlock) && !first.has(actRunnable) && first.task == taskStop {
		if then.has(actRunnable) {
			then.clear(actRunnable)
			changed |= updatedThen
		}
	}
	return changed
}

// updateActions dispatches to the "then" resource's update_ordered_actions:
// a group applies the ordering to itself and to each member's matching
// action.
func (s *scheduler) updateActions(first, then *action, n *node, flags, filter actFlags, typ orderFlags) graphChange {
	if then.rsc != nil && then.rsc.isClone && canInterleave(first, then) {
		return s.cloneUpdateInterleaved(first, then, n, flags, filter, typ)
	}
	if then.rsc != nil && then.rsc.isClone {
		// pcmk__multi_update_actions without interleaving: the clone
		// action, then each runnable instance action.
		changed := s.primitiveUpdateActions(first, then, n, flags, filter, typ)
		for _, c := range then.rsc.children {
			ca := instanceAction(c, then.task, n)
			if ca == nil || s.actionFlags(ca, n).flags&actRunnable == 0 {
				continue
			}
			cc := s.updateActions(first, ca, n, flags, filter, typ)
			changed |= cc
			if cc&updatedThen != 0 {
				after := append([]*wrapper(nil), ca.after...)
				for i := len(after) - 1; i >= 0; i-- {
					s.updateActionForOrderings(after[i].action)
				}
			}
		}
		return changed
	}
	if then.rsc != nil && then.rsc.isGroup {
		changed := s.primitiveUpdateActions(first, then, n, flags, filter, typ)
		for _, c := range then.rsc.children {
			if ca := findFirstAction(c.actions, "", then.task, n); ca != nil {
				changed |= s.updateActions(first, ca, n, flags, filter, typ)
			}
		}
		return changed
	}
	return s.primitiveUpdateActions(first, then, n, flags, filter, typ)
}

// clearBecause clears a flag on an action and records why (the reason is
// kept only when the cause is another resource's action).
func clearBecause(a *action, flag actFlags, because *action) {
	if !a.has(flag) {
		return
	}
	a.clear(flag)
	if a.rsc != because.rsc {
		change := "unrunnable"
		if flag == actOptional {
			change = "required"
		}
		reason := change
		if because.rsc != nil {
			reason += " " + because.rsc.id
		}
		reason += " " + because.task
		a.setReason(reason, flag == actMigrateRunnable)
	}
}

// primitiveUpdateActions is pcmk__update_ordered_actions.
func (s *scheduler) primitiveUpdateActions(first, then *action, n *node, flags, filter actFlags, typ orderFlags) graphChange {
	var changed graphChange
	thenFlags := then.flags
	firstFlags := first.flags
	if typ&orderAsymmetrical != 0 {
		thenRsc := then.rsc
		if thenRsc != nil {
			role := s.rscState(thenRsc)
			switch {
			case role == RoleStopped && then.task == taskStop:
			case role >= RoleStarted && then.task == taskStart && then.has(actOptional) && then.node != nil &&
				len(thenRsc.runningOn) == 1 && then.node == thenRsc.runningOn[0]:
			case !first.has(actRunnable):
				clearBecause(then, actOptional, first)
				clearBecause(then, actRunnable, first)
			}
		}
	}
	if typ&orderImpliesFirst != 0 && thenFlags&actOptional == 0 {
		if filter&actOptional != 0 && flags&actOptional == 0 && firstFlags&actOptional != 0 {
			clearBecause(first, actOptional, then)
		}
		if flags&actMigrateRunnable != 0 && !then.has(actMigrateRunnable) {
			clearBecause(first, actMigrateRunnable, then)
		}
	}
	if typ&orderPromotedImpliesFirst != 0 {
		if filter&actOptional != 0 && !then.has(actOptional) && then.rsc != nil && then.rsc.role == RolePromoted {
			clearBecause(first, actOptional, then)
		}
	}
	if typ&orderImpliesFirstMig != 0 && filter&actOptional != 0 {
		if !then.has(actMigrateRunnable) || !then.has(actRunnable) {
			clearBecause(first, actRunnable, then)
		}
		if !then.has(actOptional) {
			clearBecause(first, actOptional, then)
		}
	}
	if typ&orderPseudoLeft != 0 && filter&actOptional != 0 {
		if !first.has(actRunnable) {
			clearBecause(then, actMigrateRunnable, first)
			then.clear(actPseudo)
		}
	}
	if typ&orderRunnableLeft != 0 && filter&actRunnable != 0 && then.has(actRunnable) && flags&actRunnable == 0 {
		clearBecause(then, actRunnable, first)
		clearBecause(then, actMigrateRunnable, first)
	}
	if typ&orderImpliesThen != 0 && filter&actOptional != 0 && then.has(actOptional) &&
		flags&actOptional == 0 && !first.has(actMigrateRunnable) {
		clearBecause(then, actOptional, first)
	}
	if typ&orderRestart != 0 {
		s.handleRestartOrdering(first, then, filter)
	}
	if thenFlags != then.flags {
		changed |= updatedThen
		if then.rsc != nil && then.rsc.parent != nil {
			s.updateActionForOrderings(then)
		}
	}
	if firstFlags != first.flags {
		changed |= updatedFirst
	}
	return changed
}

// handleRestartOrdering covers "stop then start" of the same resource (and
// "stop later member then earlier member" in groups): a required or
// unrunnable start makes the stop required.
func (s *scheduler) handleRestartOrdering(first, then *action, filter actFlags) {
	if first.rsc == nil || first.rsc.collective() || then.rsc == nil || then.rsc.collective() {
		return
	}
	reason := ""
	if filter&actOptional != 0 && !then.has(actOptional) {
		reason = "restart"
	}
	if filter&actRunnable != 0 && !then.has(actRunnable) && then.rsc.has(rscManaged) && first.rsc == then.rsc {
		reason = "stop"
	}
	if reason == "" {
		return
	}
	if first.has(actRunnable) {
		clearBecause(first, actOptional, then)
	}
	if !then.has(actOptional) {
		clearBecause(first, actOptional, then)
	}
	if !then.has(actMigrateRunnable) {
		clearBecause(first, actMigrateRunnable, then)
	}
	if !first.has(actOptional) && !first.has(actRunnable) {
		clearBecause(then, actRunnable, first)
	}
}

// blockColocatedStarts is pcmk__block_colocation_dependents: when a start
// can never run, resources that must be colocated with it cannot start
// either.
func (s *scheduler) blockColocatedStarts(a *action) {
	if a.has(actRunnable) || a.rsc == nil {
		return
	}
	isStart := a.task == taskStart
	if !isStart && a.task != taskPromote {
		return
	}
	r := a.rsc.top()
	for _, c := range r.children {
		ca := findFirstAction(c.actions, "", a.task, nil)
		if ca == nil || ca.has(actRunnable) {
			return
		}
	}
	for _, c := range append([]*colocation(nil), r.withThis...) {
		if c.score < Infinity {
			continue
		}
		if !isStart && c.primaryRole != RolePromoted {
			continue
		}
		if c.dependentRole == RolePromoted {
			s.markActionBlocked(c.dependent, taskPromote, a.rsc)
		} else {
			s.markActionBlocked(c.dependent, taskStart, a.rsc)
		}
	}
}

func (s *scheduler) markActionBlocked(r *resource, task string, reason *resource) {
	for _, a := range append([]*action(nil), r.actions...) {
		if a.has(actRunnable) && strings.EqualFold(a.task, task) {
			a.clear(actRunnable)
			a.setReason("colocation with "+reason.id, false)
			s.blockColocatedStarts(a)
			s.updateActionForOrderings(a)
		}
	}
	for _, c := range r.children {
		s.markActionBlocked(c, task, reason)
	}
}

// orderProbes is pcmk__order_probes: every probe must finish before the
// stops of resources restarted after it, and before anything ordered after
// a stop of its resource.
func (s *scheduler) orderProbes() {
	for _, r := range s.resources {
		s.orderFirstRscProbes(r)
	}
	s.orderFirstProbesImplyStops()
}

// orderFirstRscProbes is order_first_rsc_probes: for each probe, follow
// the actions after it and order the probe before the stop (or demote) of
// any other primitive that those actions would start (or promote). A
// resource found running unexpectedly may then be stopped and restarted
// before dependents restart.
func (s *scheduler) orderFirstRscProbes(r *resource) {
	for _, c := range r.children {
		s.orderFirstRscProbes(c)
	}
	if r.collective() {
		return
	}
	for _, probe := range resourceActions(r, nil, taskMonitor, false) {
		// Pacemaker walks the list head first, and new links are
		// prepended, so it sees only those present when it starts.
		after := probe.after
		for i := len(after) - 1; i >= 0; i-- {
			var visited []*action
			s.probeThenRestart(probe, after[i].action, &visited)
			for _, a := range visited {
				a.tracking = false
			}
		}
	}
}

// probeThenRestart is order_first_probe_then_restart_repromote.
func (s *scheduler) probeThenRestart(probe, after *action, visited *[]*action) {
	if probe == nil || probe.rsc == nil || probe.rsc.collective() || after == nil || after.tracking {
		return
	}
	if probe.task != taskMonitor {
		return
	}
	after.tracking = true
	*visited = append(*visited, after)
	if after.rsc != nil && !after.rsc.collective() && probe.rsc != after.rsc {
		var thens []*action
		switch after.task {
		case taskStart:
			thens = resourceActions(after.rsc, nil, taskStop, false)
		case taskPromote:
			thens = resourceActions(after.rsc, nil, taskDemote, false)
		}
		for _, then := range thens {
			if then.has(actPseudo) {
				continue
			}
			s.orderActions(probe, then, orderOptional)
		}
	}
	next := after.after
	for i := len(next) - 1; i >= 0; i-- {
		w := next[i]
		if w.typ&orderImpliesThen == 0 {
			// Only step from a group's action to its members' actions.
			if after.rsc == nil || !after.rsc.collective() || probe.rsc.parent == after.rsc ||
				w.action.rsc == nil || after.rsc != w.action.rsc.parent {
				continue
			}
		}
		s.probeThenRestart(probe, w.action, visited)
	}
}

// orderFirstProbesImplyStops is order_first_probes_imply_stops: "stop X
// then Y" also orders X's probes before Y, since a probe can find X
// running where a stop would have been needed.
func (s *scheduler) orderFirstProbesImplyStops() {
	for _, o := range s.orderings {
		if o.flags == orderNone || o.lhRsc == nil || o.lhRsc == o.rhRsc {
			continue
		}
		if o.lhAction == nil && o.lhTask == "" || o.rhAction == nil && o.rhTask == "" {
			continue
		}
		if o.lhAction != nil && o.lhAction.task != taskStop {
			continue
		}
		if o.lhAction == nil && !strings.HasSuffix(o.lhTask, "_stop_0") {
			continue
		}
		flags := orderOptional
		if o.flags&orderSameNode != 0 {
			flags |= orderSameNode
		}
		if o.flags == orderAntiColocation || o.flags == orderLoad {
			flags = o.flags
		}
		probes := resourceActions(o.lhRsc, nil, taskMonitor, false)
		var real []*action
		for _, p := range probes {
			if p.intervalMS == 0 {
				real = append(real, p)
			}
		}
		if len(real) == 0 {
			continue
		}
		var thens []*action
		if o.rhAction != nil {
			thens = []*action{o.rhAction}
		} else if o.rhRsc != nil {
			thens = findActions(o.rhRsc.actions, o.rhTask, nil)
		}
		for _, p := range real {
			for _, t := range thens {
				if t.task == taskShutdown && p.node != nil && t.node != nil && p.node != t.node {
					continue
				}
				s.orderActions(p, t, flags)
			}
		}
	}
}
