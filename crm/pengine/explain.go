package pengine

import (
	"fmt"
	"sort"
	"strings"
)

// explainer records, for one resource, every score contribution with its
// cause, so `ringctl crm simulate --explain RSC` can say why it goes where
// it goes.
type explainer struct {
	rsc     string
	entries []string
}

func (s *scheduler) explainScore(r *resource, n *node, delta int, why string) {
	if s.explain == nil || r.id != s.explain.rsc || delta == 0 {
		return
	}
	s.explain.entries = append(s.explain.entries, fmt.Sprintf("%-12s %+9s  %s", n.name, signedScore(delta), why))
}

func signedScore(v int) string {
	switch {
	case v >= Infinity:
		return "+INFINITY"
	case v <= -Infinity:
		return "-INFINITY"
	case v > 0:
		return fmt.Sprintf("+%d", v)
	}
	return fmt.Sprintf("%d", v)
}

func (s *scheduler) explainReport() []string {
	r := s.byID[s.explain.rsc]
	var out []string
	out = append(out, fmt.Sprintf("Resource %s (role %s, next role %s)", r.id, r.role, r.nextRole))
	if cur := currentNodeOf(r); cur != nil {
		out = append(out, "  active on: "+cur.name)
	}
	out = append(out, "Score contributions (node, change, cause):")
	if len(s.explain.entries) == 0 {
		out = append(out, "  (none)")
	}
	for _, e := range s.explain.entries {
		out = append(out, "  "+e)
	}
	out = append(out, "Final scores:")
	var lines []string
	for _, n := range s.nodes {
		if w, ok := r.allowed.get(n.idx); ok {
			state := ""
			if !n.available() {
				state = " (node cannot run resources)"
			}
			lines = append(lines, fmt.Sprintf("  %-12s %s%s", n.name, FormatScore(w), state))
		}
	}
	out = append(out, lines...)
	switch {
	case r.collective():
		out = append(out, "Assigned: see members")
	case r.allocatedTo != nil:
		out = append(out, "Assigned to: "+r.allocatedTo.name)
	default:
		out = append(out, "Assigned to: nowhere (next role "+r.nextRole.String()+", because "+orDefault(r.nextRoleReason, "no node can run it")+")")
	}
	out = append(out, "Actions:")
	var acts []*action
	collect := func(x *resource) {
		acts = append(acts, x.actions...)
	}
	collect(r)
	for _, c := range r.children {
		collect(c)
	}
	sort.SliceStable(acts, func(i, j int) bool { return acts[i].id < acts[j].id })
	any := false
	for _, a := range acts {
		if !shouldAddToGraph(a) {
			continue
		}
		any = true
		where := ""
		if a.node != nil {
			where = " on " + a.node.name
		}
		why := a.reason
		if why == "" {
			why = s.actionWhy(a)
		}
		line := fmt.Sprintf("  %s%s: %s", a.uuid, where, why)
		// The orderings that hold it back, as in the graph.
		var waits []string
		for _, w := range dedupInputs(a.before) {
			if !shouldAddInput(a, w) {
				continue
			}
			in := w.action.uuid
			if w.action.node != nil && !w.action.has(actPseudo) {
				in += " on " + w.action.node.name
			}
			waits = append(waits, in)
		}
		if len(waits) > 0 {
			line += "; after " + strings.Join(waits, ", ")
		}
		out = append(out, line)
	}
	if !any {
		out = append(out, "  (none)")
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// actionWhy explains an action that carries no recorded reason.
func (s *scheduler) actionWhy(a *action) string {
	r := a.rsc
	switch {
	case a.has(actPseudo):
		return "pseudo action joining the orderings around it"
	case a.task == taskMonitor && a.intervalMS == 0:
		return "probe: the resource's state on this node is unknown"
	case a.task == taskMonitor:
		return "recurring monitor configured for the resource's role"
	case a.task == taskCancel:
		return "recurring " + a.cancelTask + " is no longer configured or the resource is in maintenance"
	case a.task == taskStop && r.has(rscFailed):
		return "the resource failed here and must be recovered"
	case a.task == taskStop && r.allocatedTo == nil:
		return "the resource cannot run anywhere"
	case a.task == taskStop && r.allocatedTo != nil && a.node != r.allocatedTo:
		return "the resource moves to " + r.allocatedTo.name
	case a.task == taskStop:
		return "required by a restart"
	case a.task == taskStart && len(r.runningOn) == 0:
		return "the resource is not running and was assigned here"
	case a.task == taskStart && !r.isRunningOn(a.node):
		return "the resource moves here"
	case a.task == taskStart:
		return "second half of a restart"
	case a.task == taskDelete:
		return "the resource's history here is obsolete"
	}
	return "scheduled"
}
