package pengine

import (
	"fmt"
	"strconv"
	"strings"

	"ringmaster/crm/cib"
)

// Action names used by the scheduler.
const (
	taskStart          = "start"
	taskStop           = "stop"
	taskMonitor        = "monitor"
	taskPromote        = "promote"
	taskDemote         = "demote"
	taskStarted        = "running"
	taskStopped        = "stopped"
	taskPromoted       = "promoted"
	taskDemoted        = "demoted"
	taskCancel         = "cancel"
	taskDelete         = "delete"
	taskReloadAgent    = "reload-agent"
	taskMigrateTo      = "migrate_to"
	taskMigrateFrom    = "migrate_from"
	taskNotify         = "notify"
	taskFence          = "stonith"
	taskShutdown       = "do_shutdown"
	taskClearFailcount = "clear_failcount"
	taskLrmDelete      = "lrm_delete"
)

// opKey is pcmk__op_key: RSC_TASK_INTERVAL.
func opKey(rsc, task string, intervalMS int) string {
	return rsc + "_" + task + "_" + strconv.Itoa(intervalMS)
}

// parseOpKey splits an operation key into resource, task and interval. The
// resource id may itself contain underscores, so the split is from the right.
func parseOpKey(key string) (rsc, task string, intervalMS int, ok bool) {
	i := strings.LastIndexByte(key, '_')
	if i <= 0 {
		return "", "", 0, false
	}
	iv, err := strconv.Atoi(key[i+1:])
	if err != nil {
		return "", "", 0, false
	}
	rest := key[:i]
	// Tasks that contain an underscore.
	for _, t := range []string{taskMigrateTo, taskMigrateFrom, taskClearFailcount, taskLrmDelete} {
		if strings.HasSuffix(rest, "_"+t) {
			return rest[:len(rest)-len(t)-1], t, iv, true
		}
	}
	j := strings.LastIndexByte(rest, '_')
	if j <= 0 {
		return "", "", 0, false
	}
	return rest[:j], rest[j+1:], iv, true
}

// findOpConfig is find_rsc_op_entry: the configured <op> matching an
// action key (name plus interval).
func (s *scheduler) findOpConfig(r *resource, key string, includeDisabled bool) *cib.Op {
	for _, op := range r.ops {
		if !includeDisabled && !op.Enabled() {
			continue
		}
		iv := int(parseInterval(op.Interval))
		if strings.EqualFold(opKey(r.id, op.Name, iv), key) {
			return op
		}
		// An anonymous clone instance's history names it as the
		// history does ("rsc_monitor_10000" for rsc:0).
		if r.cloneName != "" && strings.EqualFold(opKey(r.cloneName, op.Name, iv), key) {
			return op
		}
	}
	return nil
}

// newAction is new_action + custom_action: it returns the existing action
// with the same key on the same node when there is one (an existing action
// without a node is adopted for this node), otherwise creates it.
func (s *scheduler) customAction(r *resource, key, task string, n *node, optional, save bool) *action {
	var a *action
	if save {
		a = s.findExisting(key, r, n)
	}
	if a == nil {
		a = &action{uuid: key, task: task, rsc: r, node: n, meta: map[string]string{}}
		if task == taskLrmDelete {
			a.set(actDC)
		}
		a.set(actRunnable)
		if optional {
			a.set(actOptional)
		}
		if r != nil {
			a.opEntry = s.findOpConfig(r, key, true)
			_, _, iv, _ := parseOpKey(key)
			s.unpackOperation(a, iv)
		}
		if save {
			a.id = s.actionID
			s.actionID++
			s.actions = append(s.actions, a)
			if r == nil {
				s.singletons[key] = a
			} else {
				r.actions = append(r.actions, a)
				if r.lastByTask == nil {
					r.lastByTask = map[string]*action{}
				}
				r.lastByTask[task] = a
			}
		}
	}
	// update_action_optional: non-recurring actions of unmanaged resources
	// are always optional.
	if a.rsc != nil && a.node != nil && !a.has(actPseudo) && !a.rsc.has(rscManaged) && a.meta["interval"] == "" {
		a.set(actOptional)
	} else if !optional {
		a.clear(actOptional)
	}
	if r != nil {
		s.updateRunnable(a, save)
	}
	return a
}

func (s *scheduler) findExisting(key string, r *resource, n *node) *action {
	if r == nil {
		if n == nil {
			return s.singletons[key]
		}
		for i := len(s.actions) - 1; i >= 0; i-- {
			a := s.actions[i]
			if a.uuid == key && (a.node == nil || a.node == n) {
				if a.node == nil {
					a.node = n
				}
				return a
			}
		}
		return nil
	}
	// Like find_actions: every node-less match is assigned to n, and of
	// several matches the oldest wins (without a node, a key that exists
	// on several nodes thus resolves to the first one created).
	var found *action
	for _, a := range r.actions {
		if !strings.EqualFold(a.uuid, key) {
			continue
		}
		switch {
		case n == nil:
		case a.node == nil:
			a.node = n
		case a.node != n:
			continue
		}
		if found == nil {
			found = a
		}
	}
	return found
}

// effectiveQuorumPolicy returns the no-quorum-policy that applies now.
func (s *scheduler) effectiveQuorumPolicy() noQuorumPolicy {
	if s.haveQuorum {
		return noQuorumIgnore
	}
	return s.noQuorum
}

// updateRunnable is update_resource_action_runnable.
func (s *scheduler) updateRunnable(a *action, forGraph bool) {
	if a.has(actPseudo) {
		return
	}
	switch {
	case a.node == nil:
		a.clear(actRunnable)
	case !a.has(actDC) && !a.node.online:
		a.clear(actRunnable)
		if a.rsc.has(rscManaged) && forGraph && a.task == taskStop && !a.node.unclean {
			s.fenceNode(a.node, "stop is unrunnable", false)
		}
	case !a.has(actDC) && a.node.pending:
		a.clear(actRunnable)
	case a.needs == needsNothing:
		a.setReason("", true)
		a.set(actRunnable)
	default:
		switch s.effectiveQuorumPolicy() {
		case noQuorumStop:
			a.clear(actRunnable)
			a.setReason("no quorum", true)
		case noQuorumFreeze:
			if !s.rscActive(a.rsc) || a.rsc.nextRole > a.rsc.role {
				a.clear(actRunnable)
				a.setReason("quorum freeze", true)
			}
		default:
			a.set(actRunnable)
		}
	}
}

// rscActive is native_active: running on an unclean node, or on an online
// node, or (if unmanaged) on an offline one.
func (s *scheduler) rscActive(r *resource) bool {
	if len(r.children) > 0 {
		for _, c := range r.children {
			if s.rscActive(c) {
				return true
			}
		}
		return false
	}
	for _, n := range r.runningOn {
		if n.unclean {
			return true
		}
		if !n.online && r.has(rscManaged) {
			continue
		}
		return true
	}
	return false
}

func (a *action) setReason(reason string, overwrite bool) {
	if a.reason != "" && !overwrite {
		return
	}
	a.reason = reason
}

// unpackOperation fills an action's meta-attributes, failure handling and
// requirements from op_defaults and the configured <op>.
func (s *scheduler) unpackOperation(a *action, intervalMS int) {
	r := a.rsc
	isProbe := a.task == taskMonitor && intervalMS == 0
	s.evalNVSets(s.cfg().OpDefaults, "", nil, a.meta, false)
	if isProbe {
		if mon := s.minIntervalMonitor(r); mon != nil {
			if t, ok := mon.Attrs.Get("timeout"); ok {
				a.meta["timeout"] = t
			}
		}
	}
	if a.opEntry != nil {
		s.evalNVSets(a.opEntry.Meta, "", nil, a.meta, true)
		for _, at := range a.opEntry.Attrs {
			a.meta[at.Name] = at.Value
		}
	}
	delete(a.meta, "id")
	if intervalMS > 0 {
		a.meta["interval"] = strconv.Itoa(intervalMS)
	} else {
		delete(a.meta, "interval")
	}
	a.intervalMS = intervalMS
	if r.has(rscFenceDevice) && (a.task == taskStart || isProbe) {
		if v, ok := r.params["pcmk_monitor_timeout"]; ok {
			a.meta["timeout"] = v
		}
	}
	timeout := parseMS(a.meta["timeout"])
	if _, ok := a.meta["timeout"]; !ok || timeout < 0 {
		timeout = 20000
	}
	a.meta["timeout"] = strconv.FormatInt(timeout, 10)

	switch {
	case a.task != taskStart && a.task != taskPromote:
		a.needs = needsNothing
	case r.has(rscNeedsFencing):
		a.needs = needsFencing
	case r.has(rscNeedsQuorum):
		a.needs = needsQuorum
	default:
		a.needs = needsNothing
	}

	onFail, haveOnFail := a.meta["on-fail"]
	if haveOnFail && a.task == taskStop {
		switch lower(onFail) {
		case "standby", "demote", "stop":
			haveOnFail = false
		}
	}
	if a.task == taskLrmDelete {
		onFail, haveOnFail = "ignore", true
	}
	if !haveOnFail && a.task == taskDemote {
		// A demote handles failures as the promoted role's recurring
		// monitor says, when that monitor sets on-fail explicitly (the
		// last such monitor wins).
		for _, op := range r.ops {
			v, ok := op.Attrs.Get("on-fail")
			if !ok || op.Name != taskMonitor || parseRole(op.Role) != RolePromoted ||
				parseInterval(op.Interval) == 0 || !op.Enabled() {
				continue
			}
			onFail, haveOnFail = v, true
		}
	}
	a.failRole = RoleUnknown
	set := false
	if haveOnFail {
		set = true
		switch lower(onFail) {
		case "block":
			a.onFail = failBlock
		case "fence":
			a.onFail = failFence
			if !s.stonithEnabled {
				a.onFail = failStop
				a.failRole = RoleStopped
			}
		case "standby":
			a.onFail = failStandby
		case "ignore", "nothing":
			a.onFail = failIgnore
		case "migrate":
			a.onFail = failMigrate
		case "stop":
			a.onFail = failStop
			a.failRole = RoleStopped
		case "restart":
			a.onFail = failRecover
		case "demote":
			a.onFail = failDemote
		default:
			set = false
		}
	}
	if !set {
		if a.task == taskStop {
			if s.stonithEnabled {
				a.onFail = failFence
			} else {
				a.onFail = failBlock
			}
		} else {
			a.onFail = failRecover
		}
	}
	if a.failRole == RoleUnknown {
		if a.task == taskPromote {
			a.failRole = RoleUnpromoted
		} else {
			a.failRole = RoleStarted
		}
	}
}

// minIntervalMonitor finds the enabled recurring monitor with the smallest
// interval; probes inherit its timeout.
func (s *scheduler) minIntervalMonitor(r *resource) *cib.Op {
	var best *cib.Op
	bestIv := int64(-1)
	for _, op := range r.ops {
		if !op.Enabled() || op.Name != taskMonitor {
			continue
		}
		iv := parseInterval(op.Interval)
		if iv > 0 && (bestIv < 0 || iv < bestIv) {
			best, bestIv = op, iv
		}
	}
	return best
}

// Convenience constructors for common resource actions.
func (s *scheduler) stopAction(r *resource, n *node, optional bool) *action {
	return s.customAction(r, opKey(r.id, taskStop, 0), taskStop, n, optional, true)
}

func (s *scheduler) startAction(r *resource, n *node, optional bool) *action {
	return s.customAction(r, opKey(r.id, taskStart, 0), taskStart, n, optional, true)
}

func (s *scheduler) deleteAction(r *resource, n *node, optional bool) *action {
	return s.customAction(r, opKey(r.id, taskDelete, 0), taskDelete, n, optional, true)
}

// resourceActions is pe__resource_actions: actions of rsc with the given
// task (interval 0). With requireNode false, a matching action without a
// node is assigned to n (Pacemaker does this too).
func resourceActions(r *resource, n *node, task string, requireNode bool) []*action {
	key := opKey(r.id, task, 0)
	var out []*action
	for _, a := range r.actions {
		if !strings.EqualFold(a.uuid, key) {
			continue
		}
		if requireNode {
			if n != nil && a.node == n {
				out = append(out, a)
			}
			continue
		}
		switch {
		case n == nil:
			out = append(out, a)
		case a.node == nil:
			a.node = n
			out = append(out, a)
		case a.node == n:
			out = append(out, a)
		}
	}
	return out
}

// findFirstAction is find_first_action over a resource's actions. Pacemaker
// keeps the list newest first, so the most recently created match wins.
func findFirstAction(list []*action, uuid, task string, n *node) *action {
	for i := len(list) - 1; i >= 0; i-- {
		a := list[i]
		if uuid != "" && uuid != a.uuid && (len(uuid) != len(a.uuid) || !strings.EqualFold(uuid, a.uuid)) {
			continue
		}
		if task != "" && task != a.task && (len(task) != len(a.task) || !strings.EqualFold(task, a.task)) {
			continue
		}
		if n == nil {
			return a
		}
		if a.node != nil && a.node == n {
			return a
		}
	}
	return nil
}

// findActions is find_actions: matches by key, adopting node-less actions
// when a node is given.
func findActions(list []*action, key string, n *node) []*action {
	var out []*action
	for _, a := range list {
		if !strings.EqualFold(a.uuid, key) {
			continue
		}
		switch {
		case n == nil:
			out = append(out, a)
		case a.node == nil:
			a.node = n
			out = append(out, a)
		case a.node == n:
			out = append(out, a)
		}
	}
	return out
}

// fenceOp is pe_fence_op: the (singleton) fencing action for a node.
func (s *scheduler) fenceOp(n *node, op string, optional bool, reason string) *action {
	if op == "" {
		op = s.stonithAction
	}
	key := fmt.Sprintf("%s-%s-%s", taskFence, n.name, op)
	a, ok := s.singletons[key]
	if !ok {
		a = s.customAction(nil, key, taskFence, n, true, true)
		a.meta["stonith_action"] = op
		a.meta["on_node"] = n.name
		a.meta["on_node_uuid"] = n.id
	}
	if !optional && s.canFence(n) {
		a.clear(actOptional)
		a.setReason(reason, false)
	} else if reason != "" && a.reason == "" {
		a.reason = reason
	}
	return a
}

// canFence is pe_can_fence.
func (s *scheduler) canFence(n *node) bool {
	switch {
	case !s.stonithEnabled:
		return false
	case !s.haveStonithResource:
		return false
	case s.haveQuorum:
		return true
	case s.noQuorum == noQuorumIgnore:
		return true
	case n == nil:
		return false
	case n.online:
		return true
	}
	return false
}

// fenceNode is pe_fence_node: mark a node unclean and schedule (optional)
// fencing of it.
func (s *scheduler) fenceNode(n *node, reason string, priorityDelay bool) {
	if n.unclean {
		return
	}
	n.unclean = true
	s.fenceOp(n, "", true, reason)
}

// clearFailcount is pe__clear_failcount.
func (s *scheduler) clearFailcount(r *resource, n *node, reason string) *action {
	a := s.customAction(r, opKey(r.id, taskClearFailcount, 0), taskClearFailcount, n, false, true)
	a.meta["op_no_wait"] = "true"
	return a
}

// cancelAction is pcmk__new_cancel_action.
func (s *scheduler) cancelAction(r *resource, task string, intervalMS int, n *node) *action {
	key := opKey(r.id, task, intervalMS)
	a := s.customAction(r, key, taskCancel, n, false, true)
	a.task = taskCancel
	a.cancelTask = task
	a.meta["operation"] = task
	a.meta["interval"] = strconv.Itoa(intervalMS)
	return a
}
