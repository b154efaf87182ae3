package pengine

import (
	"strings"
	"time"

	"ringmaster/crm/cib"
)

// NodeStatus describes one node for display.
type NodeStatus struct {
	Name string
	ID   string // the CIB node id
	// State is the crm_mon state text ("online", "OFFLINE", "standby",
	// "UNCLEAN (offline)", ...).
	State string
	// Individual is true when crm_mon lists the node on its own line
	// rather than in the Online/OFFLINE summary lists.
	Individual bool
	Online     bool
	// The conditions State is made of, for machine-readable output.
	// Standby includes standby because of a failure (on-fail=standby).
	Unclean, Pending, Standby, Maintenance bool
}

// ResourceStatus describes one resource for display.
type ResourceStatus struct {
	ID    string
	Agent string
	// State is the text after the agent, e.g. " Started node1",
	// " Stopped (disabled)", " FAILED (blocked) [ node2 node3 ]".
	State string
	// Group fields: Flags is e.g. "unmanaged, disabled"; Members lists the
	// group's primitives.
	IsGroup bool
	Flags   string
	Members []*ResourceStatus
	// Clone fields: Child is the cloned resource's id; Members are the
	// instances listed one by one, Roles the summarised ones. Unique is
	// globally-unique (instances are shown as "rsc:N"), Promotable says
	// the instances have promoted and unpromoted roles.
	IsClone    bool
	Child      string
	Roles      []RoleList
	Unique     bool
	Promotable bool
	// Instances lists every instance of a clone (primitives, or groups for
	// a cloned group), inactive ones included, under their instance ids
	// ("rsc:0"), whatever Members and Roles show. Inactive orphans are
	// left out, as in the display.
	Instances []*ResourceStatus

	// Structured state of a primitive (a group member or a clone instance
	// too); zero for groups and clones.
	//
	// Role is the current role: "Stopped", "Started", "Unpromoted" or
	// "Promoted" ("Unknown" for a resource whose state could not be
	// determined). Pending is the action in flight, with
	// StatusOptions.ShowPending only: "Starting", "Stopping", "Migrating",
	// "Promoting" or "Demoting" (State shows it instead of the role), ""
	// when none. Nodes are the names of the nodes it is active on.
	Role    string
	Pending string
	Failed  bool
	Managed bool
	Nodes   []string
}

// ClusterStatus is what crm_simulate prints as the cluster status.
type ClusterStatus struct {
	Nodes                        []NodeStatus
	Resources                    []*ResourceStatus
	Instances, Disabled, Blocked int
	MaintenanceMode              bool
}

// StatusOptions select display variants.
type StatusOptions struct {
	// ShowPending shows pending actions (e.g. "Starting").
	ShowPending bool
}

// Status unpacks a CIB and describes its nodes and resources as crm_mon
// (and crm_simulate) display them.
func Status(in *cib.CIB, now time.Time, opts StatusOptions) (*ClusterStatus, error) {
	s, err := unpack(in, now, Options{})
	if err != nil {
		return nil, err
	}
	st := &ClusterStatus{Instances: s.ninstances, Disabled: s.disabled, Blocked: s.blocked, MaintenanceMode: s.maintenanceMode}
	for _, n := range s.nodes {
		st.Nodes = append(st.Nodes, nodeStatus(n))
	}
	for _, r := range s.resources {
		active := s.rscActive(r)
		if r.has(rscOrphan) && !active {
			continue
		}
		// crm_mon skips a group or clone that counts as active but is
		// recorded as running nowhere: an unmanaged member on an offline
		// node does not add that node to its parents.
		if active && len(r.runningOn) == 0 {
			continue
		}
		st.Resources = append(st.Resources, s.resourceStatus(r, opts))
	}
	return st, nil
}

// Primitive is one primitive of a ClusterStatus (group members and clone
// instances included) with the group and the clone it belongs to.
type Primitive struct {
	*ResourceStatus
	// Group is the containing group's id as shown (an instance id such as
	// "grp:0" inside a clone), Clone the containing clone's.
	Group, Clone string
	// Anonymous is set for an instance (or a member of one) of an
	// anonymous clone, whose ids carry an instance number.
	Anonymous bool
}

// Primitives flattens the status into its primitives, in display order:
// what crm status, the status page and the metrics list one by one.
func (st *ClusterStatus) Primitives() []Primitive {
	var out []Primitive
	var walk func(r *ResourceStatus, group, clone string, anon bool)
	walk = func(r *ResourceStatus, group, clone string, anon bool) {
		switch {
		case r.IsClone:
			for _, in := range r.Instances {
				walk(in, "", r.ID, !r.Unique)
			}
		case r.IsGroup:
			for _, m := range r.Members {
				walk(m, r.ID, clone, anon)
			}
		default:
			out = append(out, Primitive{ResourceStatus: r, Group: group, Clone: clone, Anonymous: anon})
		}
	}
	for _, r := range st.Resources {
		walk(r, "", "", false)
	}
	return out
}

// Summary names a primitive's state as started, stopped, failed, promoted
// or unpromoted. An action in flight counts as not done: the scheduler
// counts a resource whose start is pending as active where it starts, but
// it is "stopped" until the start completes (unless it also runs
// elsewhere); one being promoted is still "unpromoted"; one being stopped,
// demoted or migrated keeps its state until that completes.
func (r *ResourceStatus) Summary() string {
	switch {
	case r.Failed:
		return "failed"
	case len(r.Nodes) == 0, r.Pending == "Starting" && len(r.Nodes) == 1:
		return "stopped"
	case r.Pending == "Promoting":
		return "unpromoted"
	case r.Role == "Promoted":
		return "promoted"
	case r.Role == "Unpromoted":
		return "unpromoted"
	}
	return "started"
}

func nodeStatus(n *node) NodeStatus {
	ns := NodeStatus{Name: n.name, ID: n.id, Online: n.online, Unclean: n.unclean, Pending: n.pending,
		Standby: n.standby || (n.standbyOnFail && n.online), Maintenance: n.maintenance}
	ns.Individual = n.unclean || n.pending || (n.standbyOnFail && n.online) || n.standby || n.maintenance
	switch {
	case n.unclean:
		switch {
		case n.online:
			ns.State = "UNCLEAN (online)"
		case n.pending:
			ns.State = "UNCLEAN (pending)"
		default:
			ns.State = "UNCLEAN (offline)"
		}
	case n.pending:
		ns.State = "pending"
	case n.standbyOnFail && n.online:
		ns.State = "standby (on-fail)"
	case n.standby:
		switch {
		case !n.online:
			ns.State = "OFFLINE (standby)"
		case len(n.running) > 0:
			ns.State = "standby (with active resources)"
		default:
			ns.State = "standby"
		}
	case n.maintenance:
		if n.online {
			ns.State = "maintenance"
		} else {
			ns.State = "OFFLINE (maintenance)"
		}
	case n.online:
		ns.State = "online"
	default:
		ns.State = "OFFLINE"
	}
	return ns
}

func (s *scheduler) resourceStatus(r *resource, opts StatusOptions) *ResourceStatus {
	if r.isClone {
		return s.cloneStatus(r, opts)
	}
	if r.isGroup {
		rs := &ResourceStatus{ID: r.id, IsGroup: true}
		var flags []string
		if !r.has(rscManaged) {
			flags = append(flags, "unmanaged")
		}
		if isDisabled(r) {
			flags = append(flags, "disabled")
		}
		rs.Flags = strings.Join(flags, ", ")
		for _, c := range r.children {
			rs.Members = append(rs.Members, s.resourceStatus(c, opts))
		}
		return rs
	}
	return s.primitiveStatus(r, opts)
}

// primitiveStatus describes a primitive: the display text and the
// structured state.
func (s *scheduler) primitiveStatus(r *resource, opts StatusOptions) *ResourceStatus {
	rs := &ResourceStatus{ID: r.id, Agent: r.cfg.Agent(), State: s.nativeState(r, opts),
		Role: r.role.String(), Failed: r.has(rscFailed), Managed: r.has(rscManaged)}
	if opts.ShowPending {
		rs.Pending = pendingText(r.pendingTask)
	}
	for _, n := range r.runningOn {
		rs.Nodes = append(rs.Nodes, n.name)
	}
	return rs
}

// pendingText is how crm_mon shows a pending action instead of the role
// ("" for none, and for a monitor, which is shown as a flag).
func pendingText(task string) string {
	switch task {
	case taskStart:
		return "Starting"
	case taskStop:
		return "Stopping"
	case taskMigrateTo, taskMigrateFrom:
		return "Migrating"
	case taskPromote:
		return "Promoting"
	case taskDemote:
		return "Demoting"
	}
	return ""
}

// nativeState is pcmk__native_output_string after the agent.
func (s *scheduler) nativeState(r *resource, opts StatusOptions) string {
	var b strings.Builder
	n := currentNodeOf(r)
	if n == nil {
		n = r.pendingNode
	}
	if len(r.runningOn) > 1 {
		n = nil
	}
	addWord := func(w string) {
		b.WriteByte(' ')
		b.WriteString(w)
	}
	if r.has(rscOrphan) {
		b.WriteString(" ORPHANED")
	}
	if r.has(rscFailed) {
		b.WriteString(" FAILED")
		if r.role > RoleUnpromoted {
			addWord(r.role.String())
		}
	} else {
		state := ""
		if opts.ShowPending {
			state = pendingText(r.pendingTask)
		}
		if state == "" {
			state = r.role.String()
		}
		addWord(state)
	}
	if n != nil {
		addWord(n.name)
	}
	if r.role == RoleStopped {
		name := ""
		if n != nil {
			name = n.name
		}
		for _, fp := range s.failedProbes {
			if fp.rsc == r.id && (name == "" || strings.EqualFold(fp.onNode, name)) {
				b.WriteString(" (" + ocfExitText(fp.rc) + ") ")
				break
			}
		}
	}
	var flags []string
	if n != nil && !n.online && n.unclean {
		flags = append(flags, "UNCLEAN")
	}
	if opts.ShowPending && r.pendingTask == taskMonitor {
		flags = append(flags, "Monitoring")
	}
	if v, ok := r.meta["target-role"]; ok && parseRole(v) == RoleStopped {
		flags = append(flags, "disabled")
	}
	switch {
	case r.has(rscBlock):
		flags = append(flags, "blocked")
	case !r.has(rscManaged):
		flags = append(flags, "unmanaged")
	}
	if r.has(rscFailureIgnored) {
		flags = append(flags, "failure ignored")
	}
	if len(flags) > 0 {
		b.WriteString(" (" + strings.Join(flags, ", ") + ")")
	}
	if len(r.runningOn) > 1 {
		b.WriteString(" [")
		for _, x := range r.runningOn {
			b.WriteString(" " + x.name)
		}
		b.WriteString(" ]")
	}
	return b.String()
}
