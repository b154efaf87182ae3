package pengine

import (
	"fmt"
	"strings"

	"ringmaster/crm/cib"
)

// findConstraintResource resolves a resource id used in a constraint.
func (s *scheduler) findConstraintResource(id, constraint string) (*resource, error) {
	if r := s.byID[id]; r != nil {
		return r, nil
	}
	// The id of a cloned primitive names its clone.
	for _, r := range s.resources {
		if r.isClone && r.clone.template.ID == id {
			return r, nil
		}
	}
	for _, t := range s.cfg().Tags {
		if t == id {
			return nil, fmt.Errorf("%w: constraint %q refers to tag %q", cib.ErrUnsupported, constraint, id)
		}
	}
	s.warnf("ignoring constraint %q because resource %q does not exist", constraint, id)
	return nil, nil
}

// unpackConstraints creates location, colocation and ordering constraints
// in document order (pcmk__unpack_constraints).
func (s *scheduler) unpackConstraints() error {
	for _, c := range s.cfg().Constraints {
		var err error
		switch c := c.(type) {
		case *cib.Location:
			err = s.unpackLocation(c)
		case *cib.Colocation:
			err = s.unpackColocation(c)
		case *cib.Order:
			err = s.unpackOrder(c)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func discoverMode(v string) (int8, bool) {
	switch lower(v) {
	case "", "always":
		return discoverAlways, true
	case "never":
		return discoverNever, true
	case "exclusive":
		return discoverExclusive, true
	}
	return discoverAlways, false
}

func (s *scheduler) unpackLocation(l *cib.Location) error {
	r, err := s.findConstraintResource(l.Rsc, l.ID)
	if r == nil {
		return err
	}
	disc, ok := discoverMode(l.Discovery)
	if !ok {
		s.warnf("ignoring constraint %q: invalid resource-discovery %q", l.ID, l.Discovery)
		return nil
	}
	if l.Node != "" && l.Score != "" {
		n := s.nodeByName[lower(l.Node)]
		if n == nil {
			return nil
		}
		lc := &locationConstraint{id: l.ID, rsc: r, discover: disc, nodes: []nodeWeight{{n, ParseScore(l.Score)}}}
		lc.roleFilter = locationRole(l.Role)
		s.locations = append(s.locations, lc)
		return nil
	}
	for _, rule := range l.Rules {
		if lc := s.locationRule(r, rule, disc); lc != nil {
			if l.Role != "" && lc.roleFilter == RoleUnknown {
				lc.roleFilter = locationRole(l.Role)
			}
			lc.id = l.ID
			s.locations = append(s.locations, lc)
		}
	}
	return nil
}

func locationRole(v string) Role {
	role := parseRole(v)
	if role == RoleStarted || role == RoleUnpromoted {
		return RoleUnknown
	}
	return role
}

// locationRule is generate_location_rule. With boolean-op "and" every node
// starts at score 0 and nodes failing the rule are dropped; with "or" only
// passing nodes are listed, starting from their base weight (so an offline
// node stays at -INFINITY).
func (s *scheduler) locationRule(r *resource, rule *cib.Rule, disc int8) *locationConstraint {
	scoreSpec := rule.Score
	raw := true
	if scoreSpec == "" && rule.ScoreAttribute != "" {
		scoreSpec, raw = rule.ScoreAttribute, false
	}
	doAnd := !strings.EqualFold(rule.BooleanOp, "or")
	lc := &locationConstraint{id: rule.ID, rsc: r, discover: disc}
	if rule.Role != "" {
		role := parseRole(rule.Role)
		if role == RoleUnknown {
			s.warnf("bad role %q in rule %q", rule.Role, rule.ID)
			return nil
		}
		if role != RoleUnpromoted {
			lc.roleFilter = role
		}
		if role == RoleStarted {
			lc.roleFilter = RoleUnknown
		}
	}
	score := func(n *node) int {
		if scoreSpec == "" {
			return 0
		}
		if raw {
			return ParseScore(scoreSpec)
		}
		v, ok := n.attrs[scoreSpec]
		if !ok {
			return -Infinity
		}
		return ParseScore(v)
	}
	present := map[*node]int{}
	var order []*node
	if doAnd {
		for _, n := range s.nodes {
			present[n] = score(n)
			order = append(order, n)
		}
	}
	for _, n := range s.nodes {
		accept := evalRule(rule, n.attrs)
		if accept {
			if _, ok := present[n]; !ok {
				if doAnd {
					continue
				}
				present[n] = n.weight
				order = append(order, n)
			}
			if !doAnd {
				present[n] = AddScores(present[n], score(n))
			}
		} else if doAnd {
			delete(present, n)
		}
	}
	for _, n := range order {
		if w, ok := present[n]; ok {
			lc.nodes = append(lc.nodes, nodeWeight{n, w})
		}
	}
	if len(lc.nodes) == 0 {
		return nil
	}
	return lc
}

func (s *scheduler) unpackColocation(c *cib.Colocation) error {
	dep, err := s.findConstraintResource(c.Rsc, c.ID)
	if dep == nil {
		return err
	}
	pri, err := s.findConstraintResource(c.WithRsc, c.ID)
	if pri == nil {
		return err
	}
	influence := dep.has(rscCritical)
	if c.Influence != "" {
		if v, ok := cib.ParseBool(c.Influence); ok {
			influence = v
		}
	}
	s.newColocation(c.ID, c.NodeAttribute, ParseScore(c.Score), dep, pri, c.RscRole, c.WithRscRole, influence)
	return nil
}

func colocRole(v string) Role {
	if v == "" || strings.EqualFold(v, "started") {
		return RoleUnknown
	}
	return parseRole(v)
}

// newColocation is pcmk__new_colocation. The dependent's "this with" list
// is kept sorted by the primary's priority (then variant, then id); the
// primary's "with this" list by the dependent's, as Pacemaker's
// g_list_insert_sorted does (a new entry goes before equal ones).
func (s *scheduler) newColocation(id, attr string, score int, dep, pri *resource, depRole, priRole string, influence bool) {
	if score == 0 || dep == nil || pri == nil {
		return
	}
	c := &colocation{
		id: id, dependent: dep, primary: pri, score: score,
		dependentRole: colocRole(depRole), primaryRole: colocRole(priRole),
		nodeAttribute: attr, influence: influence,
	}
	dep.thisWith = insertSorted(dep.thisWith, c, func(a, b *colocation) int { return cmpRscPriority(a.primary, b.primary) })
	pri.withThis = insertSorted(pri.withThis, c, func(a, b *colocation) int { return cmpRscPriority(a.dependent, b.dependent) })
	s.colocations = append(s.colocations, c)
	if score <= -Infinity {
		s.antiColocationOrder(dep, c.dependentRole, pri, c.primaryRole)
		s.antiColocationOrder(pri, c.primaryRole, dep, c.dependentRole)
	}
}

func cmpRscPriority(a, b *resource) int {
	if a.priority != b.priority {
		if a.priority > b.priority {
			return -1
		}
		return 1
	}
	if a.isGroup != b.isGroup {
		if a.isGroup {
			return -1
		}
		return 1
	}
	return strings.Compare(a.id, b.id)
}

func insertSorted(list []*colocation, c *colocation, cmp func(a, b *colocation) int) []*colocation {
	i := 0
	for i < len(list) && cmp(c, list[i]) > 0 {
		i++
	}
	list = append(list, nil)
	copy(list[i+1:], list[i:])
	list[i] = c
	return list
}

func (s *scheduler) antiColocationOrder(first *resource, firstRole Role, then *resource, thenRole Role) {
	var firstTasks, thenTasks []string
	if firstRole == RolePromoted {
		firstTasks = []string{taskDemote}
	} else {
		firstTasks = []string{taskStop}
		if firstRole == RoleUnpromoted {
			firstTasks = append(firstTasks, taskPromote)
		}
	}
	if thenRole == RolePromoted {
		thenTasks = []string{taskPromote}
	} else {
		thenTasks = []string{taskStart}
		if thenRole == RoleUnpromoted {
			thenTasks = append(thenTasks, taskDemote)
		}
	}
	for _, ft := range firstTasks {
		for _, tt := range thenTasks {
			s.orderResourceActions(first, ft, then, tt, orderAntiColocation)
		}
	}
}

type orderKind int

const (
	kindOptional orderKind = iota
	kindMandatory
	kindSerialize
)

func (s *scheduler) unpackOrder(o *cib.Order) error {
	first, err := s.findConstraintResource(o.First, o.ID)
	if first == nil {
		return err
	}
	then, err := s.findConstraintResource(o.Then, o.ID)
	if then == nil {
		return err
	}
	firstAction := o.FirstAction
	if firstAction == "" {
		firstAction = taskStart
	}
	thenAction := o.ThenAction
	if thenAction == "" {
		thenAction = firstAction
	}
	kind := kindMandatory
	switch {
	case o.Kind == "" && o.Score != "":
		if ParseScore(o.Score) == 0 {
			kind = kindOptional
		}
	case strings.EqualFold(o.Kind, "optional"):
		kind = kindOptional
	case strings.EqualFold(o.Kind, "serialize"):
		kind = kindSerialize
	}
	symmetric := kind != kindSerialize
	if o.Symmetrical != "" {
		if v, ok := cib.ParseBool(o.Symmetrical); ok {
			symmetric = v && kind != kindSerialize
		}
	}
	flags := orderFlagsForKind(kind, firstAction, symmetric, false)
	if min := minimumFirstInstances(first, o); min > 0 {
		s.cloneMinOrdering(o.ID, first, firstAction, then, thenAction, flags, min)
	} else {
		s.orderResourceActions(first, firstAction, then, thenAction, flags)
	}
	if symmetric {
		ia, ib := invertAction(thenAction), invertAction(firstAction)
		if ia == "" || ib == "" {
			s.warnf("cannot invert constraint %q", o.ID)
			return nil
		}
		s.orderResourceActions(then, ia, first, ib, orderFlagsForKind(kind, ib, true, true))
	}
	return nil
}

func invertAction(a string) string {
	switch lower(a) {
	case taskStart:
		return taskStop
	case taskStop:
		return taskStart
	case taskPromote:
		return taskDemote
	case taskDemote:
		return taskPromote
	case taskPromoted:
		return taskDemoted
	case taskDemoted:
		return taskPromoted
	case taskStarted:
		return taskStopped
	case taskStopped:
		return taskStarted
	}
	return ""
}

// orderFlagsForKind is ordering_flags_for_kind.
func orderFlagsForKind(kind orderKind, first string, symmetric, inverse bool) orderFlags {
	flags := orderOptional
	switch kind {
	case kindSerialize:
		flags |= orderSerializeOnly
	case kindMandatory:
		switch {
		case inverse:
			flags |= orderImpliesFirst
		case !symmetric:
			flags |= orderAsymmetrical
		default:
			flags |= orderImpliesThen
			if lower(first) == taskStart || lower(first) == taskPromote {
				flags |= orderRunnableLeft
			}
		}
	}
	return flags
}

// newOrdering is pcmk__new_ordering.
func (s *scheduler) newOrdering(firstRsc *resource, firstTask string, firstAction *action, thenRsc *resource, thenTask string, thenAction *action, flags orderFlags) {
	if firstRsc == nil && firstAction != nil {
		firstRsc = firstAction.rsc
	}
	if thenRsc == nil && thenAction != nil {
		thenRsc = thenAction.rsc
	}
	o := &ordering{id: s.orderID, flags: flags, lhRsc: firstRsc, rhRsc: thenRsc, lhAction: firstAction, rhAction: thenAction, lhTask: firstTask, rhTask: thenTask}
	s.orderID++
	if o.lhTask == "" && firstAction != nil {
		o.lhTask = firstAction.uuid
	}
	if o.rhTask == "" && thenAction != nil {
		o.rhTask = thenAction.uuid
	}
	s.orderings = append(s.orderings, o)
}

func (s *scheduler) orderResourceActions(first *resource, firstTask string, then *resource, thenTask string, flags orderFlags) {
	s.newOrdering(first, opKey(first.id, firstTask, 0), nil, then, opKey(then.id, thenTask, 0), nil, flags)
}

// applyLocations is pcmk__apply_locations followed by stickiness.
func (s *scheduler) applyLocations() {
	for _, lc := range s.locations {
		s.applyLocationTo(lc.rsc, lc, false)
	}
}

// applyLocationTo applies a location constraint to a resource; for a
// colocated group, members after the first get the constraint's nodes with
// score 0 (so they are allowed there but only the first member carries
// the preference).
func (s *scheduler) applyLocationTo(r *resource, lc *locationConstraint, zero bool) {
	s.applyLocation(r, lc, zero)
	if r.isClone {
		for _, c := range r.children {
			s.applyLocationTo(c, lc, zero)
		}
	}
	if r.isGroup {
		reset := r.groupColocated
		z := zero
		for _, c := range r.children {
			s.applyLocationTo(c, lc, z)
			if reset {
				reset = false
				z = true
			}
		}
	}
}

func (s *scheduler) applyLocation(r *resource, lc *locationConstraint, zero bool) {
	if lc.roleFilter > RoleUnknown && lc.roleFilter != r.nextRole {
		return
	}
	for _, nw := range lc.nodes {
		w := nw.weight
		if zero {
			w = 0
		}
		i := nw.node.idx
		if !r.allowed.has[i] {
			r.allowed.has[i] = true
			r.allowed.w[i] = w
		} else {
			r.allowed.w[i] = AddScores(r.allowed.w[i], w)
		}
		s.explainScore(r, nw.node, w, "location constraint "+lc.id)
		if r.allowed.discover[i] < lc.discover {
			if lc.discover == discoverExclusive {
				r.set(rscExclusiveDiscover)
			}
			r.allowed.discover[i] = lc.discover
		}
	}
}

// applyStickiness adds a managed resource's stickiness to the single node
// it is active on.
func (s *scheduler) applyStickiness(r *resource) {
	if r.collective() {
		for _, c := range r.children {
			s.applyStickiness(c)
		}
		return
	}
	if !r.has(rscManaged) || r.stickiness < 1 || len(r.runningOn) != 1 {
		return
	}
	n := r.runningOn[0]
	if !s.symmetric && !r.allowed.has[n.idx] {
		return
	}
	s.resourceLocation(r, n, r.stickiness, "stickiness")
}

// checkFailureThreshold bans a resource from a node where its fail count
// reached migration-threshold, unless that count is about to be cleared.
func (s *scheduler) checkFailureThreshold(r *resource, n *node) {
	if r.collective() {
		for _, c := range r.children {
			s.checkFailureThreshold(c, n)
		}
		return
	}
	if len(resourceActionsExact(r, n, taskClearFailcount)) > 0 {
		return
	}
	if r.migrationThreshold == 0 || r.has(rscFailureIgnored) {
		return
	}
	count, _ := s.failcount(n, r, true, nil)
	if count <= 0 {
		return
	}
	if r.migrationThreshold-count <= 0 {
		// An anonymous clone's instances are interchangeable, so the
		// whole clone is forced away from the node.
		banned := r
		if isAnonInstance(r) {
			banned = r.top()
		}
		s.resourceLocation(banned, n, -Infinity, "__fail_limit__")
	}
}

func resourceActionsExact(r *resource, n *node, task string) []*action {
	return resourceActions(r, n, task, true)
}

func (s *scheduler) applyExclusiveDiscovery(r *resource, n *node) {
	if !r.has(rscExclusiveDiscover) && !r.top().has(rscExclusiveDiscover) {
		return
	}
	for _, c := range r.children {
		s.applyExclusiveDiscovery(c, n)
	}
	if r.allowed.has[n.idx] && r.allowed.discover[n.idx] != discoverExclusive {
		r.allowed.w[n.idx] = -Infinity
	}
}

// internalConstraints creates the implicit orderings and colocations of a
// resource (pcmk__primitive_internal_constraints / group).
func (s *scheduler) internalConstraints(r *resource) {
	if r.isGroup {
		s.groupInternalConstraints(r)
		return
	}
	if r.isClone {
		s.cloneInternalConstraints(r)
		return
	}
	if !r.has(rscManaged) {
		return
	}
	s.orderResourceActions(r, taskStop, r, taskStart, orderOptional|orderImpliesThen|orderRestart)
	if top := r.top(); r.role > RoleUnpromoted || top.isClone && top.clone.promotable {
		s.orderResourceActions(r, taskDemote, r, taskStop, orderPromotedImpliesFirst)
		s.orderResourceActions(r, taskStart, r, taskPromote, orderRunnableLeft)
	}
	s.orderResourceActions(r, taskDelete, r, taskMonitor, orderSameNode|orderThenCancelsFirst)
}

func (s *scheduler) groupInternalConstraints(g *resource) {
	ordered, colocated := g.groupOrdered, g.groupColocated
	s.orderResourceActions(g, taskStopped, g, taskStart, orderOptional)
	s.orderResourceActions(g, taskStart, g, taskStarted, orderRunnableLeft)
	s.orderResourceActions(g, taskStop, g, taskStopped, orderRunnableLeft)
	var last, lastActive *resource
	for _, child := range g.children {
		stop := orderNone
		stopped := orderImpliesThenPrinted
		start := orderImpliesThen | orderRunnableLeft
		started := orderRunnableLeft | orderImpliesThen | orderImpliesThenPrinted
		s.internalConstraints(child)
		if last == nil {
			if ordered {
				stop |= orderOptional
				stopped = orderImpliesThen
			}
		} else if colocated {
			s.newColocation("group:internal_colocation", "", Infinity, child, last, "", "", child.has(rscCritical))
		}
		s.orderResourceActions(g, taskStart, child, taskStart, orderImpliesFirstPrinted)
		s.orderResourceActions(g, taskStop, child, taskStop, stop|orderImpliesFirstPrinted)
		s.orderResourceActions(child, taskStop, g, taskStopped, stopped)
		s.orderResourceActions(child, taskStart, g, taskStarted, started)
		switch {
		case !ordered:
			s.orderResourceActions(g, taskStart, child, taskStart, start|orderImpliesFirstPrinted)
		case last != nil:
			s.orderResourceActions(last, taskStart, child, taskStart, start)
			s.orderResourceActions(child, taskStop, last, taskStop, orderOptional|orderRestart)
		default:
			s.orderResourceActions(g, taskStart, child, taskStart, orderNone)
		}
		if len(child.runningOn) > 0 {
			if ordered && last != nil && len(last.runningOn) == 0 && lastActive != nil && len(lastActive.runningOn) > 0 {
				s.orderResourceActions(child, taskStop, lastActive, taskStop, orderOptional)
			}
			lastActive = child
		}
		last = child
	}
}
