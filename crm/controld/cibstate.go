package controld

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"

	"ringmaster/crm/cib"
	"ringmaster/totem"
)

// The controller treats a *cib.CIB as an immutable value: every change
// builds a new top-level CIB that shares what did not change (the
// configuration, the other nodes' states, the other resources' histories).
// That makes snapshots (the CIB to persist, every saved scheduler input)
// free, and lets the driver serialise them from another goroutine.

const emptyCIBXML = `<cib crm_feature_set="` + cib.FeatureSet + `" validate-with="pacemaker-3.7" admin_epoch="0" epoch="0" num_updates="0">
  <configuration>
    <crm_config/>
    <nodes/>
    <resources/>
    <constraints/>
  </configuration>
  <status/>
</cib>
`

func emptyCIB() *cib.CIB {
	c, err := cib.Parse(strings.NewReader(emptyCIBXML))
	if err != nil {
		panic(fmt.Sprintf("controld: the empty CIB does not parse: %v", err))
	}
	return c
}

// shallow copies the top level of c with its own root attributes.
func shallow(c *cib.CIB) *cib.CIB {
	n := *c
	n.Attrs = c.Attrs.Clone()
	return &n
}

// configXML serialises the configuration part of c (status left empty):
// what MsgSync and MsgConfig carry.
func configXML(c *cib.CIB) []byte {
	n := *c
	n.Status = &cib.Status{}
	var b bytes.Buffer
	if _, err := n.WriteTo(&b); err != nil {
		panic(fmt.Sprintf("controld: a parsed CIB failed to serialise: %v", err))
	}
	return b.Bytes()
}

func configDigest(c *cib.CIB) []byte {
	h := sha256.Sum256(configXML(c))
	return h[:]
}

func nodeStateXML(ns *cib.NodeState) []byte {
	var b bytes.Buffer
	if err := cib.WriteStatus(&b, &cib.Status{Nodes: []*cib.NodeState{ns}}); err != nil {
		panic(fmt.Sprintf("controld: node state failed to serialise: %v", err))
	}
	return b.Bytes()
}

func parseNodeState(p []byte) (*cib.NodeState, error) {
	st, err := cib.ParseStatus(bytes.NewReader(p))
	if err != nil {
		return nil, err
	}
	if len(st.Nodes) != 1 {
		return nil, fmt.Errorf("%w: %d node states, want 1", ErrMalformed, len(st.Nodes))
	}
	return st.Nodes[0], nil
}

// cloneNodeState copies a node state deeply enough to be edited: its
// attributes and transient attributes are copied, the resource list is a
// new slice of the same (immutable) histories.
func cloneNodeState(ns *cib.NodeState) *cib.NodeState {
	n := *ns
	n.Attrs = ns.Attrs.Clone()
	n.Transient = nil
	for _, s := range ns.Transient {
		cs := *s
		cs.Pairs = append([]cib.NVPair(nil), s.Pairs...)
		n.Transient = append(n.Transient, &cs)
	}
	n.Resources = append([]*cib.LRMResource(nil), ns.Resources...)
	return &n
}

func cloneLRMResource(r *cib.LRMResource) *cib.LRMResource {
	n := &cib.LRMResource{Attrs: r.Attrs.Clone()}
	for _, o := range r.Ops {
		n.Ops = append(n.Ops, &cib.LRMOp{Attrs: o.Attrs.Clone()})
	}
	return n
}

func nodeIDString(id totem.NodeID) string { return strconv.FormatUint(uint64(id), 10) }

func parseNodeID(s string) (totem.NodeID, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, false
	}
	return totem.NodeID(n), true
}

// setMembership writes the node_state attributes the scheduler reads for
// a node in (up) or out of the membership. expected is only raised: it
// says whether the node is meant to be up, which only a clean shutdown or
// fencing lowers (so a member that disappears is unclean).
func setMembership(ns *cib.NodeState, up bool) {
	if up {
		ns.SetMembership(true)
		return
	}
	ns.Attrs.Set("in_ccm", "false")
	ns.Attrs.Set("crmd", "offline")
	ns.Attrs.Set("join", "down")
	if _, ok := ns.Attrs.Get("expected"); !ok {
		ns.Attrs.Set("expected", "down")
	}
}

func membershipIs(ns *cib.NodeState, up bool) bool {
	if up {
		return ns.Attrs.Value("in_ccm") == "true" && ns.Attrs.Value("crmd") == "online" &&
			ns.Attrs.Value("join") == "member" && ns.Attrs.Value("expected") == "member"
	}
	return ns.Attrs.Value("in_ccm") == "false" && ns.Attrs.Value("crmd") == "offline" && ns.Attrs.Value("join") == "down"
}

// recordOp records an operation result (or, with pending, an operation
// in flight) in a resource's history, as Pacemaker's controller does: a
// non-recurring result is RSC_last_0, a recurring one RSC_TASK_INTERVAL, a
// result that differs from the expected one also RSC_last_failure_0. An
// existing entry with the same id is replaced. r must be a private copy.
func recordOp(r *cib.LRMResource, m *resultMsg, uname string, pending bool) {
	rsc := r.ID()
	key := fmt.Sprintf("%s_%s_%d", rsc, m.Task, m.IntervalMS)
	failed := !pending && (m.OpStatus != 0 || m.RC != m.TargetRC)
	probe := m.Task == "monitor" && m.IntervalMS == 0
	if probe && m.OpStatus == 0 && (m.RC == 0 || m.RC == 7 || m.RC == 8) {
		// A probe finding the resource running or stopped is information,
		// not a failure (it is recorded as last_0 only).
		failed = false
	}
	var ids []string
	switch {
	case failed:
		ids = append(ids, rsc+"_last_failure_0")
		if m.IntervalMS == 0 {
			ids = append(ids, rsc+"_last_0")
		}
	case m.IntervalMS > 0:
		ids = append(ids, key)
	default:
		ids = append(ids, rsc+"_last_0")
	}
	rc, status, call := m.RC, m.OpStatus, m.CallID
	if pending {
		rc, status, call = 193, -1, -1
	}
	magic := fmt.Sprintf("%d:%d;%s", status, rc, m.Key)
	for _, id := range ids {
		set := cib.Attrs{
			{Name: "id", Value: id},
			{Name: "operation_key", Value: key},
			{Name: "operation", Value: m.Task},
			{Name: "crm-debug-origin", Value: "controld"},
			{Name: "crm_feature_set", Value: cib.FeatureSet},
			{Name: "transition-key", Value: m.Key},
			{Name: "transition-magic", Value: magic},
			{Name: "exit-reason", Value: m.Reason},
			{Name: "on_node", Value: uname},
			{Name: "call-id", Value: strconv.Itoa(call)},
			{Name: "rc-code", Value: strconv.Itoa(rc)},
			{Name: "op-status", Value: strconv.Itoa(status)},
			{Name: "interval", Value: strconv.Itoa(m.IntervalMS)},
			{Name: "last-rc-change", Value: strconv.FormatInt(m.Time, 10)},
			{Name: "exec-time", Value: strconv.FormatInt(m.ExecMS, 10)},
			{Name: "queue-time", Value: "0"},
		}
		if m.Digest != "" {
			set = append(set, cib.Attr{Name: "op-digest", Value: m.Digest})
		}
		replaced := false
		for i, old := range r.Ops {
			if old.ID() == id {
				r.Ops[i] = &cib.LRMOp{Attrs: set}
				replaced = true
				break
			}
		}
		if !replaced {
			r.Ops = append(r.Ops, &cib.LRMOp{Attrs: set})
		}
	}
}

// removeOp deletes a history entry (a cancelled recurring operation).
func removeOp(r *cib.LRMResource, id string) {
	out := r.Ops[:0]
	for _, o := range r.Ops {
		if o.ID() != id {
			out = append(out, o)
		}
	}
	r.Ops = out
}

// removeTransient deletes transient attributes whose name matches keep=false.
func removeTransient(ns *cib.NodeState, drop func(name string) bool) bool {
	changed := false
	for _, s := range ns.Transient {
		out := s.Pairs[:0]
		for _, p := range s.Pairs {
			if drop(p.Name) {
				changed = true
				continue
			}
			out = append(out, p)
		}
		s.Pairs = out
	}
	return changed
}

// failureAttrs are the transient attributes Pacemaker's attribute manager
// keeps for a failed operation.
func failureAttrs(rsc, task string, intervalMS int) (count, last string) {
	s := fmt.Sprintf("%s#%s_%d", rsc, task, intervalMS)
	return "fail-count-" + s, "last-failure-" + s
}
