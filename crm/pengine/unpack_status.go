package pengine

import (
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
	// History of a resource that is no longer a primitive is ignored.
	r, ok := s.historyResource(lr.ID(), n)
	if !ok {
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
	if role, ok := targetRole(r.meta["target-role"], inPromotable(r)); ok {
		if r.nextRole == RoleUnknown || role < r.nextRole {
			r.setNextRole(role, "target-role")
		}
	}
	if savedRole > r.role {
		r.role = savedRole
	}
	if (r.role == RoleStopped || r.role == RoleUnknown) && strings.Contains(r.cloneName, ":") {
		// An older numbered history name is kept only for an instance
		// that is active (process_rsc_state).
		r.cloneName = ""
	}
	if r.role == RoleStarted && r.top().isClone && r.top().clone.promotable {
		// A promotable clone's instance that runs is unpromoted.
		r.role = RoleUnpromoted
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
