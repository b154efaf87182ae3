package pengine

import (
	"sort"
	"strconv"
	"strings"
)

// Promotable clones: after the instances are placed, each placed instance
// gets a promotion priority (its promotion score from the master-RSC node
// attribute, role-specific location constraints, colocations with roles),
// the clone's node scores for that priority are merged with the
// colocations that involve the promoted role, and the best promoted-max
// instances (at most promoted-node-max per node) are promoted; the others
// run unpromoted (pcmk__set_instance_roles).

// unpackPromotable reads promoted-max and promoted-node-max (or their
// older master-* names).
func (s *scheduler) unpackPromotable(r *resource) {
	ci := r.clone
	ci.promotedMax, ci.promotedNodeMax = 1, 1
	for _, k := range []string{"promoted-max", "master-max"} {
		if v, ok := r.meta[k]; ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				ci.promotedMax = n
			}
			break
		}
	}
	for _, k := range []string{"promoted-node-max", "master-node-max"} {
		if v, ok := r.meta[k]; ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				ci.promotedNodeMax = n
			}
			break
		}
	}
}

// addPromotionScores is pcmk__add_promotion_scores, run before a
// promotable clone's instances are placed: each instance's positive
// promotion score on a node that can run resources is added to its score
// there, so instances go where they can be promoted, and its best score
// becomes its priority, which orders the instances' assignment
// (cmpInstance). createPromotableActions restores the priorities.
func (s *scheduler) addPromotionScores(r *resource) {
	for _, c := range r.children {
		for _, n := range s.nodes {
			if !c.allowed.has[n.idx] || !n.available() {
				// A node that cannot promote gets no promotion score,
				// which would only shuffle instances.
				continue
			}
			score := s.promotionScore(c, n, 0)
			if score > 0 {
				c.allowed.w[n.idx] = AddScores(c.allowed.w[n.idx], score)
			}
			if score > c.priority {
				c.priority = score
			}
		}
	}
}

// setRoleUnpromoted is set_role_unpromoted.
func setRoleUnpromoted(r *resource, current bool) {
	if current {
		if r.role == RoleStarted {
			r.role = RoleUnpromoted
		}
	} else if instLocation(r) != nil {
		r.setNextRole(RoleUnpromoted, "unpromoted instance")
	} else {
		r.setNextRole(RoleStopped, "stopped instance")
	}
	for _, c := range r.children {
		setRoleUnpromoted(c, current)
	}
}

// setInstanceRoles is pcmk__set_instance_roles.
func (s *scheduler) setInstanceRoles(r *resource) {
	ci := r.clone
	promotedCount := make([]int, len(s.nodes))
	sortIndex := map[*resource]int{}
	for _, c := range r.children {
		if c.role == RoleStarted {
			setRoleUnpromoted(c, true)
		}
		chosen := instLocation(c)
		if chosen == nil {
			continue
		}
		switch c.nextRole {
		case RoleStarted, RoleUnknown:
			c.priority = s.promotionScore(c, chosen, -1)
		case RoleUnpromoted, RoleStopped:
			c.priority = -Infinity
		case RolePromoted:
			c.priority = Infinity
		}
		for _, lc := range s.locations {
			if (lc.rsc == c || lc.rsc == r) && lc.roleFilter == RolePromoted {
				for _, nw := range lc.nodes {
					if nw.node == chosen {
						c.priority = AddScores(c.priority, nw.weight)
					}
				}
			}
		}
		for _, col := range c.thisWith {
			s.colocPriority(c, col.primary, col)
		}
		sortIndex[c] = c.priority
		if c.nextRole == RolePromoted {
			sortIndex[c] = Infinity
		}
	}
	s.promotionOrder(r, sortIndex)
	promoted := 0
	for _, c := range r.children {
		if instLocation(c) == nil {
			continue
		}
		var chosen *node
		// A negative sort index (promotion score merged with the
		// colocations of the promoted role) rules promotion out, whatever
		// the instance's own priority.
		if sortIndex[c] >= 0 && (promoted < ci.promotedMax || !r.has(rscManaged)) {
			chosen = s.canBePromoted(r, c, promotedCount)
		}
		if chosen == nil {
			setRoleUnpromoted(c, false)
			continue
		}
		if c.role < RolePromoted && !s.haveQuorum && s.noQuorum == noQuorumFreeze {
			setRoleUnpromoted(c, false)
			continue
		}
		promotedCount[chosen.idx]++
		setRolePromoted(c)
		promoted++
	}
}

// canBePromoted is can_be_promoted: the node a placed instance could be
// promoted on, if its priority allows and the node has room.
func (s *scheduler) canBePromoted(r, c *resource, promotedCount []int) *node {
	for _, m := range c.children {
		if s.canBePromoted(r, m, promotedCount) == nil {
			return nil
		}
	}
	n := instLocation(c)
	switch {
	case n == nil:
		return nil
	case !c.has(rscManaged):
		// An unmanaged instance stays promoted if it is.
		if s.rscState(c) != RolePromoted {
			return nil
		}
	case c.priority < 0:
		return nil
	case !n.available():
		return nil
	}
	if !r.allowed.has[n.idx] {
		return nil
	}
	if promotedCount[n.idx] < r.clone.promotedNodeMax || !c.has(rscManaged) {
		return n
	}
	return nil
}

// promotionOrder is promotion_order: the instances' priorities are added
// to the clone's scores of their nodes, colocations with the promoted role
// merged in, and the instances sorted by the resulting node scores.
func (s *scheduler) promotionOrder(r *resource, sortIndex map[*resource]int) {
	work := r.allowed.clone()
	for _, c := range r.children {
		if instLocation(c) == nil || sortIndex[c] < 0 {
			continue
		}
		i := instLocation(c).idx
		work.w[i] = AddScores(sortIndex[c], work.w[i])
	}
	r.set(rscMerging)
	for _, col := range r.thisWith {
		if col.dependentRole == RolePromoted {
			flags := mergeActive
			if col.score == Infinity {
				flags = 0
			}
			tbl := work
			s.mergeScores(col.primary, r.id, &tbl, col.nodeAttribute, float32(col.score)/float32(Infinity), flags)
			work = tbl
		}
	}
	for _, col := range r.withThis {
		if !hasInfluence(col, nil) || col.primaryRole != RolePromoted {
			continue
		}
		tbl := work
		s.mergeScores(col.dependent, r.id, &tbl, col.nodeAttribute, float32(col.score)/float32(Infinity), mergeActive|mergeNonnegative)
		work = tbl
	}
	r.clear(rscMerging)
	for _, c := range r.children {
		switch {
		case !c.has(rscManaged) && c.nextRole == RolePromoted:
			sortIndex[c] = Infinity
		case instLocation(c) == nil || sortIndex[c] < 0:
		default:
			sortIndex[c] = work.w[instLocation(c).idx]
		}
	}
	sort.SliceStable(r.children, func(i, j int) bool {
		a, b := r.children[i], r.children[j]
		if sortIndex[a] != sortIndex[b] {
			return sortIndex[a] > sortIndex[b]
		}
		if a.role != b.role {
			return a.role > b.role
		}
		return s.cmpInstance(a, b) < 0
	})
}

// promotionScore is promotion_score for a primitive instance: the
// master-NAME node attribute (NAME being the id the history uses, else the
// id without instance number), where the instance may run and its status
// there is known (an anonymous clone counts only one instance per node).
func (s *scheduler) promotionScore(c *resource, n *node, notSet int) int {
	if len(c.children) > 0 {
		score := notSet
		for _, x := range c.children {
			cs := s.promotionScore(x, n, notSet)
			if score == notSet {
				score = cs
			} else {
				score += cs
			}
		}
		return score
	}
	if !c.top().clone.unique && s.filterAnonymousInstance(c, n) {
		// this instance carries the node's score
	} else if len(c.runningOn) > 0 || anyKnown(c) {
		if !c.isRunningOn(n) && !c.knownOn[n.idx] {
			return notSet
		}
	}
	if !c.allowed.has[n.idx] || c.allowed.w[n.idx] < 0 {
		return notSet
	}
	name := c.id
	if c.cloneName != "" {
		name = c.cloneName
	}
	v, ok := n.attrs["master-"+name]
	if !ok && !c.top().clone.unique {
		if base := cloneBaseID(c.id); base != c.id {
			v, ok = n.attrs["master-"+base]
		}
	}
	if ok {
		return ParseScore(v)
	}
	return notSet
}

func anyKnown(c *resource) bool {
	for _, k := range c.knownOn {
		if k {
			return true
		}
	}
	return false
}

// filterAnonymousInstance is filter_anonymous_instance: the instance
// active on the node takes its score; with none active, any instance known
// there may.
func (s *scheduler) filterAnonymousInstance(c *resource, n *node) bool {
	base := cloneBaseID(c.id)
	for _, inst := range c.top().children {
		if m := memberNamed(inst, base); m != nil && m.isRunningOn(n) {
			return m == c
		}
	}
	for _, inst := range c.top().children {
		if m := memberNamed(inst, base); m != nil && m.knownOn[n.idx] {
			return true
		}
	}
	return false
}

// colocPriority is the promotion-priority effect of a colocation whose
// dependent is an instance already placed (influence_priority, and
// promotable_colocation_rh when the primary is a promotable clone).
func (s *scheduler) colocPriority(dep, pri *resource, c *colocation) {
	if pri.has(rscProvisional) {
		return
	}
	if c.dependentRole < RoleUnpromoted {
		return
	}
	if pri.isClone && pri.clone.promotable && c.primaryRole != RoleUnknown {
		if c.dependentRole != RolePromoted {
			return
		}
		var match *resource
		for _, x := range pri.children {
			if instLocation(x) != nil && instLocation(x) == instLocation(dep) && x.nextRole == c.primaryRole {
				match = x
				break
			}
		}
		if match == nil && c.score >= Infinity {
			dep.priority = -Infinity
		} else if match != nil {
			dep.priority = AddScores(dep.priority, c.score)
		}
		return
	}
	if pri.isClone {
		for _, x := range pri.children {
			s.colocPriority(dep, x, c)
		}
		return
	}
	if instLocation(pri) == nil || instLocation(dep) == nil {
		return
	}
	attr := "#id"
	if c.nodeAttribute != "" {
		attr = c.nodeAttribute
	}
	if !strings.EqualFold(instLocation(dep).attrs[attr], instLocation(pri).attrs[attr]) {
		if c.score == Infinity && c.dependentRole == RolePromoted {
			dep.priority = -Infinity
		}
		return
	}
	if c.primaryRole != RoleUnknown && c.primaryRole != pri.nextRole {
		return
	}
	mult := 1
	if c.dependentRole == RoleUnpromoted {
		mult = -1
	}
	dep.priority = AddScores(mult*c.score, dep.priority)
}

// promotableColocation is promotable_colocation_rh for a dependent still
// being placed: the nodes of primary instances in the colocation's role
// (and nodes sharing their colocation node attribute) get an optional
// colocation's score; a mandatory one (unless promoted with promoted)
// allows only those nodes and adds to each the score the primary instance
// was assigned there with (node_list_exclude with merged scores; with two
// instances on one node, the one placed last counts).
func (s *scheduler) promotableColocation(dep, pri *resource, c *colocation) {
	if !dep.has(rscProvisional) {
		return
	}
	attr := c.nodeAttribute
	if attr == "" {
		attr = "#uname"
	}
	on := make([]bool, len(s.nodes))
	score := make([]int, len(s.nodes))
	for _, x := range pri.children {
		n := instLocation(x)
		if n == nil || x.nextRole != c.primaryRole {
			continue
		}
		if c.score < Infinity {
			v, ok := n.attrs[attr]
			for _, m := range s.nodes {
				if w, ok2 := m.attrs[attr]; dep.allowed.has[m.idx] && ok && ok2 && strings.EqualFold(w, v) {
					dep.allowed.w[m.idx] = AddScores(dep.allowed.w[m.idx], c.score)
				}
			}
		}
		on[n.idx] = true
		score[n.idx] = instScore(x)
	}
	if (c.dependentRole != RolePromoted || c.primaryRole != RolePromoted) && c.score >= Infinity {
		for _, n := range s.nodes {
			if !dep.allowed.has[n.idx] {
				continue
			}
			if on[n.idx] {
				dep.allowed.w[n.idx] = AddScores(dep.allowed.w[n.idx], score[n.idx])
			} else {
				dep.allowed.w[n.idx] = -Infinity
			}
		}
	}
}

// instScore is the score an instance was assigned to its node with (a
// cloned group's: its first member's).
func instScore(x *resource) int {
	for x.isGroup && len(x.children) > 0 {
		x = x.children[0]
	}
	return x.allocatedScore
}

// createPromotableActions is create_promotable_actions: the clone's
// promote/promoted/demote/demoted pseudo actions; the instances get back
// the clone's priority, which their promotion priority had replaced.
func (s *scheduler) createPromotableActions(r *resource, startN, stopN *notifyData) {
	promoting, demoting := false, false
	for _, c := range r.children {
		for _, a := range leafActions(c) {
			if a.has(actOptional) {
				continue
			}
			switch a.task {
			case taskDemote:
				demoting = true
			case taskPromote:
				promoting = true
			}
		}
	}
	pseudo := func(task string, optional bool) *action {
		a := s.customAction(r, opKey(r.id, task, 0), task, nil, optional, true)
		a.set(actPseudo | actRunnable)
		return a
	}
	promote := pseudo(taskPromote, !promoting)
	promoted := pseudo(taskPromoted, !promoting)
	promoteN := s.cloneNotifPseudoOps(r, taskPromote, promote, promoted)
	demote := pseudo(taskDemote, !demoting)
	demoted := pseudo(taskDemoted, !demoting)
	demoteN := s.cloneNotifPseudoOps(r, taskDemote, demote, demoted)
	if promoteN != nil && demoteN != nil {
		// Notifications go in the order of the actions: demote, then
		// stop and start, then promote.
		s.orderActions(stopN.postDone, promoteN.pre, orderOptional)
		s.orderActions(startN.postDone, promoteN.pre, orderOptional)
		s.orderActions(demoteN.postDone, promoteN.pre, orderOptional)
		s.orderActions(demoteN.postDone, startN.pre, orderOptional)
		s.orderActions(demoteN.postDone, stopN.pre, orderOptional)
	}
	for _, c := range r.children {
		c.priority = r.priority
	}
}

// promotableConstraints is the promotable part of
// clone_internal_constraints (promotable_constraints).
func (s *scheduler) promotableConstraints(r *resource) {
	s.orderResourceActions(r, taskStopped, r, taskPromote, orderOptional)
	s.orderResourceActions(r, taskDemoted, r, taskStart, orderOptional)
	s.orderResourceActions(r, taskStarted, r, taskPromote, orderOptional)
	s.orderResourceActions(r, taskDemoted, r, taskStop, orderOptional)
	s.orderResourceActions(r, taskDemote, r, taskDemoted, orderOptional)
	s.orderResourceActions(r, taskDemoted, r, taskPromote, orderOptional)
	s.orderResourceActions(r, taskPromote, r, taskPromoted, orderOptional)
	var last *resource
	for _, c := range r.children {
		s.orderResourceActions(c, taskDemote, c, taskPromote, orderOptional)
		s.orderResourceActions(r, taskPromote, c, taskPromote, orderOptional)
		s.orderResourceActions(c, taskPromote, r, taskPromoted, orderOptional)
		if last != nil && r.clone.ordered {
			s.orderResourceActions(last, taskPromote, c, taskPromote, orderOptional)
		}
		s.orderResourceActions(r, taskDemote, c, taskDemote, orderImpliesFirstPrinted)
		s.orderResourceActions(c, taskDemote, r, taskDemoted, orderImpliesThenPrinted)
		if last != nil && r.clone.ordered {
			s.orderResourceActions(c, taskDemote, last, taskDemote, orderOptional)
		}
		last = c
	}
}

// setRolePromoted is set_role_promoted.
func setRolePromoted(r *resource) {
	if r.nextRole == RoleUnknown {
		r.setNextRole(RolePromoted, "promoted instance")
	}
	for _, c := range r.children {
		setRolePromoted(c)
	}
}

// instLocation is the node an instance is assigned to (fns->location
// with current=FALSE): for a cloned group's instance, where its members
// go, if they agree.
func instLocation(r *resource) *node {
	if r.isGroup {
		return groupLocation(r)
	}
	return r.allocatedTo
}
