package pengine

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"ringmaster/crm/cib"
)

// Clones (Pacemaker's clone variant): a clone owns clone-max instances of
// one primitive (or group), numbered in their ids (rsc:0, rsc:1, ...). An
// anonymous clone's instances are interchangeable: the history of "rsc" (or
// of an older "rsc:N") on a node is matched to an instance while the status
// is unpacked (find_anonymous_clone), so instance numbers are assigned in a
// fixed order, and graph actions name the resource as the history does.
//
// Supported here: anonymous clones of primitives with clone-max,
// clone-node-max, ordered, location constraints, orderings and colocations
// with other resources. Refused with ErrUnsupported, naming the clone:
// promotable clones, globally-unique clones, notifications, cloned groups,
// clone-min and interleaved orderings/colocations between clones.

// cloneInfo holds a clone's settings (clone_variant_data_t).
type cloneInfo struct {
	max, nodeMax, min int
	interleave        bool
	ordered           bool
	unique            bool
	notify            bool
	promotable        bool
	// promotedMax and promotedNodeMax limit promotion (promotable only).
	promotedMax, promotedNodeMax int
	// notifs are the notification actions of each clone action.
	notifs   []*notifyData
	template *cib.Resource
	// count is the number of instances assigned to each node (node.idx)
	// during distribution: the parent's node->count.
	count []int
}

// unpackClone is clone_unpack: settings, the default stickiness and the
// instances.
func (s *scheduler) unpackClone(r *resource, cr *cib.Resource) error {
	ci := &cloneInfo{template: cr.Children[0], count: make([]int, len(s.nodes))}
	r.isClone, r.clone = true, ci
	ci.promotable = cr.Kind == "master" || cib.IsTrue(r.meta["promotable"])
	ci.unique = cib.IsTrue(r.meta["globally-unique"])
	ci.notify = cib.IsTrue(r.meta["notify"])
	ci.interleave = cib.IsTrue(r.meta["interleave"])
	ci.ordered = cib.IsTrue(r.meta["ordered"])
	ci.max = len(s.nodes)
	if v, ok := r.meta["clone-max"]; ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
			ci.max = n
		}
	}
	ci.nodeMax = 1
	if v, ok := r.meta["clone-node-max"]; ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
			ci.nodeMax = n
		}
	}
	if v, ok := r.meta["clone-min"]; ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
			ci.min = n
		}
	}
	if ci.unique && hasLSB(cr.Children[0]) {
		// LSB services cannot run more than once per node, so a clone of
		// one is forced anonymous: one instance per node, at most as many
		// instances as nodes (Pacemaker logs "Ignoring globally-unique").
		ci.unique = false
		ci.nodeMax = 1
		ci.max = min(ci.max, len(s.nodes))
	}
	// Clones default to a stickiness of 1 (unless resource defaults or the
	// clone set one), so that instances stay where they run.
	if _, ok := r.meta["resource-stickiness"]; !ok {
		r.meta["resource-stickiness"] = "1"
		r.stickiness = 1
	}
	if ci.promotable {
		s.unpackPromotable(r)
	}
	for i := 0; i < ci.max; i++ {
		if _, err := s.newInstance(r); err != nil {
			return err
		}
	}
	return nil
}

// hasLSB reports whether r is, or is a group containing, an LSB primitive.
func hasLSB(r *cib.Resource) bool {
	if strings.EqualFold(r.Class, "lsb") {
		return true
	}
	for _, c := range r.Children {
		if hasLSB(c) {
			return true
		}
	}
	return false
}

// newInstance creates the clone's next instance (pe__create_clone_child).
func (s *scheduler) newInstance(r *resource) (*resource, error) {
	n := len(r.children)
	cr := *r.clone.template
	cr.ID = fmt.Sprintf("%s:%d", cr.ID, n)
	if cr.IsGroup() {
		// A cloned group's instance has numbered members too.
		cr.Children = nil
		for _, m := range r.clone.template.Children {
			mc := *m
			mc.ID = fmt.Sprintf("%s:%d", m.ID, n)
			cr.Children = append(cr.Children, &mc)
		}
	}
	inst, err := s.unpackResource(&cr, r)
	if err != nil {
		return nil, err
	}
	r.children = append(r.children, inst)
	return inst, nil
}

// cloneBaseID is clone_strip: the id without its instance number.
func cloneBaseID(id string) string {
	if i := strings.LastIndexByte(id, ':'); i > 0 {
		if _, err := strconv.Atoi(id[i+1:]); err == nil {
			return id[:i]
		}
	}
	return id
}

// isAnonInstance reports whether r is a primitive inside an anonymous
// clone: an instance, or a member of a cloned group's instance.
func isAnonInstance(r *resource) bool {
	if r.collective() || r.parent == nil {
		return false
	}
	top := r.top()
	return top.isClone && !top.clone.unique
}

// memberNamed returns the primitive of instance inst whose configured id
// (without instance number) is base.
func memberNamed(inst *resource, base string) *resource {
	if !inst.collective() {
		if cloneBaseID(inst.id) == base {
			return inst
		}
		return nil
	}
	for _, c := range inst.children {
		if m := memberNamed(c, base); m != nil {
			return m
		}
	}
	return nil
}

// historyResource is unpack_find_resource: the resource a node's history
// entry id belongs to. For an anonymous clone it picks the instance
// (find_anonymous_clone); ok is false when the entry is to be ignored.
func (s *scheduler) historyResource(id string, n *node) (r *resource, ok bool) {
	r = s.byID[id]
	if r == nil {
		if zero := s.byID[cloneBaseID(id)+":0"]; zero != nil && isAnonInstance(zero) {
			r = zero
		}
	} else if r.isGroup || r.isClone {
		return nil, false
	}
	if r == nil || !isAnonInstance(r) {
		return r, true
	}
	// As unpack_find_resource, the instance is looked for by the id
	// without instance number; the entry's own id is kept as the
	// instance's history name.
	inst := s.findAnonymousInstance(r.top(), n, cloneBaseID(id))
	if inst == nil {
		return nil, false
	}
	if id != inst.id && id != inst.cloneName {
		inst.cloneName = id
	}
	return inst, true
}

// findAnonymousInstance is find_anonymous_clone: the instance active on n,
// else the first inactive one (not blocked, not pending elsewhere), else a
// new orphan instance.
func (s *scheduler) findAnonymousInstance(c *resource, n *node, base string) *resource {
	var found, inactive *resource
	skipInactive := false
	for _, child := range c.children {
		if len(child.runningOn) > 0 {
			if child.isRunningOn(n) {
				m := memberNamed(child, base)
				if m != nil && len(m.runningOn) > 0 {
					// A second history entry here for an instance
					// already active here (after globally-unique was
					// switched off): it and any further ones are
					// orphans.
					skipInactive = true
				} else if m != nil {
					found = m
					break
				}
			}
			continue
		}
		if !skipInactive && inactive == nil && !child.has(rscBlock) {
			m := memberNamed(child, base)
			if m != nil && (m.pendingNode == nil || m.pendingNode == n) {
				inactive = m
			}
		}
	}
	if found == nil && !skipInactive {
		found = inactive
	}
	// An instance that does not need fencing, seen on an offline or unclean
	// node, must not use up an instance number unless the clone runs
	// everywhere.
	if found != nil && !found.has(rscNeedsFencing) && (!n.online || n.unclean) && c.clone.max != len(s.nodes) {
		found = nil
	}
	if found == nil {
		inst, err := s.newInstance(c)
		if err != nil {
			panic(fmt.Sprintf("pengine: orphan instance of %s: %v", c.id, err))
		}
		inst.set(rscOrphan)
		for _, m := range inst.children {
			m.set(rscOrphan)
		}
		if !s.stopOrphans {
			inst.clear(rscManaged)
			for _, m := range inst.children {
				m.clear(rscManaged)
			}
		} else {
			s.resourceLocation(inst, nil, -Infinity, "__orphan_do_not_run__")
		}
		found = memberNamed(inst, base)
	}
	return found
}

// graphName is the name crm_simulate shows for an action's resource: for
// an anonymous instance, the configured id when some instance's history is
// recorded under it (crm_simulate finds a resource by that name), else the
// graph's long-id: the instance's history name (an older "rsc:N", which
// need not be its own number) or its id.
func (s *scheduler) graphName(r *resource) string {
	if !isAnonInstance(r) {
		return r.id
	}
	base := cloneBaseID(r.id)
	for _, c := range s.rscsMatchingID(base) {
		if c.top() == r.top() {
			return base
		}
	}
	if r.cloneName != "" && r.cloneName != base && len(s.rscsMatchingID(r.cloneName)) > 0 {
		return r.cloneName
	}
	return r.id
}

// --- assignment ---------------------------------------------------------

// cloneAssign is pcmk__clone_allocate.
func (s *scheduler) cloneAssign(r *resource, prefer *node) *node {
	if !r.has(rscProvisional) || r.has(rscAllocating) {
		return nil
	}
	if r.clone.promotable {
		s.addPromotionScores(r)
	}
	r.set(rscAllocating)
	for _, c := range append([]*colocation(nil), r.thisWith...) {
		s.assign(c.primary, prefer)
	}
	for _, c := range append([]*colocation(nil), r.withThis...) {
		if !hasInfluence(c, nil) {
			continue
		}
		tbl := r.allowed
		s.mergeScores(c.dependent, r.id, &tbl, c.nodeAttribute, float32(c.score)/float32(Infinity), mergeActive|mergeNonnegative)
		r.allowed = tbl
	}
	s.showScores("pcmk__clone_assign", r)
	sort.SliceStable(r.children, func(i, j int) bool { return s.cmpInstance(r.children[i], r.children[j]) < 0 })
	s.distributeInstances(r)
	if r.clone.promotable {
		s.setInstanceRoles(r)
	}
	r.clear(rscProvisional | rscAllocating)
	return nil
}

// cmpInstance is the assignment order of instances (pcmk__cmp_instance):
//  1. of two active instances, the one active on fewer nodes;
//  2. one whose current node it may still use (its own score there is not
//     negative; an inactive instance counts as able);
//  3. higher priority;
//  4. active before inactive;
//  5. current node able to run resources;
//  6. current node allowed for the clone;
//  7. current node with fewer instances assigned;
//  8. healthy before failed;
//  9. higher score on the current node once the clone's colocations are
//     applied (colocatedScore);
//
// the rest keeps the instance order (the sort is stable).
func (s *scheduler) cmpInstance(a, b *resource) int {
	curA, na, _ := findActiveOn(a)
	curB, nb, _ := findActiveOn(b)
	if na > 0 && nb > 0 && na != nb {
		return na - nb
	}
	usable := func(r *resource, n *node) bool {
		return n == nil || (r.allowed.has[n.idx] && r.allowed.w[n.idx] >= 0)
	}
	canA, canB := usable(a, curA), usable(b, curB)
	if !canA {
		curA = nil
	}
	if !canB {
		curB = nil
	}
	if canA != canB {
		return boolOrder(canA)
	}
	if a.priority != b.priority {
		return b.priority - a.priority
	}
	if curA == nil || curB == nil {
		if curA == nil && curB == nil {
			return 0
		}
		return boolOrder(curA != nil)
	}
	if ra, rb := curA.available(), curB.available(); ra != rb {
		return boolOrder(ra)
	}
	topA, topB := a.top(), b.top()
	okA, okB := topA.allowed.has[curA.idx], topB.allowed.has[curB.idx]
	if !okA || !okB {
		if !okA && !okB {
			return 0
		}
		return boolOrder(okA)
	}
	if topA.isClone && topB.isClone {
		if ca, cb := topA.clone.count[curA.idx], topB.clone.count[curB.idx]; ca != cb {
			return ca - cb
		}
	}
	if fa, fb := anyFailed(a), anyFailed(b); fa != fb {
		return boolOrder(fb)
	}
	if sa, sb := s.colocatedScore(a, curA), s.colocatedScore(b, curB); sa != sb {
		return boolOrder(sa > sb)
	}
	return 0
}

// colocatedScore is the instance's current node's score once the clone's
// colocations are applied to it (cmp_instance_by_colocation): the node's
// base weight, plus the scores of the resources the clone is colocated
// with, plus the nonnegative scores of those colocated with it.
func (s *scheduler) colocatedScore(inst *resource, cur *node) int {
	tbl := newScoreTable(len(s.nodes))
	tbl.has[cur.idx] = true
	tbl.w[cur.idx] = cur.weight
	clone := inst.parent
	for _, c := range clone.thisWith {
		s.mergeScores(c.primary, inst.id, &tbl, c.nodeAttribute, float32(c.score)/float32(Infinity), 0)
	}
	for _, c := range clone.withThis {
		if !hasInfluence(c, inst) {
			continue
		}
		s.mergeScores(c.dependent, inst.id, &tbl, c.nodeAttribute, float32(c.score)/float32(Infinity), mergeNonnegative)
	}
	return tbl.w[cur.idx]
}

// boolOrder sorts true first.
func boolOrder(first bool) int {
	if first {
		return -1
	}
	return 1
}

// anyFailed is did_fail: the resource or any of its members failed.
func anyFailed(r *resource) bool {
	if r.has(rscFailed) {
		return true
	}
	for _, c := range r.children {
		if anyFailed(c) {
			return true
		}
	}
	return false
}

// distributeInstances is distribute_children: instances are first kept
// where they are active, then the rest assigned, up to clone-max.
func (s *scheduler) distributeInstances(r *resource) {
	ci := r.clone
	available := 0
	for _, n := range s.nodes {
		ci.count[n.idx] = 0
		if r.allowed.has[n.idx] && n.available() {
			available++
		}
	}
	allColoc := ci.max < available
	loopMax := 1
	if available > 0 && ci.max/available > 1 {
		loopMax = ci.max / available
	}
	assigned := 0
	for _, child := range r.children {
		if assigned >= ci.max {
			break
		}
		if len(child.runningOn) == 0 || !child.has(rscProvisional) || child.has(rscFailed) {
			continue
		}
		cur := currentNodeOf(child)
		if cur == nil || !r.allowed.has[cur.idx] {
			continue
		}
		if !cur.available() {
			continue
		}
		if ci.count[cur.idx] >= loopMax {
			continue
		}
		if s.assignInstance(r, child, cur, allColoc) {
			assigned++
		}
	}
	for _, child := range r.children {
		if !child.has(rscProvisional) {
			continue
		}
		if assigned >= ci.max {
			s.resourceLocation(child, nil, -Infinity, "clone:limit_reached")
			s.assign(child, nil)
			continue
		}
		if s.assignInstance(r, child, nil, allColoc) {
			assigned++
		}
	}
}

// assignInstance is allocate_instance.
func (s *scheduler) assignInstance(r, child *resource, prefer *node, allColoc bool) bool {
	if !child.has(rscProvisional) {
		return instLocation(child) != nil
	}
	if child.has(rscAllocating) {
		return false
	}
	s.appendParentColocations(r, child, allColoc)
	if prefer != nil {
		if !child.allowed.has[prefer.idx] || child.allowed.w[prefer.idx] < 0 {
			return false
		}
	}
	s.limitInstance(r, child)
	backup := child.allowed.clone()
	chosen := s.assign(child, prefer)
	if chosen != nil && prefer != nil && chosen != prefer {
		child.allowed = backup
		s.unassign(child)
		child.nextRole = RoleUnknown
		return false
	}
	if chosen != nil {
		r.clone.count[chosen.idx]++
	}
	return chosen != nil
}

// limitInstance is can_run_instance for every node the instance may use:
// nodes that cannot run resources, that the clone bans, or that already
// have clone-node-max instances are banned for it.
func (s *scheduler) limitInstance(r, child *resource) {
	for _, n := range s.nodes {
		if !child.allowed.has[n.idx] {
			continue
		}
		switch {
		case child.has(rscOrphan), !n.available(), !r.allowed.has[n.idx]:
			s.resourceNodeScore(child, n, -Infinity, "clone:limit")
		case r.allowed.w[n.idx] < 0:
			// The clone's own negative score bans the node outright, not
			// just lowers the instance's score (can_run_instance adds it
			// and then falls through to the ban).
			s.resourceNodeScore(child, n, r.allowed.w[n.idx], "clone:parent")
			s.resourceNodeScore(child, n, -Infinity, "clone:parent")
		case r.clone.count[n.idx] >= r.clone.nodeMax:
			s.resourceNodeScore(child, n, -Infinity, "clone:node-full")
		}
	}
}

// appendParentColocations is append_parent_colocation: the clone's
// colocations apply to each instance (the positive optional ones only when
// not every node gets an instance).
func (s *scheduler) appendParentColocations(r, child *resource, all bool) {
	for _, c := range r.thisWith {
		if all || c.score < 0 || c.score == Infinity {
			child.thisWith = append([]*colocation{c}, child.thisWith...)
		}
	}
	for _, c := range r.withThis {
		if !hasInfluence(c, child) {
			continue
		}
		if all || c.score < 0 {
			child.withThis = append([]*colocation{c}, child.withThis...)
		}
	}
}

// cloneApplyColocScore is clone_rsc_colocation_rh without interleaving:
// a mandatory colocation with a clone allows only the nodes its instances
// go to; an optional one adds each instance's node.
func (s *scheduler) cloneApplyColocScore(dep, pri *resource, c *colocation) {
	if pri.has(rscProvisional) {
		return
	}
	if pri.clone.promotable && c.primaryRole != RoleUnknown {
		s.promotableColocation(dep, pri, c)
		return
	}
	if s.interleavedColocation(dep, pri, c) {
		return
	}
	if c.score >= Infinity {
		on := make([]bool, len(s.nodes))
		for _, child := range pri.children {
			if n := instLocation(child); n != nil && !child.has(rscBlock) {
				on[n.idx] = true
			}
		}
		for _, n := range s.nodes {
			if dep.allowed.has[n.idx] && !on[n.idx] {
				dep.allowed.w[n.idx] = -Infinity
				s.explainScore(dep, n, -Infinity, "colocation "+c.id+" with "+pri.id)
			}
		}
		return
	}
	for _, child := range pri.children {
		s.applyColocScore(dep, child, c)
	}
}

// --- actions --------------------------------------------------------------

// cloneCreateActions is clone_create_actions: the instances' actions, then
// the clone's start/running/stop/stopped pseudo actions.
func (s *scheduler) cloneCreateActions(r *resource) {
	active, starting, stopping := false, false, false
	for _, c := range r.children {
		s.createActions(c)
		if len(c.runningOn) > 0 {
			active = true
		}
		for _, a := range leafActions(c) {
			if a.has(actOptional) || !a.has(actPseudo) && !a.has(actRunnable) {
				continue
			}
			switch a.task {
			case taskStop:
				stopping = true
			case taskStart:
				if a.has(actRunnable) {
					starting = true
				}
			}
		}
	}
	pseudo := func(task string, optional, runnable bool) *action {
		a := s.customAction(r, opKey(r.id, task, 0), task, nil, optional, true)
		a.set(actPseudo)
		if runnable {
			a.set(actRunnable)
		} else {
			a.clear(actRunnable)
		}
		return a
	}
	start := pseudo(taskStart, !starting, true)
	started := pseudo(taskStarted, !starting, false)
	if active || starting {
		started.set(actRunnable)
	}
	startN := s.cloneNotifPseudoOps(r, taskStart, start, started)
	stop := pseudo(taskStop, !stopping, true)
	stopped := pseudo(taskStopped, !stopping, true)
	stopN := s.cloneNotifPseudoOps(r, taskStop, stop, stopped)
	if startN != nil && stopN != nil {
		// Stop notifications are all done before start notifications.
		s.orderActions(stopN.postDone, startN.pre, orderOptional)
	}
	if r.clone.promotable {
		s.createPromotableActions(r, startN, stopN)
	}
}

// cloneInternalConstraints is clone_internal_constraints.
func (s *scheduler) cloneInternalConstraints(r *resource) {
	s.orderResourceActions(r, taskStopped, r, taskStart, orderOptional)
	s.orderResourceActions(r, taskStart, r, taskStarted, orderRunnableLeft)
	s.orderResourceActions(r, taskStop, r, taskStopped, orderRunnableLeft)
	if r.clone.promotable {
		s.orderResourceActions(r, taskDemoted, r, taskStop, orderOptional)
		s.orderResourceActions(r, taskStarted, r, taskPromote, orderRunnableLeft)
	}
	children := r.children
	if r.clone.ordered {
		children = append([]*resource(nil), children...)
		sort.SliceStable(children, func(i, j int) bool { return children[i].id < children[j].id })
	}
	var last *resource
	for _, c := range children {
		s.internalConstraints(c)
		s.orderResourceActions(r, taskStart, c, taskStart, orderRunnableLeft|orderImpliesFirstPrinted)
		s.orderResourceActions(c, taskStart, r, taskStarted, orderImpliesThenPrinted)
		if r.clone.ordered && last != nil {
			s.orderResourceActions(last, taskStart, c, taskStart, orderOptional)
		}
		s.orderResourceActions(r, taskStop, c, taskStop, orderImpliesFirstPrinted)
		s.orderResourceActions(c, taskStop, r, taskStopped, orderImpliesThenPrinted)
		if r.clone.ordered && last != nil {
			s.orderResourceActions(c, taskStop, last, taskStop, orderOptional)
		}
		last = c
	}
	if r.clone.promotable {
		s.promotableConstraints(r)
	}
}

// cloneActionFlags is summary_action_flags: a clone action is optional
// only if every instance's is, and (except for stops) runnable if any
// instance's is.
func (s *scheduler) cloneActionFlags(a *action, n *node) *action {
	flags := actOptional | actRunnable | actPseudo
	raw := a.task
	if a.task == taskNotify || a.task == "notified" {
		// A notification stands for the action it notifies about
		// (CLONE_pre_notify_start_0 -> start).
		k := strings.TrimSuffix(a.uuid, "_0")
		if i := strings.LastIndex(k, "_notify_"); i >= 0 {
			raw = k[i+len("_notify_"):]
		}
	}
	// A primitive instance's "running" is its start; a cloned group's
	// instance has a "running" of its own, unrunnable unless all its
	// members can start (get_complex_task).
	task := complexTask(raw)
	checkRunnable := task != taskStop
	anyRunnable := false
	for _, c := range a.rsc.children {
		// A cloned group's instance action has no node; its members'
		// actions are looked up on n.
		cn, ct := n, task
		if len(c.children) > 0 {
			cn, ct = nil, raw
		}
		ca := instanceAction(c, ct, cn)
		if ca == nil {
			continue
		}
		cf := s.actionFlags(ca, n).flags
		if flags&actOptional != 0 && cf&actOptional == 0 {
			flags &^= actOptional
			a.clear(actOptional)
		}
		if cf&actRunnable != 0 {
			anyRunnable = true
		}
	}
	if checkRunnable && !anyRunnable {
		flags &^= actRunnable
		if n == nil {
			a.clear(actRunnable)
		}
	}
	return &action{flags: flags}
}

// cloneProbe is clone_create_probe: every instance of a unique clone; for
// an anonymous one, nothing if any instance is known on the node, else one
// probe.
func (s *scheduler) cloneProbe(r *resource, n *node) bool {
	children := append([]*resource(nil), r.children...)
	sort.SliceStable(children, func(i, j int) bool { return instanceNumber(children[i]) < instanceNumber(children[j]) })
	if len(children) == 0 {
		return false
	}
	if r.clone.unique {
		any := false
		for _, c := range children {
			if s.probeRsc(c, n) {
				any = true
			}
		}
		return any
	}
	for _, c := range children {
		if knownOnNode(c, n) {
			return false
		}
	}
	// The instance active there, else the one to be started there, else
	// the first (probe_anonymous_clone).
	var pick *resource
	for _, c := range children {
		if c.isRunningOn(n) {
			pick = c
			break
		}
	}
	for _, c := range children {
		if pick == nil && instLocation(c) == n {
			pick = c
		}
	}
	if pick == nil {
		pick = children[0]
	}
	return s.probeRsc(pick, n)
}

func instanceNumber(r *resource) int {
	if i := strings.LastIndexByte(r.id, ':'); i >= 0 {
		if n, err := strconv.Atoi(r.id[i+1:]); err == nil {
			return n
		}
	}
	return 0
}

// --- status ---------------------------------------------------------------

// RoleList is one "* Started: [ n1 n2 ]" line of a clone.
type RoleList struct {
	Role  string
	Nodes []string
}

// cloneStatus is pe__clone_default: instances that are failed, unmanaged,
// orphaned, or otherwise not plain are listed one by one; the others are
// summarised per role, followed by the nodes where no instance runs.
func (s *scheduler) cloneStatus(r *resource, opts StatusOptions) *ResourceStatus {
	rs := &ResourceStatus{ID: r.id, IsClone: true, Child: r.clone.template.ID, Unique: r.clone.unique, Promotable: r.clone.promotable}
	var flags []string
	if r.clone.promotable {
		flags = append(flags, "promotable")
	}
	if r.clone.unique {
		flags = append(flags, "unique")
	}
	if !r.has(rscManaged) {
		flags = append(flags, "unmanaged")
	}
	if isDisabled(r) {
		flags = append(flags, "disabled")
	}
	rs.Flags = strings.Join(flags, ", ")
	children := append([]*resource(nil), r.children...)
	sort.SliceStable(children, func(i, j int) bool { return instanceNumber(children[i]) < instanceNumber(children[j]) })
	var started, promoted, unpromoted []*node
	active := 0
	for _, c := range children {
		// Only fully active instances count against clone-max for the
		// Stopped list (a partially active cloned group does not).
		fully := len(c.runningOn) > 0
		for _, m := range c.children {
			if len(m.runningOn) == 0 {
				fully = false
			}
		}
		if fully {
			active++
		}
		activeHere := len(c.runningOn) > 0
		var cur *node
		if len(c.runningOn) == 1 {
			cur = c.runningOn[0]
		}
		full := false
		if c.isGroup {
			// A cloned group's instance is summarised only when all its
			// members run, managed and healthy, on one node.
			for _, m := range c.children {
				if cur == nil || !m.isRunningOn(cur) || len(m.runningOn) != 1 || !m.has(rscManaged) || m.has(rscFailed) || m.has(rscOrphan) {
					full = true
				}
			}
			if activeHere && full && !r.clone.unique && !c.has(rscOrphan) {
				rs.Members = append(rs.Members, s.resourceStatus(c, opts))
				continue
			}
		}
		switch {
		case c.has(rscOrphan) && !activeHere:
			continue
		case r.clone.unique:
			full = true
		case !activeHere:
			// inactive: summarised in the Stopped list
			continue
		case c.has(rscOrphan), !c.has(rscManaged), c.has(rscFailed), cur == nil:
			full = true
		case !cur.online && cur.unclean:
			full = true
		}
		switch {
		case full && c.isGroup:
			rs.Members = append(rs.Members, s.resourceStatus(c, opts))
		case full:
			rs.Members = append(rs.Members, s.primitiveStatus(c, opts))
		case s.rscState(c) > RoleUnpromoted:
			promoted = append(promoted, cur)
		case s.rscState(c) == RoleUnpromoted:
			unpromoted = append(unpromoted, cur)
		default:
			started = append(started, cur)
		}
	}
	for _, c := range children {
		if c.has(rscOrphan) && len(c.runningOn) == 0 {
			continue
		}
		rs.Instances = append(rs.Instances, s.resourceStatus(c, opts))
	}
	if !r.clone.unique {
		// An anonymous instance's primitives are shown under their
		// configured id (rsc_printable_id); a group keeps its number.
		for _, m := range rs.Members {
			if m.IsGroup {
				for _, x := range m.Members {
					x.ID = cloneBaseID(x.ID)
				}
			} else {
				m.ID = cloneBaseID(m.ID)
			}
		}
	}
	for _, l := range []struct {
		role  string
		nodes []*node
	}{{"Promoted", promoted}, {"Unpromoted", unpromoted}, {"Started", started}} {
		if len(l.nodes) == 0 {
			continue
		}
		sort.SliceStable(l.nodes, func(i, j int) bool { return numericLess(l.nodes[i].name, l.nodes[j].name) })
		rl := RoleList{Role: l.role}
		if l.role == "Unpromoted" && parseRole(r.meta["target-role"]) == RoleUnpromoted {
			// The clone's own target-role keeps them unpromoted.
			rl.Role = "Unpromoted (target-role)"
		}
		for _, n := range l.nodes {
			rl.Nodes = append(rl.Nodes, n.name)
		}
		rs.Roles = append(rs.Roles, rl)
	}
	if !r.clone.unique && r.clone.max > active {
		rl := RoleList{Role: "Stopped"}
		if parseRole(r.meta["target-role"]) == RoleStopped {
			rl.Role = "Stopped (disabled)"
		}
		useKnown := true
		for _, n := range s.nodes {
			if r.allowed.has[n.idx] {
				useKnown = false
			}
		}
		for _, n := range s.nodes {
			ok := r.allowed.has[n.idx]
			if useKnown {
				ok = false
				for _, c := range r.children {
					if c.knownOn[n.idx] {
						ok = true
					}
				}
			}
			if !ok {
				continue
			}
			// The clone's own running nodes: an unmanaged instance on an
			// offline node did not add that node to them.
			if !r.isRunningOn(n) {
				rl.Nodes = append(rl.Nodes, n.name)
			}
		}
		if len(rl.Nodes) > 0 {
			rs.Roles = append(rs.Roles, rl)
		}
	}
	return rs
}

// rscsMatchingID is pcmk__rscs_matching_id restricted to primitives: those
// whose id or history name is id.
//
// The index is built on first use, once the status (which sets history
// names) has been unpacked; resources are in configuration order.
func (s *scheduler) rscsMatchingID(id string) []*resource {
	if s.byHistoryName == nil {
		s.byHistoryName = map[string][]*resource{}
		var walk func(r *resource)
		walk = func(r *resource) {
			if !r.collective() {
				s.byHistoryName[r.id] = append(s.byHistoryName[r.id], r)
				if r.cloneName != "" && r.cloneName != r.id {
					s.byHistoryName[r.cloneName] = append(s.byHistoryName[r.cloneName], r)
				}
			}
			for _, c := range r.children {
				walk(c)
			}
		}
		for _, r := range s.resources {
			walk(r)
		}
	}
	return s.byHistoryName[id]
}

// minimumFirstInstances is get_minimum_first_instances: how many instances
// of a clone must run their first action before an order's then action
// may: clone-min, or 1 for require-all=false.
func minimumFirstInstances(first *resource, o *cib.Order) int {
	if !first.isClone {
		return 0
	}
	if _, ok := first.meta["clone-min"]; ok {
		return first.clone.min
	}
	if v, ok := cib.ParseBool(o.RequireAll); ok && !v {
		return 1
	}
	return 0
}

// cloneMinOrdering is clone_min_ordering: the instances' first actions
// feed a pseudo action that becomes runnable once min of them are, and the
// then action follows that pseudo action.
func (s *scheduler) cloneMinOrdering(id string, first *resource, firstTask string, then *resource, thenTask string, flags orderFlags, min int) {
	key := "clone-one-or-more:" + id
	met := s.singletons[key]
	if met == nil {
		met = s.customAction(nil, key, key, nil, true, true)
		met.set(actPseudo | actRunnable)
	}
	met.requiredRunnableBefore = min
	met.set(actRequiresAny)
	for _, c := range first.children {
		s.newOrdering(c, opKey(c.id, firstTask, 0), nil, nil, "", met, orderOneOrMore|orderImpliesThenPrinted)
	}
	s.newOrdering(nil, "", met, then, opKey(then.id, thenTask, 0), nil, flags|orderRunnableLeft)
}

// leafActions lists the actions of r's primitives (r's own for a
// primitive), as clone_update_pseudo_status walks them.
func leafActions(r *resource) []*action {
	if !r.collective() {
		return r.actions
	}
	var out []*action
	for _, c := range r.children {
		out = append(out, leafActions(c)...)
	}
	return out
}

// knownOnNode reports whether r (or, for a group, any member) has been
// seen on n.
func knownOnNode(r *resource, n *node) bool {
	if r.knownOn[n.idx] {
		return true
	}
	for _, c := range r.children {
		if knownOnNode(c, n) {
			return true
		}
	}
	return false
}

// --- interleaving -----------------------------------------------------------

// canInterleave is can_interleave_actions: an ordering between two clones
// applies instance by instance when the clone that acts second (the first
// one for stops and demotes) is interleaved.
func canInterleave(first, then *action) bool {
	if first.rsc == nil || then.rsc == nil || first.rsc == then.rsc || !first.rsc.isClone || !then.rsc.isClone {
		return false
	}
	r := then.rsc
	if strings.HasSuffix(then.uuid, "_stop_0") || strings.HasSuffix(then.uuid, "_demote_0") {
		r = first.rsc
	}
	return r.clone.interleave
}

// instanceNode is fns->location: where an instance runs now (current) or
// is assigned to; nil for a blocked one.
func instanceNode(r *resource, current bool) *node {
	if current {
		if r.isGroup {
			var one *node
			for _, c := range r.children {
				for _, n := range c.runningOn {
					if one == nil {
						one = n
					} else if one != n {
						return nil
					}
				}
			}
			return one
		}
		if len(r.runningOn) == 1 {
			return r.runningOn[0]
		}
		return nil
	}
	return instLocation(r)
}

// compatibleInstance is find_compatible_child: the instance of clone c on
// the node where local runs (or is assigned), else on the first of local's
// allowed nodes that has one.
func (s *scheduler) compatibleInstance(local, c *resource, filter Role, current bool) *resource {
	byNode := func(n *node) *resource {
		for _, x := range c.children {
			var at *node
			if !blockedRecursive(x) {
				at = instanceNode(x, current)
			}
			role := x.nextRole
			if current {
				role = s.rscState(x)
			}
			if filter != RoleUnknown && role != filter {
				continue
			}
			if at != nil && at == n {
				return x
			}
		}
		return nil
	}
	if n := instanceNode(local, current); n != nil {
		return byNode(n)
	}
	for _, n := range s.sortedAllowedNodes(local) {
		if x := byNode(n); x != nil {
			return x
		}
	}
	return nil
}

func blockedRecursive(r *resource) bool {
	if r.has(rscBlock) {
		return true
	}
	for _, c := range r.children {
		if blockedRecursive(c) {
			return true
		}
	}
	return false
}

// cloneUpdateInterleaved is clone_update_actions_interleave: the ordering
// is applied between each then instance and the first clone's instance on
// the same node; a then instance without one cannot run when the ordering
// is mandatory.
func (s *scheduler) cloneUpdateInterleaved(first, then *action, n *node, flags, filter actFlags, typ orderFlags) graphChange {
	var changed graphChange
	current := strings.HasSuffix(first.uuid, "_stopped_0") || strings.HasSuffix(first.uuid, "_demoted_0")
	firstTask := complexTask(first.task)
	for _, tc := range then.rsc.children {
		fc := s.compatibleInstance(tc, first.rsc, RoleUnknown, current)
		if fc == nil {
			if !current && typ&(orderRunnableLeft|orderImpliesThen) != 0 {
				if s.unassignInstance(tc) {
					changed |= updatedThen
				}
			}
			continue
		}
		fa := findFirstAction(fc.actions, "", firstTask, n)
		ta := findFirstAction(tc.actions, "", then.task, n)
		if fa == nil || ta == nil {
			continue
		}
		if s.orderActions(fa, ta, typ) {
			changed |= updatedFirst | updatedThen
		}
		changed |= s.updateActions(fa, ta, n, s.actionFlags(fa, n).flags, filter, typ)
	}
	return changed
}

// unassignInstance is assign_node(instance, NULL, TRUE): the instance is
// stopped; it reports whether that changed anything.
func (s *scheduler) unassignInstance(r *resource) bool {
	if r.collective() {
		changed := false
		for _, c := range r.children {
			if s.unassignInstance(c) {
				changed = true
			}
		}
		return changed
	}
	was := r.allocatedTo != nil
	s.finalizeAssignment(r, nil, true)
	return was
}

// interleavedColocation is the interleaved case of clone_rsc_colocation_rh:
// an instance of an interleaved clone is colocated with the other clone's
// instance on its node, not with the whole clone.
func (s *scheduler) interleavedColocation(dep, pri *resource, c *colocation) bool {
	if c.dependent == nil || !c.dependent.isClone || !c.dependent.clone.interleave || dep == c.dependent {
		return false
	}
	if c.dependent.clone.nodeMax != pri.clone.nodeMax {
		s.warnf("cannot interleave %s and %s because they do not support the same number of instances per node", c.dependent.id, pri.id)
		return false
	}
	pi := s.compatibleInstance(dep, pri, RoleUnknown, false)
	switch {
	case pi != nil:
		s.applyColocScore(dep, pi, c)
	case c.score >= Infinity:
		s.unassignInstance(dep)
	}
	return true
}

// instanceAction is find_first_action(child->actions, NULL, task, node)
// for clone-wide updates; without a node it uses the per-task index.
func instanceAction(c *resource, task string, n *node) *action {
	if n == nil {
		if a := c.lastByTask[task]; a != nil {
			return a
		}
		if lower(task) == task {
			return nil
		}
	}
	return findFirstAction(c.actions, "", task, n)
}
