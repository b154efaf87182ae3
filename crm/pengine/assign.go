package pengine

import (
	"math"
	"sort"
	"strings"
)

// infinityHack temporarily marks a node unusable while merging scores.
const infinityHack = Infinity * -100

// nodeAvailableForScore is pcmk__node_available(node, true, false).
func (t *scoreTable) usable(n *node) bool {
	return n.available() && t.has[n.idx] && t.w[n.idx] >= 0
}

// anyAvailable is pcmk__any_node_available.
func (s *scheduler) anyAvailable(t *scoreTable) bool {
	for _, n := range s.nodes {
		if t.usable(n) {
			return true
		}
	}
	return false
}

// sortedAllowedNodes orders a resource's allowed nodes for assignment.
//
// Tie-breaks (compare_nodes, deterministic): higher score first, counting an
// unavailable node as -INFINITY; then the node with fewer resources assigned
// so far (spreads load); then the node the resource is active on; then the
// node whose name sorts first (byte-wise strcmp).
func (s *scheduler) sortedAllowedNodes(r *resource) []*node {
	var out []*node
	for _, n := range s.nodes {
		if r.allowed.has[n.idx] {
			out = append(out, n)
		}
	}
	preferred := currentNodeOf(r)
	score := func(n *node) int {
		if n.available() {
			return r.allowed.w[n.idx]
		}
		return -Infinity
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		sa, sb := score(a), score(b)
		if sa != sb {
			return sa > sb
		}
		if a.numResources != b.numResources {
			return a.numResources < b.numResources
		}
		if preferred != nil {
			if a == preferred {
				return b != preferred
			}
			if b == preferred {
				return false
			}
		}
		return a.name < b.name
	})
	return out
}

// assignBestNode is assign_best_node.
func (s *scheduler) assignBestNode(r *resource, prefer *node) bool {
	if !r.has(rscProvisional) {
		return r.allocatedTo != nil
	}
	nodes := s.sortedAllowedNodes(r)
	var best, chosen *node
	if len(nodes) > 0 {
		best = nodes[0]
	}
	if prefer != nil && len(nodes) > 0 && r.allowed.has[prefer.idx] {
		chosen = prefer
		switch {
		case r.allowed.w[prefer.idx] < r.allowed.w[best.idx]:
			chosen = nil
		case !r.allowed.usable(prefer):
			chosen = nil
		}
	}
	if chosen == nil && best != nil {
		chosen = best
		uniqueInstance := r.parent != nil && r.parent.isClone && r.parent.clone.unique
		if !uniqueInstance && r.allowed.w[chosen.idx] > 0 && chosen.available() {
			// Prefer the node the resource already runs on when it is
			// just as good as the best one (not for a unique clone's
			// instances, which spread out instead).
			running := currentNodeOf(r)
			if running != nil && running.available() && running.weight >= 0 {
				for _, n := range nodes[1:] {
					if r.allowed.w[n.idx] != r.allowed.w[chosen.idx] {
						break
					}
					if n == running {
						chosen = n
					}
				}
			}
		}
	}
	return s.finalizeAssignment(r, chosen, false)
}

// finalizeAssignment is pcmk__finalize_assignment.
func (s *scheduler) finalizeAssignment(r *resource, chosen *node, force bool) bool {
	if !force && chosen != nil {
		w, _ := r.allowed.get(chosen.idx)
		if w < 0 || !(chosen.available() && w >= 0) {
			r.setNextRole(RoleStopped, "node availability")
			chosen = nil
		}
	}
	s.unassign(r)
	r.clear(rscProvisional)
	if chosen == nil {
		r.setNextRole(RoleStopped, "unable to allocate")
		for _, a := range r.actions {
			switch a.task {
			case taskStop:
				a.clear(actOptional)
			case taskStart:
				a.clear(actRunnable)
			default:
				iv, ok := a.meta["interval"]
				if ok && iv != "0" && a.meta["op_target_rc"] != "7" {
					a.clear(actRunnable)
				}
			}
		}
		return false
	}
	r.allocatedTo = chosen
	r.allocatedScore, _ = r.allowed.get(chosen.idx)
	chosen.numResources++
	return true
}

func (s *scheduler) unassign(r *resource) {
	if r.allocatedTo == nil {
		return
	}
	r.set(rscProvisional)
	r.allocatedTo.numResources--
	r.allocatedTo = nil
}

// assign dispatches on variant.
func (s *scheduler) assign(r *resource, prefer *node) *node {
	if r.isGroup {
		return s.groupAssign(r, prefer)
	}
	if r.isClone {
		return s.cloneAssign(r, prefer)
	}
	return s.primitiveAssign(r, prefer)
}

// primitiveAssign is pcmk__primitive_assign.
func (s *scheduler) primitiveAssign(r *resource, prefer *node) *node {
	if r.parent != nil && !r.parent.has(rscAllocating) {
		s.assign(r.parent, prefer)
	}
	if !r.has(rscProvisional) {
		return r.allocatedTo
	}
	if r.has(rscAllocating) {
		return nil // assignment loop
	}
	r.set(rscAllocating)
	for _, c := range append([]*colocation(nil), r.thisWith...) {
		s.applyThisWith(r, c)
	}
	for _, c := range append([]*colocation(nil), r.withThis...) {
		s.applyWithThis(r, c)
	}
	if r.nextRole == RoleStopped {
		s.resourceLocation(r, nil, -Infinity, "target-role")
	} else if r.nextRole > r.role && !s.haveQuorum && s.noQuorum == noQuorumFreeze {
		r.setNextRole(r.role, "no-quorum-policy=freeze")
	}
	s.showScores("pcmk__primitive_assign", r)
	if s.stonithEnabled && !s.haveStonithResource {
		r.clear(rscManaged)
	}
	switch {
	case !r.has(rscManaged):
		r.setNextRole(r.role, "unmanaged")
		s.finalizeAssignment(r, currentNodeOf(r), true)
	case s.stopAll:
		s.finalizeAssignment(r, nil, true)
	case r.has(rscProvisional) && s.assignBestNode(r, prefer):
	}
	r.clear(rscAllocating)
	return r.allocatedTo
}

// groupAssign is pcmk__group_assign.
func (s *scheduler) groupAssign(g *resource, prefer *node) *node {
	if !g.has(rscProvisional) {
		return g.allocatedTo
	}
	if g.has(rscAllocating) {
		return nil
	}
	if len(g.children) == 0 {
		g.clear(rscProvisional)
		return nil
	}
	g.set(rscAllocating)
	first := g.children[0]
	g.role = first.role
	s.expandGroupColocations(g)
	s.showScores("pcmk__group_assign", g)
	var firstAssigned *node
	for _, m := range g.children {
		n := s.assign(m, prefer)
		if firstAssigned == nil {
			firstAssigned = n
		}
	}
	g.setNextRole(first.nextRole, "first group member")
	g.clear(rscAllocating | rscProvisional)
	if !g.groupColocated {
		return nil
	}
	return firstAssigned
}

// expandGroupColocations moves the group's colocations to its members:
// "group with X" becomes "first member with X" (the internal colocations
// chain the rest), and "X with group" becomes "X with last member". The
// members' lists stay sorted (priority, then id in byte order), which
// decides the order in which primaries are assigned first.
func (s *scheduler) expandGroupColocations(g *resource) {
	byPrimary := func(a, b *colocation) int { return cmpRscPriority(a.primary, b.primary) }
	byDependent := func(a, b *colocation) int { return cmpRscPriority(a.dependent, b.dependent) }
	first := g.children[0]
	for _, c := range g.thisWith {
		first.thisWith = insertSorted(first.thisWith, c, byPrimary)
	}
	anyUnmanaged := !first.has(rscManaged)
	for _, m := range g.children[1:] {
		if anyUnmanaged {
			for _, c := range g.thisWith {
				if c.score == Infinity {
					m.thisWith = insertSorted(m.thisWith, c, byPrimary)
				}
			}
		} else if !m.has(rscManaged) {
			anyUnmanaged = true
		}
	}
	g.thisWith = nil
	last := g.children[len(g.children)-1]
	for _, c := range g.withThis {
		last.withThis = insertSorted(last.withThis, c, byDependent)
	}
	g.withThis = nil
}

// applyThisWith applies a colocation where r is the dependent: the primary
// is assigned first, then r's scores are adjusted around its node.
func (s *scheduler) applyThisWith(r *resource, c *colocation) {
	var archive *scoreTable
	if c.dependentRole >= RolePromoted || (c.score < 0 && c.score > -Infinity) {
		archive = r.allowed.clone()
	}
	s.assign(c.primary, nil)
	s.applyColocScore(r, c.primary, c)
	if archive != nil && !s.anyAvailable(r.allowed) {
		r.allowed = archive
	}
}

// applyColocScore routes a colocation to the primary's variant (for a group
// primary: its last member for mandatory colocations, else its first).
func (s *scheduler) applyColocScore(dep, pri *resource, c *colocation) {
	if pri.isClone {
		s.cloneApplyColocScore(dep, pri, c)
		return
	}
	if pri.isGroup {
		if pri.has(rscProvisional) || len(pri.children) == 0 {
			return
		}
		if pri.groupColocated {
			m := pri.children[0]
			if c.score >= Infinity {
				m = pri.children[len(pri.children)-1]
			}
			s.applyColocScore(dep, m, c)
			return
		}
		if c.score >= Infinity {
			s.warnf("cannot perform mandatory colocation with non-colocated group %s", pri.id)
			return
		}
		for _, m := range pri.children {
			s.applyColocScore(dep, m, c)
		}
		return
	}
	if s.colocationAffects(dep, pri, c, false) {
		s.applyColocToWeights(dep, pri, c)
	}
}

// colocationAffects is pcmk__colocation_affects for location purposes.
func (s *scheduler) colocationAffects(dep, pri *resource, c *colocation, preview bool) bool {
	if !preview && pri.has(rscProvisional) {
		return false
	}
	if !preview && !dep.has(rscProvisional) {
		return false
	}
	if c.score > 0 && c.dependentRole != RoleUnknown && c.dependentRole != dep.nextRole {
		return false
	}
	if c.score > 0 && c.primaryRole != RoleUnknown && c.primaryRole != pri.nextRole {
		return false
	}
	if c.score < 0 && c.dependentRole != RoleUnknown && c.dependentRole == dep.nextRole {
		return false
	}
	if c.score < 0 && c.primaryRole != RoleUnknown && c.primaryRole == pri.nextRole {
		return false
	}
	return true
}

// applyColocToWeights is pcmk__apply_coloc_to_weights.
func (s *scheduler) applyColocToWeights(dep, pri *resource, c *colocation) {
	attr := "#id"
	if c.nodeAttribute != "" {
		attr = c.nodeAttribute
	}
	var value string
	if pri.allocatedTo != nil {
		value = pri.allocatedTo.attrs[attr]
	} else if c.score < 0 {
		return
	}
	work := dep.allowed.clone()
	for _, n := range s.nodes {
		i := n.idx
		if !work.has[i] {
			continue
		}
		switch {
		case pri.allocatedTo == nil:
			work.w[i] = AddScores(-c.score, work.w[i])
		case strings.EqualFold(n.attrs[attr], value):
			if c.score < Infinity {
				work.w[i] = AddScores(c.score, work.w[i])
			}
		case c.score >= Infinity:
			work.w[i] = -Infinity
		}
	}
	if c.score <= -Infinity || c.score >= Infinity || s.anyAvailable(work) {
		for _, n := range s.nodes {
			if work.has[n.idx] && work.w[n.idx] != dep.allowed.w[n.idx] {
				s.explainScore(dep, n, work.w[n.idx]-dep.allowed.w[n.idx], "colocation "+c.id+" with "+pri.id)
			}
		}
		dep.allowed = work
	}
}

// colocation merge flags.
const (
	mergeThisWith    = 1
	mergeNonnegative = 2
	mergeActive      = 4
)

// hasInfluence is pcmk__colocation_has_influence.
func hasInfluence(c *colocation, r *resource) bool {
	if r == nil {
		r = c.primary
	}
	return c.influence || len(r.runningOn) == 0
}

// applyWithThis applies a colocation where r is the primary: the
// dependent's preferences pull r's scores (attenuated by score/INFINITY).
func (s *scheduler) applyWithThis(r *resource, c *colocation) {
	if !hasInfluence(c, nil) {
		return
	}
	factor := float32(c.score) / float32(Infinity)
	before := r.allowed
	tbl := r.allowed
	s.mergeScores(c.dependent, r.id, &tbl, c.nodeAttribute, factor, mergeActive)
	r.allowed = tbl
	if tbl != before {
		for _, n := range s.nodes {
			if tbl.has[n.idx] && before.has[n.idx] && tbl.w[n.idx] != before.w[n.idx] {
				s.explainScore(r, n, tbl.w[n.idx]-before.w[n.idx], "colocation "+c.id+" ("+c.dependent.id+" with "+r.id+", attenuated)")
			}
		}
	}
}

// mergeScores is the add_colocated_node_scores method: fold rsc's scores
// (and, recursively, those of resources colocated with it) into nodes.
// When *nodes is nil it starts from rsc's own scores (used for sorting).
// If the result would leave no usable node, an optional merge is rolled
// back.
func (s *scheduler) mergeScores(r *resource, logID string, nodes **scoreTable, attr string, factor float32, flags int) {
	if r.isGroup {
		s.groupMergeScores(r, logID, nodes, attr, factor, flags)
		return
	}
	if r.has(rscMerging) {
		return
	}
	r.set(rscMerging)
	defer r.clear(rscMerging)
	var work *scoreTable
	if *nodes == nil {
		work = r.allowed.clone()
	} else {
		work = (*nodes).clone()
		s.addNodeScoresMatchingAttr(work, r, attr, factor, flags&mergeNonnegative != 0)
	}
	list := r.withThis
	if flags&mergeThisWith != 0 {
		list = r.thisWith
	}
	s.mergeColocated(list, logID, nodes, work, factor, flags)
}

// mergeColocated is the common end of mergeScores and groupMergeScores:
// unless work leaves no usable node, it folds in the resources of list
// (the colocations of the resource being merged, in the direction flags
// say), then fixes up the nonnegative marker and stores work in *nodes.
// An active merge that left no usable node is rolled back (*nodes is kept).
func (s *scheduler) mergeColocated(list []*colocation, logID string, nodes **scoreTable, work *scoreTable, factor float32, flags int) {
	if s.anyAvailable(work) {
		multiplier := float32(1)
		if factor < 0 {
			multiplier = -1
		}
		for _, c := range list {
			var other *resource
			if flags&mergeThisWith != 0 {
				other = c.primary
			} else if !hasInfluence(c, nil) {
				continue
			} else {
				other = c.dependent
			}
			f := multiplier * float32(c.score) / float32(Infinity)
			s.mergeScores(other, logID, &work, c.nodeAttribute, f, flags|mergeActive)
		}
	} else if flags&mergeActive != 0 {
		return
	}
	if flags&mergeNonnegative != 0 {
		for i := range work.w {
			if work.w[i] == infinityHack {
				work.w[i] = 1
			}
		}
	}
	*nodes = work
}

// groupMergeScores is the group variant of add_colocated_node_scores in
// Pacemaker 2.1.5: the group's scores are those of its first member (its
// last when starting from scratch), merged with everything colocated with
// that member; then, unless that left no usable node, the resources
// colocated with the group's last member are merged in as well. A member
// merge that is rolled back does not stop the second step.
func (s *scheduler) groupMergeScores(g *resource, logID string, nodes **scoreTable, attr string, factor float32, flags int) {
	if g.has(rscMerging) || len(g.children) == 0 {
		return
	}
	g.set(rscMerging)
	defer g.clear(rscMerging)
	var work *scoreTable
	member := g.children[0]
	if *nodes == nil {
		member = g.children[len(g.children)-1]
	} else {
		work = (*nodes).clone()
	}
	s.mergeScores(member, logID, &work, attr, factor, flags)
	if work == nil {
		return
	}
	list := g.children[len(g.children)-1].withThis
	if flags&mergeThisWith != 0 {
		list = g.thisWith
	}
	s.mergeColocated(list, logID, nodes, work, factor, flags)
}

// addNodeScoresMatchingAttr adds, for each node, factor times the best score
// rsc has on any available node with the same value of attr.
func (s *scheduler) addNodeScoresMatchingAttr(work *scoreTable, r *resource, attr string, factor float32, onlyPositive bool) {
	if attr == "" {
		attr = "#uname"
	}
	for _, n := range s.nodes {
		i := n.idx
		if !work.has[i] {
			continue
		}
		score := s.bestScoreMatchingAttr(r, attr, n.attrs[attr])
		if factor < 0 && score < 0 {
			continue
		}
		if work.w[i] == infinityHack {
			continue
		}
		wf := factor * float32(score)
		var weight int
		if wf < 0 {
			weight = int(wf - 0.5)
		} else {
			weight = int(wf + 0.5)
		}
		if math.IsNaN(float64(wf)) {
			weight = 0
		}
		if weight == 0 && score != 0 {
			if factor > 0 {
				weight = 1
			} else if factor < 0 {
				weight = -1
			}
		}
		newScore := AddScores(weight, work.w[i])
		if onlyPositive && newScore < 0 && work.w[i] > 0 {
			work.w[i] = infinityHack
			continue
		}
		if onlyPositive && newScore < 0 && work.w[i] == 0 {
			continue
		}
		work.w[i] = newScore
	}
}

func (s *scheduler) bestScoreMatchingAttr(r *resource, attr, value string) int {
	best := -Infinity
	for _, n := range s.nodes {
		if !r.allowed.has[n.idx] {
			continue
		}
		w := r.allowed.w[n.idx]
		if w > best && n.available() && strings.EqualFold(value, n.attrs[attr]) {
			best = w
		}
	}
	return best
}

func (s *scheduler) showScores(fn string, r *resource) {
	if !s.opts.ShowScores || r.has(rscOrphan) {
		return
	}
	for _, n := range s.nodes {
		if w, ok := r.allowed.get(n.idx); ok {
			s.scores = append(s.scores, ScoreLine{Func: fn, Resource: r.id, Node: n.name, Score: w})
		}
	}
	if r.isGroup {
		for _, c := range r.children {
			s.showScores(fn, c)
		}
	}
	if r.isClone {
		for _, c := range r.children {
			s.showScores(fn, c)
		}
	}
}
