package pengine

import (
	"sort"
	"strings"
)

// Clone notifications (notify=true): each clone action (start, stop,
// promote, demote) gets "pre" and "post" notification pseudo actions and
// their confirmations, created with the clone's actions and ordered around
// them; once the transition's flags are settled, every instance that is
// active (for stop/demote) or will be (for start/promote) gets a "notify"
// action on its node between the pseudo action and its confirmation,
// carrying the CRM_meta_notify_* lists of what happens to which instance
// (pe_notif.c).

// notifyData is notify_data_t: one clone action's notification actions.
type notifyData struct {
	task             string // start, stop, promote, demote
	action, complete *action
	pre, preDone     *action
	post, postDone   *action
	active, inactive []notifyEntry
	start, stop      []notifyEntry
	promote, demote  []notifyEntry
	promoted, unprom []notifyEntry
}

type notifyEntry struct {
	rsc  *resource
	node *node
}

// cloneNotifPseudoOps is pcmk__clone_notif_pseudo_ops.
func (s *scheduler) cloneNotifPseudoOps(r *resource, task string, act, complete *action) *notifyData {
	if !r.clone.notify {
		return nil
	}
	nd := &notifyData{task: task, action: act, complete: complete}
	pseudo := func(of *action, typ string) *action {
		key := r.id + "_" + typ + "_notify_" + of.task + "_0"
		t := taskNotify
		if strings.HasPrefix(typ, "confirmed") {
			t = "notified"
		}
		a := s.customAction(r, key, t, nil, of.has(actOptional), true)
		a.set(actPseudo)
		a.meta["notify_key_type"] = typ
		a.meta["notify_key_operation"] = of.task
		return a
	}
	if act != nil {
		nd.pre = pseudo(act, "pre")
		nd.pre.set(actRunnable)
		nd.preDone = pseudo(act, "confirmed-pre")
		nd.preDone.set(actRunnable)
		for _, a := range []*action{nd.pre, nd.preDone} {
			a.meta["notify_type"] = "pre"
			a.meta["notify_operation"] = task
		}
		s.orderActions(nd.pre, nd.preDone, orderOptional)
		s.orderActions(nd.preDone, act, orderOptional)
	}
	if complete != nil {
		nd.post = pseudo(complete, "post")
		nd.postDone = pseudo(complete, "confirmed-post")
		for _, a := range []*action{nd.post, nd.postDone} {
			if complete.has(actRunnable) {
				a.set(actRunnable)
			} else {
				a.clear(actRunnable)
			}
			a.meta["notify_type"] = "post"
			a.meta["notify_operation"] = task
		}
		s.orderActions(complete, nd.post, orderImpliesThen)
		s.orderActions(nd.post, nd.postDone, orderImpliesThen)
	}
	if act != nil && complete != nil {
		s.orderActions(nd.preDone, nd.post, orderOptional)
	}
	r.clone.notifs = append(r.clone.notifs, nd)
	return nd
}

// createNotifications is pcmk__create_notifications for every clone with
// notifications, run once the graph's flags are final.
func (s *scheduler) createNotifications() {
	var walk func(r *resource)
	walk = func(r *resource) {
		for _, c := range r.children {
			walk(c)
		}
		if !r.isClone || r.clone == nil {
			return
		}
		// clone_expand: settle the clone's own actions from its
		// instances' (a notification counts as the action it is about)
		// before deciding who gets notified.
		for _, a := range r.actions {
			s.actionFlags(a, nil)
		}
		if !r.clone.notify {
			return
		}
		for _, nd := range r.clone.notifs {
			s.collectNotifyData(r, nd)
			s.addNotifyKeys(r, nd)
			for _, c := range r.children {
				s.createNotifyActions(c, nd)
			}
		}
	}
	for _, r := range s.resources {
		walk(r)
	}
}

// collectNotifyData is collect_resource_data: who is active, and who
// starts, stops, promotes and demotes where.
func (s *scheduler) collectNotifyData(r *resource, nd *notifyData) {
	for _, c := range r.children {
		if len(c.children) > 0 {
			// A cloned group's members are listed one by one.
			s.collectNotifyData(c, nd)
			continue
		}
		var cur *node
		if len(c.runningOn) > 0 {
			cur = c.runningOn[0]
		}
		if cur != nil {
			e := notifyEntry{c, cur}
			nd.active = append(nd.active, e)
			switch c.role {
			case RolePromoted:
				nd.promoted = append(nd.promoted, e)
			case RoleUnpromoted:
				nd.unprom = append(nd.unprom, e)
			}
		} else {
			nd.inactive = append(nd.inactive, notifyEntry{c, nil})
		}
		for _, a := range c.actions {
			if a.has(actOptional) || a.node == nil {
				continue
			}
			e := notifyEntry{c, a.node}
			switch a.task {
			case taskStart:
				if a.has(actRunnable) {
					nd.start = append(nd.start, e)
				}
			case taskStop:
				nd.stop = append(nd.stop, e)
			case taskPromote:
				if a.has(actRunnable) {
					nd.promote = append(nd.promote, e)
				}
			case taskDemote:
				nd.demote = append(nd.demote, e)
			}
		}
	}
}

// notifyList renders entries as the CRM_meta_notify_*_resource and _uname
// values: names sorted, separated by spaces.
func notifyList(list []notifyEntry) (rscs, nodes string) {
	sorted := append([]notifyEntry(nil), list...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].rsc.id < sorted[j].rsc.id })
	var rs, ns []string
	for _, e := range sorted {
		rs = append(rs, e.rsc.id)
		if e.node != nil {
			ns = append(ns, e.node.name)
		}
	}
	return strings.Join(rs, " "), strings.Join(ns, " ")
}

// addNotifyKeys is add_notif_keys: the notification data as meta
// attributes of the pseudo actions (copied to each notify action).
func (s *scheduler) addNotifyKeys(r *resource, nd *notifyData) {
	keys := map[string]string{}
	for _, l := range []struct {
		name string
		list []notifyEntry
	}{{"active", nd.active}, {"inactive", nd.inactive}, {"start", nd.start}, {"stop", nd.stop},
		{"promote", nd.promote}, {"demote", nd.demote}, {"promoted", nd.promoted}, {"unpromoted", nd.unprom},
		{"master", nd.promoted}, {"slave", nd.unprom}} {
		rs, ns := notifyList(l.list)
		keys["notify_"+l.name+"_resource"] = rs
		keys["notify_"+l.name+"_uname"] = ns
	}
	for _, a := range []*action{nd.pre, nd.preDone, nd.post, nd.postDone} {
		if a == nil {
			continue
		}
		for k, v := range keys {
			a.meta[k] = v
		}
	}
}

// createNotifyActions is create_notify_actions for one instance.
func (s *scheduler) createNotifyActions(c *resource, nd *notifyData) {
	if len(c.children) > 0 {
		for _, x := range c.children {
			s.createNotifyActions(x, nd)
		}
		return
	}
	switch nd.task {
	case taskStart:
		if len(nd.start) == 0 {
			return
		}
	case taskPromote:
		if len(nd.promote) == 0 {
			return
		}
	case taskDemote:
		if len(nd.demote) == 0 {
			return
		}
	}
	if c.role != RoleStopped && (nd.task == taskStop || nd.task == taskDemote) {
		stop := findFirstAction(c.actions, "", taskStop, nil)
		for _, cur := range c.runningOn {
			if stop != nil && stop.has(actPseudo) && cur.unclean {
				continue
			}
			s.newNotifyAction(c, cur, nd.pre, nd.preDone)
			if nd.task == taskDemote || stop == nil || stop.has(actOptional) {
				s.newPostNotifyAction(c, cur, nd)
			}
		}
	}
	if c.nextRole != RoleStopped && (nd.task == taskStart || nd.task == taskPromote) {
		start := findFirstAction(c.actions, "", taskStart, nil)
		if start != nil {
			// A promote with no node (created only to hang orderings on)
			// does not count.
			for _, p := range c.actions {
				if p.task == taskPromote && p.node != nil && !p.has(actRunnable) {
					return
				}
			}
			if !start.has(actRunnable) {
				return
			}
		}
		if c.allocatedTo == nil {
			return
		}
		if nd.task != taskStart || start == nil || start.has(actOptional) {
			s.newNotifyAction(c, c.allocatedTo, nd.pre, nd.preDone)
		}
		s.newPostNotifyAction(c, c.allocatedTo, nd)
	}
}

// newNotifyAction is new_notify_action.
func (s *scheduler) newNotifyAction(c *resource, n *node, op, confirm *action) *action {
	if c == nil || n == nil || op == nil || confirm == nil {
		return nil
	}
	if !n.online || !op.has(actRunnable) {
		return nil
	}
	key := c.id + "_" + op.meta["notify_type"] + "_notify_" + op.meta["notify_operation"] + "_0"
	a := s.customAction(c, key, taskNotify, n, op.has(actOptional), true)
	for k, v := range op.meta {
		if _, ok := a.meta[k]; !ok {
			a.meta[k] = v
		}
	}
	s.orderActions(op, a, orderOptional)
	s.orderActions(a, confirm, orderOptional)
	return a
}

// newPostNotifyAction is new_post_notify_action: recurring monitors wait
// for the post notifications.
func (s *scheduler) newPostNotifyAction(c *resource, n *node, nd *notifyData) {
	s.newNotifyAction(c, n, nd.post, nd.postDone)
	if nd.postDone == nil {
		return
	}
	for _, m := range c.actions {
		if m.task == taskMonitor && m.intervalMS > 0 && m.node == n && !m.has(actOptional) {
			s.orderActions(nd.postDone, m, orderOptional)
		}
	}
}
