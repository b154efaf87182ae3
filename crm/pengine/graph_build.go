package pengine

import (
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
		ga.Resource = s.graphName(a.rsc)
		if isAnonInstance(a.rsc) {
			// crm_simulate records the result under the configured id.
			ga.HistoryID = cloneBaseID(a.rsc.id)
		}
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

func atoiOr(s string, def int) int {
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return def
	}
	return v
}
