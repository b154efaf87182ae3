package pengine

import (
	"strconv"

	"ringmaster/crm/cib"
)

// checkActionsFor is check_actions_for: for one resource's history on one
// node, detect agent changes, orphaned or redefined recurring operations,
// and parameter changes.
func (s *scheduler) checkActionsFor(lr *cib.LRMResource, r *resource, n *node) {
	if r.has(rscOrphan) {
		// An anonymous clone's orphaned instance keeps its history (it
		// may be the configured resource's again).
		if !isAnonInstance(r) {
			s.deleteRsc(r, n, false)
		}
		return
	}
	if !r.isRunningOn(n) {
		if s.agentChanged(r, n, lr, false) {
			s.deleteRsc(r, n, false)
		}
		return
	}
	if s.agentChanged(r, n, lr, true) {
		s.deleteRsc(r, n, false)
	}
	ops := sortOpsByCallID(lr.Ops)
	start, stop := activeOps(ops)
	for i, op := range ops {
		if start < stop || i < start {
			continue
		}
		task := op.Task()
		iv := op.IntervalMS()
		if iv > 0 && (r.has(rscMaintenance) || n.maintenance) {
			s.scheduleCancel(r, op, task, iv, n)
			continue
		}
		if iv > 0 || task == taskMonitor || task == taskStart || task == taskPromote || task == taskMigrateFrom {
			if s.checkActionConfig(r, n, op) {
				if c, _ := s.failcount(n, r, true, nil); c != 0 {
					s.clearFailcount(r, n, "action definition changed")
				}
			}
		}
	}
}

// agentChanged is pcmk__rsc_agent_changed.
func (s *scheduler) agentChanged(r *resource, n *node, lr *cib.LRMResource, active bool) bool {
	changed := false
	for _, kv := range [][2]string{{r.cfg.Type, "type"}, {r.cfg.Class, "class"}, {r.cfg.Provider, "provider"}} {
		if kv[0] != lr.Attrs.Value(kv[1]) {
			changed = true
		}
	}
	if changed && active {
		s.customAction(r, opKey(r.id, taskStop, 0), taskStop, n, false, true)
		r.set(rscStartPending)
	}
	return changed
}

// scheduleCancel cancels a recurring operation recorded in the history;
// cancellations are ordered after the resource's stop.
func (s *scheduler) scheduleCancel(r *resource, op *cib.LRMOp, task string, iv int, n *node) {
	cancel := s.cancelAction(r, task, iv, n)
	cancel.meta["call-id"] = strconv.Itoa(op.CallID())
	s.newOrdering(r, opKey(r.id, taskStop, 0), nil, r, "", cancel, orderOptional)
}

func taskForDigest(task string, iv int) string {
	if iv == 0 && (task == taskMonitor || task == taskMigrateFrom || task == taskPromote) {
		return taskStart
	}
	return task
}

// checkActionConfig is pcmk__check_action_config.
func (s *scheduler) checkActionConfig(r *resource, n *node, op *cib.LRMOp) bool {
	task := op.Task()
	iv := op.IntervalMS()
	if iv > 0 {
		if s.findOpConfig(r, opKey(r.id, task, iv), false) == nil {
			if s.stopActionOrphans {
				s.scheduleCancel(r, op, task, iv, n)
			}
			return true
		}
	}
	dtask := taskForDigest(task, iv)
	d := s.digestCompare(r, op, n)
	switch d.rc {
	case digestRestart:
		s.forceRestart(r, dtask, iv)
		return true
	case digestAll, digestUnknown:
		if iv > 0 {
			mon := s.customAction(r, opKey(r.id, dtask, iv), dtask, n, true, true)
			mon.set(actReschedule)
		} else if _, ok := op.Attrs.Get("op-restart-digest"); ok {
			s.reloadRsc(r, n)
		} else {
			s.forceRestart(r, dtask, iv)
		}
		return true
	}
	return false
}

func (s *scheduler) forceRestart(r *resource, task string, iv int) {
	a := s.customAction(r, opKey(r.id, task, iv), task, nil, false, true)
	a.setReason("resource definition change", true)
}

// reloadRsc is ReloadRsc: an agent that supports reload gets a reload
// instead of a restart when only reloadable parameters changed.
func (s *scheduler) reloadRsc(r *resource, n *node) {
	switch {
	case r.collective():
		for _, c := range r.children {
			s.reloadRsc(c, n)
		}
		return
	case !r.has(rscManaged), r.has(rscFailed):
		return
	case r.has(rscStartPending):
		s.stopAction(r, n, false)
		return
	case n == nil:
		return
	}
	r.set(rscReload)
	reload := s.customAction(r, opKey(r.id, taskReloadAgent, 0), taskReloadAgent, n, false, true)
	reload.setReason("resource definition change", false)
	s.newOrdering(nil, "", reload, r, opKey(r.id, taskStop, 0), nil, orderOptional|orderThenCancelsFirst)
	s.newOrdering(nil, "", reload, r, opKey(r.id, taskDemote, 0), nil, orderOptional|orderThenCancelsFirst)
}

// clearFailcountsIfOrphaned schedules fail-count clearing for a removed
// resource on every online node where it has failures.
func (s *scheduler) clearFailcountsIfOrphaned(r *resource) {
	if !r.has(rscOrphan) {
		return
	}
	for _, n := range s.nodes {
		if !n.online {
			continue
		}
		if c, _ := s.failcount(n, r, true, nil); c == 0 {
			continue
		}
		clear := s.clearFailcount(r, n, "it is orphaned")
		s.newOrdering(clear.rsc, "", clear, r, opKey(r.id, taskStop, 0), nil, orderOptional)
	}
}
