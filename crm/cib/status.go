package cib

import (
	"fmt"
	"strconv"
	"strings"
)

// Status is the <status> section: one NodeState per node the cluster has
// seen, plus anything else (tickets) kept verbatim.
type Status struct {
	Nodes []*NodeState
	Other []*Element
}

// NodeState is a <node_state>. Attrs keeps every attribute (id, uname,
// in_ccm, crmd, join, expected, ...) in order.
type NodeState struct {
	Attrs Attrs
	// Transient holds the instance_attributes sets of <transient_attributes>.
	Transient     []*NVSet
	TransientID   string
	HasTransient  bool
	LRMID         string
	LRMResourceID string
	HasLRM        bool
	Resources     []*LRMResource
}

// ID returns the node id.
func (n *NodeState) ID() string { return n.Attrs.Value("id") }

// Uname returns the node name.
func (n *NodeState) Uname() string { return n.Attrs.Value("uname") }

// LRMResource is one <lrm_resource> with its operation history.
type LRMResource struct {
	Attrs Attrs
	Ops   []*LRMOp
}

// ID returns the resource id the history is recorded under.
func (r *LRMResource) ID() string { return r.Attrs.Value("id") }

// LRMOp is one <lrm_rsc_op> history entry.
type LRMOp struct {
	Attrs Attrs
}

// ID returns the history entry id (e.g. rsc_last_0).
func (o *LRMOp) ID() string { return o.Attrs.Value("id") }

// Task returns the operation name.
func (o *LRMOp) Task() string { return o.Attrs.Value("operation") }

// IntervalMS returns the interval in milliseconds (0 if absent or invalid).
func (o *LRMOp) IntervalMS() int { return atoiDefault(o.Attrs.Value("interval"), 0) }

// CallID returns call-id, -1 when absent (pending).
func (o *LRMOp) CallID() int { return atoiDefault(o.Attrs.Value("call-id"), -1) }

// RC returns rc-code (unknown error 1 when absent).
func (o *LRMOp) RC() int { return atoiDefault(o.Attrs.Value("rc-code"), 1) }

// OpStatus returns op-status (error 4 when absent).
func (o *LRMOp) OpStatus() int { return atoiDefault(o.Attrs.Value("op-status"), 4) }

// TargetRC decodes the expected result from the transition key
// ("action:transition:target_rc:uuid"), -1 when it cannot be decoded.
func (o *LRMOp) TargetRC() int {
	key := o.Attrs.Value("transition-key")
	if key == "" {
		return -1
	}
	parts := strings.SplitN(key, ":", 4)
	if len(parts) < 4 {
		return -1
	}
	return atoiDefault(parts[2], -1)
}

// LastRCChange returns last-rc-change (or last-run), -1 if absent.
func (o *LRMOp) LastRCChange() int64 {
	v, ok := o.Attrs.Get("last-rc-change")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

func atoiDefault(s string, def int) int {
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return def
	}
	return n
}

func (p *converter) status(e *Element) (*Status, error) {
	st := &Status{}
	for _, c := range e.Children {
		if c.Name != "node_state" {
			st.Other = append(st.Other, c.Clone())
			continue
		}
		ns := &NodeState{Attrs: c.Attrs.Clone()}
		if ns.ID() == "" {
			return nil, invalid(c, "node_state without id")
		}
		for _, cc := range c.Children {
			switch cc.Name {
			case "transient_attributes":
				ns.HasTransient = true
				ns.TransientID = cc.ID()
				sets, err := p.nvsets(cc, "instance_attributes")
				if err != nil {
					return nil, err
				}
				ns.Transient = sets
			case "lrm":
				ns.HasLRM = true
				ns.LRMID = cc.ID()
				for _, rs := range cc.Children {
					if rs.Name != "lrm_resources" {
						continue
					}
					ns.LRMResourceID = rs.ID()
					for _, re := range rs.Children {
						if re.Name != "lrm_resource" {
							continue
						}
						lr := &LRMResource{Attrs: re.Attrs.Clone()}
						if lr.ID() == "" {
							return nil, invalid(re, "lrm_resource without id")
						}
						for _, oe := range re.Children {
							if oe.Name != "lrm_rsc_op" {
								continue
							}
							lr.Ops = append(lr.Ops, &LRMOp{Attrs: oe.Attrs.Clone()})
						}
						ns.Resources = append(ns.Resources, lr)
					}
				}
			}
		}
		st.Nodes = append(st.Nodes, ns)
	}
	return st, nil
}

func (s *Status) element() *Element {
	e := &Element{Name: "status"}
	if s == nil {
		return e
	}
	for _, n := range s.Nodes {
		ne := &Element{Name: "node_state", Attrs: n.Attrs.Clone()}
		if n.HasTransient || len(n.Transient) > 0 {
			te := &Element{Name: "transient_attributes", Attrs: Attrs{{"id", firstNonEmpty(n.TransientID, n.ID())}}}
			for _, set := range n.Transient {
				te.Children = append(te.Children, set.element())
			}
			ne.Children = append(ne.Children, te)
		}
		if n.HasLRM || len(n.Resources) > 0 {
			le := &Element{Name: "lrm", Attrs: Attrs{{"id", firstNonEmpty(n.LRMID, n.ID())}}}
			rs := &Element{Name: "lrm_resources"}
			if n.LRMResourceID != "" {
				rs.Attrs = Attrs{{"id", n.LRMResourceID}}
			}
			for _, r := range n.Resources {
				re := &Element{Name: "lrm_resource", Attrs: r.Attrs.Clone()}
				for _, o := range r.Ops {
					re.Children = append(re.Children, &Element{Name: "lrm_rsc_op", Attrs: o.Attrs.Clone()})
				}
				rs.Children = append(rs.Children, re)
			}
			le.Children = append(le.Children, rs)
			ne.Children = append(ne.Children, le)
		}
		e.Children = append(e.Children, ne)
	}
	for _, o := range s.Other {
		e.Children = append(e.Children, o.Clone())
	}
	return e
}

func (s *NVSet) element() *Element {
	e := &Element{Name: s.Kind, Attrs: Attrs{{"id", s.ID}}}
	if s.Score != "" {
		e.Attrs = append(e.Attrs, Attr{"score", s.Score})
	}
	for _, p := range s.Pairs {
		pe := &Element{Name: "nvpair"}
		if p.ID != "" {
			pe.Attrs = append(pe.Attrs, Attr{"id", p.ID})
		}
		pe.Attrs = append(pe.Attrs, Attr{"name", p.Name})
		if p.HasValue {
			pe.Attrs = append(pe.Attrs, Attr{"value", p.Value})
		}
		e.Children = append(e.Children, pe)
	}
	return e
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// NodeByUname returns the node_state for uname, or nil.
func (s *Status) NodeByUname(uname string) *NodeState {
	for _, n := range s.Nodes {
		if n.Uname() == uname {
			return n
		}
	}
	return nil
}

// EnsureNode returns the node_state for uname, creating one with the given
// id when absent (as crm_simulate's pcmk__inject_node does).
func (s *Status) EnsureNode(id, uname string) *NodeState {
	if n := s.NodeByUname(uname); n != nil {
		return n
	}
	if id == "" {
		id = uname
	}
	n := &NodeState{Attrs: Attrs{{"id", id}, {"uname", uname}}}
	s.Nodes = append(s.Nodes, n)
	return n
}

// SetMembership marks the node up (in the membership, controller online,
// joined, expected up) or down, like crm_simulate's node state injection.
func (n *NodeState) SetMembership(up bool) {
	if up {
		n.Attrs.Set("in_ccm", "true")
		n.Attrs.Set("crmd", "online")
		n.Attrs.Set("join", "member")
		n.Attrs.Set("expected", "member")
	} else {
		n.Attrs.Set("in_ccm", "false")
		n.Attrs.Set("crmd", "offline")
		n.Attrs.Set("join", "down")
		n.Attrs.Set("expected", "down")
	}
}

// ClearHistory removes the node's operation history (after fencing or a
// clean shutdown the controller erases it).
func (n *NodeState) ClearHistory() {
	n.Resources = nil
	n.HasLRM = false
}

// ClearTransient removes the node's transient attributes.
func (n *NodeState) ClearTransient() {
	n.Transient = nil
	n.HasTransient = false
}

// TransientAttr returns a transient attribute value.
func (n *NodeState) TransientAttr(name string) (string, bool) {
	for _, s := range n.Transient {
		for _, p := range s.Pairs {
			if p.Name == name && p.HasValue {
				return p.Value, true
			}
		}
	}
	return "", false
}

// SetTransientAttr sets a transient attribute, creating the set if needed.
// The value "value++" increments an integer value (INFINITY saturates), as
// the CIB manager does for fail counts.
func (n *NodeState) SetTransientAttr(name, value string) {
	if value == "value++" {
		old, _ := n.TransientAttr(name)
		value = incrementScore(old)
	}
	for _, s := range n.Transient {
		for i := range s.Pairs {
			if s.Pairs[i].Name == name {
				s.Pairs[i].Value, s.Pairs[i].HasValue = value, true
				return
			}
		}
	}
	if len(n.Transient) == 0 {
		n.Transient = append(n.Transient, &NVSet{Kind: "instance_attributes", ID: "status-" + n.ID()})
		n.HasTransient = true
	}
	s := n.Transient[0]
	s.Pairs = append(s.Pairs, NVPair{ID: s.ID + "-" + name, Name: name, Value: value, HasValue: true})
}

func incrementScore(old string) string {
	switch strings.ToUpper(strings.TrimPrefix(old, "+")) {
	case "INFINITY":
		return "INFINITY"
	}
	v, err := strconv.Atoi(old)
	if err != nil {
		v = 0
	}
	v++
	if v >= 1000000 {
		return "INFINITY"
	}
	return strconv.Itoa(v)
}

// Resource returns the node's history for resource id, or nil.
func (n *NodeState) Resource(id string) *LRMResource {
	for _, r := range n.Resources {
		if r.ID() == id {
			return r
		}
	}
	return nil
}

// EnsureResource returns the node's history entry for a resource, creating
// it with the given agent when absent.
func (n *NodeState) EnsureResource(id, class, typ, provider string) *LRMResource {
	if r := n.Resource(id); r != nil {
		return r
	}
	r := &LRMResource{Attrs: Attrs{{"id", id}, {"class", class}, {"type", typ}}}
	if provider != "" {
		r.Attrs = append(r.Attrs, Attr{"provider", provider})
	}
	n.Resources = append(n.Resources, r)
	n.HasLRM = true
	return r
}

// MaxCallID returns the highest call-id recorded for the resource (0 if none).
func (r *LRMResource) MaxCallID() int {
	max := 0
	for _, o := range r.Ops {
		if c := o.CallID(); c > max {
			max = c
		}
	}
	return max
}

// OpResult describes an operation result to record in the history.
type OpResult struct {
	Task       string
	IntervalMS int
	RC         int
	OpStatus   int
	TargetRC   int
	CallID     int
	Digest     string
	LastChange int64
	// ExitReason is recorded as the result's exit-reason.
	ExitReason string
}

// Record adds an operation result to the history, replacing the entry with
// the same id. As the controller does, a non-recurring result is stored as
// RSC_last_0, a recurring one as RSC_TASK_INTERVAL, and a result that differs
// from the expected one as RSC_last_failure_0 (and also RSC_last_0 when it
// is not recurring).
func (r *LRMResource) Record(res OpResult) {
	rsc := r.ID()
	key := fmt.Sprintf("%s_%s_%d", rsc, res.Task, res.IntervalMS)
	failed := res.OpStatus != 0 || res.RC != res.TargetRC
	var ids []string
	switch {
	case failed:
		ids = append(ids, rsc+"_last_failure_0")
		if res.IntervalMS == 0 {
			ids = append(ids, rsc+"_last_0")
		}
	case res.IntervalMS > 0:
		ids = append(ids, key)
	default:
		ids = append(ids, rsc+"_last_0")
	}
	tkey := fmt.Sprintf("%d:-1:%d:xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", res.CallID, res.TargetRC)
	for _, id := range ids {
		set := Attrs{
			{"id", id},
			{"operation_key", key},
			{"operation", res.Task},
			{"crm-debug-origin", "crm_simulate"},
			{"crm_feature_set", FeatureSet},
			{"transition-key", tkey},
			{"transition-magic", fmt.Sprintf("%d:%d;%s", res.OpStatus, res.RC, tkey)},
			{"exit-reason", res.ExitReason},
			{"call-id", strconv.Itoa(res.CallID)},
			{"rc-code", strconv.Itoa(res.RC)},
			{"op-status", strconv.Itoa(res.OpStatus)},
			{"interval", strconv.Itoa(res.IntervalMS)},
			{"last-rc-change", strconv.FormatInt(res.LastChange, 10)},
			{"exec-time", "0"},
			{"queue-time", "0"},
		}
		if res.Digest != "" {
			set = append(set, Attr{"op-digest", res.Digest})
		}
		// As the controller does, an existing entry with the same id is
		// updated in place: attributes not set here (an older op-digest,
		// say) survive.
		var op *LRMOp
		for _, old := range r.Ops {
			if old.ID() == id {
				op = old
				break
			}
		}
		if op == nil {
			r.Ops = append(r.Ops, &LRMOp{Attrs: set})
			continue
		}
		for _, a := range set {
			op.Attrs.Set(a.Name, a.Value)
		}
	}
}

// FeatureSet is the CRM feature set written into injected history entries;
// it is that of Pacemaker 2.1.5, whose behaviour the scheduler follows.
const FeatureSet = "3.16.1"
