package pengine

import (
	"fmt"
	"sort"
)

// The transition summary: the "Transition Summary" lines crm_simulate prints
// (Pacemaker's LogActions), derived from the actions the graph holds.

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
	if r.collective() {
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
