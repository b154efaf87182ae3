package pengine

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"ringmaster/crm/graph"
)

// shouldAddToGraph is should_add_action_to_graph: only runnable actions that
// are required (or must be shown), on a node that can run them.
func shouldAddToGraph(a *action) bool {
	if !a.has(actRunnable) {
		return false
	}
	if a.has(actOptional) && !a.has(actPrintAlways) {
		return false
	}
	if a.rsc != nil && !a.rsc.has(rscManaged) && a.task != taskMonitor {
		iv := a.meta["interval"]
		if iv == "" || iv == "0" {
			return false
		}
	}
	if a.has(actPseudo) || a.task == taskFence || a.task == taskShutdown {
		return true
	}
	if a.node == nil {
		return false
	}
	if a.has(actDC) {
		return true
	}
	if !a.node.online || a.node.unclean {
		return false
	}
	return true
}

func (s *scheduler) buildGraph() *graph.Graph {
	g := &graph.Graph{Attrs: s.graphAttrs()}
	in := map[*action]bool{}
	var order []*action
	add := func(a *action) {
		if in[a] || !shouldAddToGraph(a) {
			return
		}
		in[a] = true
		order = append(order, a)
	}
	var addRsc func(r *resource)
	addRsc = func(r *resource) {
		// Pacemaker keeps each resource's actions newest first.
		for i := len(r.actions) - 1; i >= 0; i-- {
			add(r.actions[i])
		}
		for _, c := range r.children {
			addRsc(c)
		}
	}
	for _, r := range s.resources {
		addRsc(r)
	}
	for i := len(s.actions) - 1; i >= 0; i-- {
		add(s.actions[i])
	}
	unlisted := map[int]bool{}
	for _, a := range order {
		ga := s.graphAction(a)
		for _, w := range dedupInputs(a.before) {
			if !shouldAddInput(a, w) {
				continue
			}
			w.dumped = true
			ga.Inputs = append(ga.Inputs, w.action.id)
			if !in[w.action] && !unlisted[w.action.id] {
				// Pacemaker keeps such an input even though the action
				// is not in the graph, so the transition cannot complete
				// (crm_simulate then reports an invalid transition).
				unlisted[w.action.id] = true
				g.Unlisted = append(g.Unlisted, s.graphAction(w.action))
			}
		}
		sort.Ints(ga.Inputs)
		g.Actions = append(g.Actions, ga)
	}
	return g
}

// dedupInputs is pcmk__deduplicate_action_inputs, without touching the
// action: inputs sorted by action id, duplicates merged by OR-ing their
// ordering flags (the merged flags then decide whether the input is kept).
func dedupInputs(before []*wrapper) []*wrapper {
	sorted := make([]*wrapper, len(before))
	copy(sorted, before)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].action.id < sorted[j].action.id })
	var out []*wrapper
	for _, w := range sorted {
		if n := len(out); n > 0 && out[n-1].action == w.action {
			out[n-1].typ |= w.typ
			continue
		}
		out = append(out, &wrapper{action: w.action, typ: w.typ})
	}
	return out
}

// graphAttrs are the transition-wide settings Pacemaker writes on the
// graph's root element.
func (s *scheduler) graphAttrs() [][2]string {
	opt := func(name, def string) string {
		if v, ok := s.config[name]; ok {
			return v
		}
		return def
	}
	startOffset := "1"
	if s.startFailureFatal {
		startOffset = "INFINITY"
	}
	attrs := [][2]string{
		{"cluster-delay", opt("cluster-delay", "60s")},
		{"stonith-timeout", opt("stonith-timeout", "60s")},
		{"failed-stop-offset", "INFINITY"},
		{"failed-start-offset", startOffset},
		{"batch-limit", opt("batch-limit", "0")},
	}
	if v := opt("migration-limit", "-1"); atoiOr(v, -1) > 0 {
		attrs = append(attrs, [2]string{"migration-limit", v})
	}
	return attrs
}

// shouldAddInput is should_add_input_to_graph: whether an ordering becomes
// an input of the action in the graph. It is not simply "the first action
// is in the graph": a runnable, required input that is not itself in the
// graph (an unmanaged resource's start, say) is kept, as Pacemaker does.
func shouldAddInput(a *action, w *wrapper) bool {
	in := w.action
	switch {
	case w.dumped:
		return true
	case w.typ == orderNone:
		return false
	case !in.has(actRunnable) && w.typ&^(orderImpliesFirstPrinted|orderImpliesThenPrinted|orderOptional) == 0:
		// An unrunnable input only matters when the ordering could have
		// changed the action.
		return false
	case !in.has(actRunnable) && w.typ&orderOneOrMore != 0:
		return false
	case w.typ&orderImpliesFirstMig != 0 && !in.has(actRunnable):
		return false
	case w.typ == orderOptional && in.has(actMigrateRunnable) && strings.HasSuffix(in.uuid, "_stop_0"):
		return false
	case w.typ == orderLoad:
		if in.node == nil || a.node == nil || in.node != a.node || in.has(actOptional) {
			w.typ = orderNone
			return false
		}
	case w.typ == orderAntiColocation:
		if (in.node != nil && a.node != nil && in.node != a.node) || in.has(actOptional) {
			w.typ = orderNone
			return false
		}
	case in.has(actOptional) && !in.has(actPrintAlways) && !in.has(actDumped) && !shouldAddToGraph(in):
		return false
	}
	return true
}

func (s *scheduler) graphAction(a *action) *graph.Action {
	ga := &graph.Action{ID: a.id, Task: a.task, Key: a.uuid, Meta: map[string]string{}}
	switch {
	case a.task == taskFence:
		ga.Kind = graph.KindFence
	case a.has(actPseudo):
		ga.Kind = graph.KindPseudo
	case a.task == taskShutdown || a.task == taskClearFailcount || a.task == taskLrmDelete || a.task == "probe_nodes":
		ga.Kind = graph.KindCluster
	default:
		ga.Kind = graph.KindResource
	}
	if a.node != nil && ga.Kind != graph.KindPseudo {
		ga.Node, ga.NodeID = a.node.name, a.node.id
	}
	for _, k := range []string{"timeout", "op_target_rc", "stonith_action", "call-id", "op_no_wait", "start-delay"} {
		if v, ok := a.meta[k]; ok {
			ga.Meta[k] = v
		}
	}
	if a.rsc != nil {
		ga.Priority = a.rsc.priority
	}
	if a.rsc != nil && ga.Kind != graph.KindPseudo {
		ga.Resource = a.rsc.id
		ga.Class, ga.Provider, ga.Type = a.rsc.cfg.Class, a.rsc.cfg.Provider, a.rsc.cfg.Type
	}
	if ga.Kind == graph.KindResource {
		ga.IntervalMS = a.intervalMS
		ga.Params = s.rscParams(a.rsc, a.node)
		if d := s.actionDigest(a); d != "" {
			ga.Meta["op-digest"] = d
		}
	}
	return ga
}

// --- transition summary (LogActions) ---------------------------------------

type summaryWriter struct {
	out []Change
}

func (s *scheduler) summary() []Change {
	w := &summaryWriter{}
	for i := len(s.actions) - 1; i >= 0; i-- {
		a := s.actions[i]
		if a.rsc != nil || a.has(actOptional) {
			continue
		}
		if a.task == taskFence && a.reason != "" {
			op := a.meta["stonith_action"]
			w.out = append(w.out, Change{
				Verb: "Fence", Node: a.node.name, Action: op, Reason: a.reason,
				Text: fmt.Sprintf("Fence (%s) %s '%s'", op, a.node.name, a.reason),
			})
		}
	}
	for _, r := range s.resources {
		s.outputResourceActions(w, r)
	}
	w.format()
	return w.out
}

func (s *scheduler) outputResourceActions(w *summaryWriter, r *resource) {
	if r.isGroup {
		for _, c := range r.children {
			s.outputResourceActions(w, c)
		}
		return
	}
	next := r.allocatedTo
	var current *node
	if len(r.runningOn) > 0 {
		current = currentNodeOf(r)
		if r.role == RoleStopped {
			r.role = RoleStarted
		}
	}
	if current == nil && r.has(rscOrphan) {
		return
	}
	s.rscActionDefault(w, r, current, next)
}

func first(list []*action) *action {
	if len(list) == 0 {
		return nil
	}
	return list[0]
}

// rscActionDefault is the "rsc-action" message: classify what happens to a
// resource as Start/Stop/Move/Recover/Restart/... for the summary.
func (s *scheduler) rscActionDefault(w *summaryWriter, r *resource, current, next *node) {
	if !r.has(rscManaged) || (current == nil && next == nil) {
		return
	}
	moving := current != nil && next != nil && current != next
	start := first(resourceActions(r, next, taskStart, false))
	var startNode *node
	if start != nil && start.has(actRunnable) {
		startNode = current
	}
	stop := first(resourceActions(r, startNode, taskStop, false))
	if stop == nil && r.has(rscStopUnexpected) {
		stop = first(resourceActions(r, nil, taskStop, false))
	}
	promote := first(resourceActions(r, next, taskPromote, false))
	demote := first(resourceActions(r, next, taskDemote, false))

	if r.role == r.nextRole {
		if next == nil {
			return
		}
		switch {
		case r.has(rscReload):
			w.item("Reload", r, current, next, start, nil)
		case start == nil || start.has(actOptional):
			if demote != nil && promote != nil && !demote.has(actOptional) && !promote.has(actOptional) {
				w.item("Re-promote", r, current, next, promote, demote)
			}
		case !start.has(actRunnable):
			src := start
			if stop != nil && stop.reason != "" {
				src = stop
			}
			w.item("Stop", r, current, nil, stop, src)
		case moving && current != nil:
			verb := "Move"
			if r.has(rscFailed) {
				verb = "Recover"
			}
			w.item(verb, r, current, next, stop, nil)
		case r.has(rscFailed):
			w.item("Recover", r, current, nil, stop, nil)
		default:
			w.item("Restart", r, current, next, start, nil)
		}
		return
	}
	switch {
	case stop != nil && (r.nextRole == RoleStopped || (start != nil && !start.has(actRunnable))):
		key := opKey(r.id, taskStop, 0)
		for _, n := range r.runningOn {
			stopOp := first(findActions(r.actions, key, n))
			src := start
			if stopOp != nil && stopOp.reason != "" {
				src = stopOp
			}
			w.item("Stop", r, n, nil, stopOp, src)
		}
	case stop != nil && r.has(rscFailed) && r.has(rscStop):
		w.item("Recover", r, current, next, stop, start)
	case moving:
		w.item("Move", r, current, next, stop, nil)
	case r.has(rscReload):
		w.item("Reload", r, current, next, start, nil)
	case stop != nil && !stop.has(actOptional):
		w.item("Restart", r, current, next, start, nil)
	case r.role == RolePromoted:
		w.item("Demote", r, current, next, demote, nil)
	case r.nextRole == RolePromoted:
		w.item("Promote", r, current, next, promote, nil)
	case r.role == RoleStopped && r.nextRole > RoleStopped:
		w.item("Start", r, current, next, start, nil)
	}
}

// item is the "rsc-action-item" message. The text is formatted later (see
// format), once every item's width is known.
func (w *summaryWriter) item(change string, r *resource, origin, dest *node, a, source *action) {
	if source == nil {
		source = a
	}
	needRole := r.role > RoleStarted || r.nextRole > RoleUnpromoted
	sameHost := origin != nil && dest != nil && origin == dest
	sameRole := r.role == r.nextRole
	name := func(n *node) string {
		if n == nil {
			return "<none>"
		}
		return n.name
	}
	var details string
	switch {
	case needRole && origin == nil:
		details = fmt.Sprintf("%s -> %s %s", r.role, r.nextRole, name(dest))
	case origin == nil:
		details = name(dest)
	case needRole && dest == nil:
		details = fmt.Sprintf("%s %s", r.role, name(origin))
	case dest == nil:
		details = name(origin)
	case needRole && sameRole && sameHost:
		details = fmt.Sprintf("%s %s", r.role, name(origin))
	case sameRole && sameHost:
		details = name(origin)
	case needRole && sameRole:
		details = fmt.Sprintf("%s -> %s %s", name(origin), name(dest), r.role)
	case sameRole:
		details = fmt.Sprintf("%s -> %s", name(origin), name(dest))
	case sameHost:
		details = fmt.Sprintf("%s -> %s %s", r.role, r.nextRole, name(origin))
	default:
		details = fmt.Sprintf("%s %s -> %s %s", r.role, name(origin), r.nextRole, name(dest))
	}
	runnable := a == nil || a.has(actRunnable)
	reason := ""
	blocked := false
	switch {
	case source != nil && source.reason != "" && !runnable:
		reason = "due to " + source.reason + " (blocked)"
		blocked = true
	case source != nil && source.reason != "":
		reason = "due to " + source.reason
	case !runnable:
		reason = "blocked"
		blocked = true
	}
	c := Change{Verb: change, Resource: r.id, Reason: reason, Blocked: blocked, details: details}
	if origin != nil {
		c.From = origin.name
	}
	if dest != nil {
		c.To = dest.name
	}
	w.out = append(w.out, c)
}

// format renders the resource lines. crm_simulate computes the summary
// twice (once for the log), and its column widths are static, so the
// printed lines use the widths reached after a full pass: the resource
// column grows to len+2 whenever an id is longer than it, the detail
// column to the longest detail.
func (w *summaryWriter) format() {
	rw, dw := 5, 5
	for _, c := range w.out {
		if c.Verb == "Fence" {
			continue
		}
		if len(c.Resource) > rw {
			rw = len(c.Resource) + 2
		}
		if len(c.details) > dw {
			dw = len(c.details)
		}
	}
	for i := range w.out {
		c := &w.out[i]
		if c.Verb == "Fence" {
			continue
		}
		c.Text = fmt.Sprintf("%-8s   %-*s   ( %*s )", c.Verb, rw, c.Resource, dw, c.details)
		if c.Reason != "" {
			c.Text += "  " + c.Reason
		}
	}
}

// ScoresSorted returns score lines in the order crm_simulate -s | sort
// would list them.
func ScoresSorted(lines []ScoreLine) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		out = append(out, l.String())
	}
	sort.Strings(out)
	return out
}

func atoiOr(s string, def int) int {
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return def
	}
	return v
}
