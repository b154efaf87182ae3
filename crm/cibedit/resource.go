package cibedit

import (
	"fmt"
	"strings"

	"ringmaster/crm/cib"
)

// Start sets the resource's target-role meta attribute to Started (as
// `crm_resource --meta -r RSC -p target-role -v Started` and `crm resource
// start` do). A target-role set on members of a group or clone is removed so
// that they follow the parent again, as crm_resource does when it updates
// the parent of a resource that overrides it.
func Start(c *cib.CIB, rsc string) (*cib.CIB, error) { return SetTargetRole(c, rsc, "Started") }

// Stop sets target-role=Stopped on the resource.
func Stop(c *cib.CIB, rsc string) (*cib.CIB, error) { return SetTargetRole(c, rsc, "Stopped") }

// SetTargetRole sets the resource's target-role meta attribute (Started,
// Stopped, Unpromoted, Promoted) and removes the attribute from its
// children.
func SetTargetRole(c *cib.CIB, rsc, role string) (*cib.CIB, error) {
	switch role {
	case "Started", "Stopped", "Promoted", "Unpromoted", "Master", "Slave":
	default:
		return nil, fmt.Errorf("%w: target-role %q", ErrUsage, role)
	}
	return MetaAttr(c, rsc, "target-role", role, true)
}

// MetaAttr sets (set=true) or deletes a meta attribute of a resource. Setting
// target-role or is-managed removes the attribute from the resource's
// descendants, so the value takes effect for the whole group or clone.
func MetaAttr(c *cib.CIB, rsc, name, value string, set bool) (*cib.CIB, error) {
	d, err := open(c)
	if err != nil {
		return nil, err
	}
	r, err := d.resource(rsc)
	if err != nil {
		return nil, err
	}
	if set {
		d.setPair(r, "meta_attributes", rsc+"-meta_attributes", name, value)
		if name == "target-role" || name == "is-managed" {
			for _, ch := range r.Children {
				walk(ch, func(e *cib.Element) {
					delPairs(e, "meta_attributes", func(n string) bool { return n == name })
				})
			}
		}
	} else if !delPairs(r, "meta_attributes", func(n string) bool { return n == name }) {
		return c, nil // nothing to delete: no new version
	}
	d.config = true
	return d.done()
}

// RestartPlan is crm_resource --restart split into its two CIB edits. The
// controller applies Stop, waits until the resource (and, through the
// constraints, whatever depends on it) has stopped everywhere, i.e. the
// transition that Stop caused completes, and then applies Restore to the
// CIB current at that time. If the stop fails or times out it applies
// Restore anyway and reports the failure, as crm_resource does.
type RestartPlan struct {
	// Rsc is the resource being restarted.
	Rsc string
	// Stop is the input CIB with target-role=Stopped.
	Stop *cib.CIB
	// prior is the target-role set directly on the resource before the
	// restart, had says whether there was one.
	prior string
	had   bool
}

// Restart plans a restart of rsc. A resource that is already stopped by
// its target-role cannot be restarted (crm_resource refuses too).
func Restart(c *cib.CIB, rsc string) (*RestartPlan, error) {
	d, err := open(c)
	if err != nil {
		return nil, err
	}
	r, err := d.resource(rsc)
	if err != nil {
		return nil, err
	}
	prior, had := getPair(r, "meta_attributes", "target-role")
	if had && strings.EqualFold(prior, "Stopped") {
		return nil, fmt.Errorf("%w: %s is stopped by its target-role; start it instead", ErrUsage, rsc)
	}
	stop, err := Stop(c, rsc)
	if err != nil {
		return nil, err
	}
	return &RestartPlan{Rsc: rsc, Stop: stop, prior: prior, had: had}, nil
}

// Restore returns cur with the resource's target-role put back as it was
// before the restart (deleted when it had none).
func (p *RestartPlan) Restore(cur *cib.CIB) (*cib.CIB, error) {
	if p.had {
		return MetaAttr(cur, p.Rsc, "target-role", p.prior, true)
	}
	return MetaAttr(cur, p.Rsc, "target-role", "", false)
}

// PreferID and BanID are the constraint ids crm_resource uses for --move
// and --ban; Clear removes exactly these.
func PreferID(rsc string) string    { return "cli-prefer-" + rsc }
func BanID(rsc, node string) string { return "cli-ban-" + rsc + "-on-" + node }
func isCLIConstraint(e *cib.Element, rsc string, node string) bool {
	if e.Name != "rsc_location" || e.Attrs.Value("rsc") != rsc {
		return false
	}
	id := e.ID()
	if id == PreferID(rsc) {
		return true
	}
	if node != "" {
		return id == BanID(rsc, node)
	}
	return strings.HasPrefix(id, "cli-ban-"+rsc+"-on-")
}

// Move is crm_resource --move -r RSC -N NODE: it removes any earlier
// cli-prefer-RSC and a cli-ban-RSC-on-NODE that would contradict it, and
// adds <rsc_location id="cli-prefer-RSC" rsc=RSC role="Started"
// node=NODE score="INFINITY"/>. The constraint stays until Clear; with
// stickiness the resource then stays on NODE.
//
// Without a node, as crm_resource --move without --node, the resource is
// moved away from where it runs: a Ban on its current node. That needs the
// resource (or, for a group or clone, its members) active on exactly one
// node according to the recorded history.
func Move(c *cib.CIB, rsc, node string) (*cib.CIB, error) {
	if node == "" {
		d, err := open(c)
		if err != nil {
			return nil, err
		}
		mine, err := d.historyIDs(rsc)
		if err != nil {
			return nil, err
		}
		on := d.activeNodes(mine)
		if len(on) != 1 {
			return nil, fmt.Errorf("%w: %s is active on %d nodes %v; name the node to move it to", ErrUsage, rsc, len(on), on)
		}
		return location(c, rsc, on[0], false)
	}
	return location(c, rsc, node, true)
}

// activeNodes lists the nodes (in status order) where a resource matched
// by mine was last seen active: its newest non-recurring result (by
// call-id) is a successful start, promote, demote, migrate_from or a probe
// that found it running (rc 0, or 8 for promoted).
func (d *doc) activeNodes(mine func(string) bool) []string {
	var out []string
	st := d.root.Child("status")
	if st == nil {
		return nil
	}
	for _, ns := range st.Children {
		if ns.Name != "node_state" || ns.Attrs.Value("crmd") == "offline" || ns.Attrs.Value("in_ccm") == "false" {
			continue
		}
		active := false
		walk(ns, func(lr *cib.Element) {
			if lr.Name != "lrm_resource" || !mine(lr.ID()) {
				return
			}
			var last *cib.LRMOp
			for _, oe := range lr.Children {
				o := &cib.LRMOp{Attrs: oe.Attrs}
				if oe.Name != "lrm_rsc_op" || o.IntervalMS() != 0 || o.CallID() < 0 || strings.HasSuffix(o.ID(), "_last_failure_0") {
					continue
				}
				if last == nil || o.CallID() > last.CallID() {
					last = o
				}
			}
			if last == nil || last.OpStatus() != 0 {
				return
			}
			switch last.Task() {
			case "start", "promote", "demote", "migrate_from", "monitor":
				if last.RC() == 0 || last.RC() == 8 {
					active = true
				}
			}
		})
		if active {
			out = append(out, ns.Attrs.Value("uname"))
		}
	}
	return out
}

// Ban is crm_resource --ban -r RSC -N NODE: <rsc_location
// id="cli-ban-RSC-on-NODE" rsc=RSC role="Started" node=NODE
// score="-INFINITY"/>.
func Ban(c *cib.CIB, rsc, node string) (*cib.CIB, error) {
	return location(c, rsc, node, false)
}

func location(c *cib.CIB, rsc, node string, prefer bool) (*cib.CIB, error) {
	if node == "" {
		return nil, fmt.Errorf("%w: a node is required", ErrUsage)
	}
	d, err := open(c)
	if err != nil {
		return nil, err
	}
	if _, err := d.resource(rsc); err != nil {
		return nil, err
	}
	n, _, err := d.node(node)
	if err != nil {
		return nil, err
	}
	cons := d.section("constraints")
	id, score := BanID(rsc, n.uname), "-INFINITY"
	if prefer {
		id, score = PreferID(rsc), "INFINITY"
		removeChildren(cons, func(e *cib.Element) bool { return isCLIConstraint(e, rsc, n.uname) })
	} else {
		removeChildren(cons, func(e *cib.Element) bool { return e.Name == "rsc_location" && e.ID() == id })
	}
	if d.idTaken(id) {
		return nil, fmt.Errorf("%w: id %q is already used by another element", ErrUsage, id)
	}
	cons.Children = append(cons.Children, &cib.Element{Name: "rsc_location", Attrs: cib.Attrs{
		{Name: "id", Value: id}, {Name: "rsc", Value: rsc}, {Name: "role", Value: "Started"},
		{Name: "node", Value: n.uname}, {Name: "score", Value: score}}})
	d.config = true
	return d.done()
}

// Clear is crm_resource --clear: it removes cli-prefer-RSC and the
// cli-ban-RSC-on-* constraints (only cli-ban-RSC-on-NODE when node is
// given). Nothing to remove is not an error and makes no new version.
func Clear(c *cib.CIB, rsc, node string) (*cib.CIB, error) {
	d, err := open(c)
	if err != nil {
		return nil, err
	}
	if _, err := d.resource(rsc); err != nil {
		return nil, err
	}
	if !removeChildren(d.section("constraints"), func(e *cib.Element) bool { return isCLIConstraint(e, rsc, node) }) {
		return c, nil
	}
	d.config = true
	return d.done()
}

// historyIDs lists the ids a resource's history and fail counts are kept
// under: the resource, its descendants, and clone instances ("rsc:0").
func (d *doc) historyIDs(rsc string) (func(id string) bool, error) {
	r, err := d.resource(rsc)
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	walk(r, func(e *cib.Element) {
		switch e.Name {
		case "primitive", "group", "clone", "master", "bundle":
			ids[e.ID()] = true
		}
	})
	return func(id string) bool {
		if i := strings.LastIndexByte(id, ':'); i > 0 {
			id = id[:i]
		}
		return ids[id]
	}, nil
}

// isFailureAttr reports whether a transient attribute is a fail count or
// last-failure time of a resource matched by mine ("fail-count-RSC#op_ms",
// and the pre-2.0 "fail-count-RSC").
func isFailureAttr(name string, mine func(string) bool) bool {
	for _, p := range []string{"fail-count-", "last-failure-"} {
		if rest, ok := strings.CutPrefix(name, p); ok {
			if i := strings.IndexByte(rest, '#'); i >= 0 {
				rest = rest[:i]
			}
			return mine(rest)
		}
	}
	return false
}

// Cleanup is crm_resource --cleanup: on each node (or only node) where the
// resource (or a member of the group or clone) has failed — a fail count
// or a recorded failure — it deletes the fail-count-* and last-failure-*
// attributes and the resource's operation history, so the scheduler
// probes it again there and recovers it from a clean slate. Nodes without
// failures keep their history. This is a status change (num_updates).
func Cleanup(c *cib.CIB, rsc, node string) (*cib.CIB, error) {
	return clean(c, rsc, node, false)
}

// Refresh is crm_resource --refresh: like Cleanup but the history is deleted
// on every node (or node) whether it failed there or not, so the resource is
// re-probed everywhere.
func Refresh(c *cib.CIB, rsc, node string) (*cib.CIB, error) {
	return clean(c, rsc, node, true)
}

func clean(c *cib.CIB, rsc, node string, all bool) (*cib.CIB, error) {
	d, err := open(c)
	if err != nil {
		return nil, err
	}
	mine, err := d.historyIDs(rsc)
	if err != nil {
		return nil, err
	}
	var only *nodeIdent
	if node != "" {
		n, _, err := d.node(node)
		if err != nil {
			return nil, err
		}
		only = &n
	}
	st := d.root.Child("status")
	if st == nil {
		return c, nil
	}
	for _, ns := range st.Children {
		if ns.Name != "node_state" || only != nil && ns.Attrs.Value("uname") != only.uname && ns.ID() != only.id {
			continue
		}
		failed := false
		if ta := ns.Child("transient_attributes"); ta != nil {
			if delPairs(ta, "instance_attributes", func(n string) bool { return isFailureAttr(n, mine) }) {
				failed, d.state = true, true
			}
		}
		lrm := ns.Child("lrm")
		if lrm == nil {
			continue
		}
		for _, rs := range lrm.Children {
			if rs.Name != "lrm_resources" {
				continue
			}
			removeChildren(rs, func(lr *cib.Element) bool {
				if lr.Name != "lrm_resource" || !mine(lr.ID()) {
					return false
				}
				if !all && !failed && !hasFailure(lr) {
					return false
				}
				d.state = true
				return true
			})
		}
	}
	if !d.state {
		return c, nil
	}
	return d.done()
}

// hasFailure reports whether a resource history holds a failed result: a
// last_failure entry, or a result other than the expected one.
func hasFailure(lr *cib.Element) bool {
	for _, op := range lr.Children {
		if op.Name != "lrm_rsc_op" {
			continue
		}
		if strings.HasSuffix(op.ID(), "_last_failure_0") {
			return true
		}
		o := &cib.LRMOp{Attrs: op.Attrs}
		if o.CallID() >= 0 && (o.OpStatus() != 0 && o.OpStatus() != -1 || o.TargetRC() >= 0 && o.RC() != o.TargetRC()) {
			return true
		}
	}
	return false
}
