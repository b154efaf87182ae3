package pengine

import "ringmaster/crm/cib"

// scheduleFencingAndShutdowns is schedule_fencing_and_shutdowns: fence
// unclean nodes (when fencing is possible and anything is managed), shut
// down nodes that asked to leave, and order DC actions last.
func (s *scheduler) scheduleFencingAndShutdowns() {
	haveManaged := false
	for _, r := range s.resources {
		if s.isManaged(r) {
			haveManaged = true
			break
		}
	}
	var dcDown *action
	var fencingOps, shutdownOps []*action
	for _, n := range s.nodes {
		var fencing *action
		if haveManaged && n.unclean && s.canFence(n) {
			fencing = s.fenceOp(n, "", false, "node is unclean")
			s.orderVsFence(fencing)
			if n.isDC {
				dcDown = fencing
			} else {
				if !s.concurrentFencing && len(fencingOps) > 0 {
					s.orderActions(fencingOps[0], fencing, orderOptional)
				}
				fencingOps = append([]*action{fencing}, fencingOps...)
			}
		} else if n.online && n.shutdown {
			down := s.shutdownAction(n)
			if n.isDC {
				dcDown = down
			} else {
				shutdownOps = append([]*action{down}, shutdownOps...)
			}
		}
		if fencing == nil && n.unclean {
			s.warnf("node %s is unclean and cannot be fenced", n.name)
		}
	}
	if dcDown != nil {
		if dcDown.task == taskShutdown {
			for _, a := range shutdownOps {
				s.orderActions(a, dcDown, orderOptional)
			}
		}
		if s.concurrentFencing {
			for _, a := range fencingOps {
				s.orderActions(a, dcDown, orderOptional)
			}
		} else if len(fencingOps) > 0 {
			s.orderActions(fencingOps[0], dcDown, orderOptional)
		}
	}
}

func (s *scheduler) isManaged(r *resource) bool {
	if r.has(rscManaged) {
		return true
	}
	for _, c := range r.children {
		if s.isManaged(c) {
			return true
		}
	}
	return false
}

// shutdownAction is pcmk__new_shutdown_action: every stop on the node
// becomes required and is ordered before the shutdown.
func (s *scheduler) shutdownAction(n *node) *action {
	down := s.customAction(nil, taskShutdown+"-"+n.name, taskShutdown, n, false, true)
	for _, a := range s.actions {
		if a.node != n || a.task != taskStop || a.rsc == nil {
			continue
		}
		if a.rsc.has(rscMaintenance) || n.maintenance {
			continue
		}
		if !a.rsc.has(rscManaged) && !a.rsc.has(rscBlock) {
			continue
		}
		a.clear(actOptional)
		s.newOrdering(a.rsc, "", a, nil, taskShutdown, down, orderOptional|orderRunnableLeft)
	}
	down.meta["op_no_wait"] = "true"
	return down
}

// orderVsFence is pcmk__order_vs_fence: starts that need fencing wait for
// it, and stops on the fenced node become pseudo actions implied by it.
func (s *scheduler) orderVsFence(fence *action) {
	for _, r := range s.resources {
		s.rscStonithOrdering(r, fence)
	}
}

func (s *scheduler) rscStonithOrdering(r *resource, fence *action) {
	if r.collective() {
		for _, c := range r.children {
			s.rscStonithOrdering(c, fence)
		}
		return
	}
	if !r.has(rscManaged) {
		return
	}
	target := fence.node
	for _, a := range r.actions {
		switch a.needs {
		case needsFencing:
			s.orderActions(fence, a, orderOptional)
		case needsQuorum:
			if a.task == taskStart && r.allowed.has[target.idx] && !r.knownOn[target.idx] {
				s.orderActions(fence, a, orderOptional|orderRunnableLeft)
			}
		}
	}
	implicit := r.has(rscNeedsFencing)
	stops := resourceActions(r, target, taskStop, false)
	var parentStop *action
	if len(stops) > 0 && implicit {
		parentStop = findFirstAction(r.top().actions, "", taskStop, nil)
	}
	for _, a := range stops {
		a.set(actPseudo | actRunnable)
		if implicit {
			a.set(actImpliedByStonith)
			s.orderActions(fence, a, orderPreserve)
			if parentStop != nil && parentStop != a {
				s.orderActions(fence, parentStop, orderPreserve)
			}
		}
	}
	for _, a := range resourceActions(r, target, taskDemote, false) {
		if !a.node.online || a.node.unclean || r.has(rscFailed) {
			a.set(actPseudo | actRunnable)
			if implicit {
				s.orderActions(fence, a, orderPreserve|orderOptional)
			}
		}
	}
}

// handleConfigChanges is pcmk__handle_rsc_config_changes: compare each
// active resource's history with its configuration (agent, parameters,
// recurring operations) and schedule restarts, reloads or cancellations.
func (s *scheduler) handleConfigChanges() {
	for _, n := range s.nodes {
		// Nodes that cannot run actions are skipped, except in
		// maintenance, where recurring monitors must still be cancelled.
		if !n.maintenance && !n.available() {
			continue
		}
		// Pacemaker looks the history up by node name.
		var ns *cib.NodeState
		for _, x := range s.in.Status.Nodes {
			if x.Uname() == n.name {
				ns = x
				break
			}
		}
		if ns == nil {
			continue
		}
		for _, lr := range ns.Resources {
			if len(lr.Ops) == 0 {
				continue
			}
			// pcmk__rscs_matching_id: every primitive with that id or
			// history name (anonymous clone instances share one).
			for _, r := range s.rscsMatchingID(lr.ID()) {
				s.checkActionsFor(lr, r, n)
			}
		}
	}
}
