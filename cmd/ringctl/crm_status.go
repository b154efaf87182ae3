package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"ringmaster/crm/cib"
	"ringmaster/crm/pengine"
	"ringmaster/crm/simulate"
	"ringmaster/crm/wire"
	"ringmaster/lrmd"
	"ringmaster/stonithd"
)

// `ringctl crm status`: crm_mon -1 for ringmaster. Nodes and resources
// come from the scheduler's status unpacking (the same code crm simulate
// prints), the DC and quorum from the controller, failed actions from the
// CIB's operation history, fencing from the fencer's history.

// crmStatusJSON is the --json document. Field names are an interface:
// scripts and acceptance checks parse them.
type crmStatusJSON struct {
	DC              *string          `json:"dc"` // null when there is none
	DCID            uint32           `json:"dc_id"`
	Quorate         bool             `json:"quorate"`
	Version         string           `json:"version"` // admin_epoch.epoch.num_updates
	Members         []uint32         `json:"members"`
	LocalNode       string           `json:"local_node"`
	LocalNodeID     uint32           `json:"local_node_id"`
	Synced          bool             `json:"synced"`
	Enabled         bool             `json:"enabled"`
	Transition      int              `json:"transition"`
	PendingActions  int              `json:"pending_actions"`
	MaintenanceMode bool             `json:"maintenance_mode"`
	Nodes           []statusNode     `json:"nodes"`
	Resources       []statusResource `json:"resources"`
	FailedActions   []statusFailedOp `json:"failed_actions"`
	FencingHistory  []stonithd.Entry `json:"fencing_history"`
	Time            time.Time        `json:"time"`
	Instances       int              `json:"resource_instances"`
	Disabled        int              `json:"disabled"`
	Blocked         int              `json:"blocked"`
}

// statusNode is one node. ID is the CIB node id: a number when it is one
// (ringmaster's node ids are corosync node ids), else the string.
type statusNode struct {
	Name  string `json:"name"`
	ID    any    `json:"id"`
	State string `json:"state"` // online, offline, standby, unclean, maintenance, pending
	// Text is crm_mon's wording ("UNCLEAN (offline)", "OFFLINE (standby)").
	Text string `json:"text"`
}

// statusResource is one primitive: top-level, a group member or a clone
// instance. Instances of anonymous clones are listed under the id of the
// resource they clone, as crm_mon does ("d", with Instance "d:0").
type statusResource struct {
	ID       string `json:"id"`
	Instance string `json:"instance,omitempty"`
	Agent    string `json:"agent"`
	// State is one of started, stopped, failed, promoted, unpromoted.
	State   string   `json:"state"`
	Role    string   `json:"role"`              // the scheduler's role: Started, Stopped, Promoted, ...
	Pending string   `json:"pending,omitempty"` // an action in flight: Starting, Stopping, ...
	Node    *string  `json:"node"`              // null when not active anywhere
	Nodes   []string `json:"nodes,omitempty"`   // only when active on several nodes
	Group   string   `json:"group,omitempty"`
	Clone   string   `json:"clone,omitempty"`
	Managed bool     `json:"managed"`
	Failed  bool     `json:"failed"`
}

// statusFailedOp is one failed operation of the CIB's history.
type statusFailedOp struct {
	Key          string     `json:"id"` // operation key: RSC_TASK_INTERVALMS
	Resource     string     `json:"resource"`
	Operation    string     `json:"operation"`
	IntervalMS   int        `json:"interval_ms"`
	Node         string     `json:"node"`
	RC           int        `json:"rc"`
	RCText       string     `json:"rc_text"`
	ExpectedRC   int        `json:"expected_rc"`
	Status       string     `json:"status"`
	ExitReason   string     `json:"exit_reason"`
	CallID       int        `json:"call_id"`
	LastRCChange *time.Time `json:"last_rc_change,omitempty"`
	QueueMS      int        `json:"queued_ms"`
	ExecMS       int        `json:"exec_ms"`
}

// writeCRMStatus renders `ringctl crm status` (like crm_mon -1) from the
// controller's status, the CIB and the fencing history.
func writeCRMStatus(w io.Writer, st wire.Status, c *cib.CIB, history []stonithd.Entry, now time.Time, asJSON bool) error {
	cs := &pengine.ClusterStatus{}
	if c != nil {
		var err error
		if cs, err = pengine.Status(c, now, pengine.StatusOptions{ShowPending: true}); err != nil {
			return fmt.Errorf("crm status: %w", err)
		}
	}
	failed := statusFailedOps(c, cs)
	if asJSON {
		// Compact: `crm status --watch --json` prints one document a line.
		return json.NewEncoder(w).Encode(statusDocument(st, c, cs, failed, history, now))
	}
	return writeStatusText(w, st, c, cs, failed, history, now)
}

func statusDocument(st wire.Status, c *cib.CIB, cs *pengine.ClusterStatus, failed []statusFailedOp, history []stonithd.Entry, now time.Time) crmStatusJSON {
	doc := crmStatusJSON{
		DCID: st.DCID, Quorate: st.Quorate, Version: statusVersion(st, c), Members: st.Members,
		LocalNode: st.Name, LocalNodeID: st.Node, Synced: st.Synced, Enabled: st.Enabled,
		Transition: st.Transition, PendingActions: st.Pending, MaintenanceMode: cs.MaintenanceMode,
		Nodes: []statusNode{}, Resources: []statusResource{}, FailedActions: failed, FencingHistory: history,
		Time: now, Instances: cs.Instances, Disabled: cs.Disabled, Blocked: cs.Blocked,
	}
	if st.DC != "" {
		dc := st.DC
		doc.DC = &dc
	}
	if doc.Members == nil {
		doc.Members = []uint32{}
	}
	if doc.FailedActions == nil {
		doc.FailedActions = []statusFailedOp{}
	}
	if doc.FencingHistory == nil {
		doc.FencingHistory = []stonithd.Entry{}
	}
	for _, n := range cs.Nodes {
		var id any = n.ID
		if v, err := strconv.ParseUint(n.ID, 10, 32); err == nil {
			id = v
		}
		doc.Nodes = append(doc.Nodes, statusNode{Name: n.Name, ID: id, State: statusNodeState(n), Text: n.State})
	}
	for _, p := range cs.Primitives() {
		doc.Resources = append(doc.Resources, statusResourceOf(p))
	}
	return doc
}

// statusNodeState maps a node onto the JSON vocabulary: what matters most first
// (an unclean node must be fenced, an offline one runs nothing).
func statusNodeState(n pengine.NodeStatus) string {
	switch {
	case n.Unclean:
		return "unclean"
	case n.Pending:
		return "pending"
	case !n.Online:
		return "offline"
	case n.Standby:
		return "standby"
	case n.Maintenance:
		return "maintenance"
	}
	return "online"
}

// statusResourceOf is the JSON of one primitive. Anonymous clone
// instances (and groups inside them) are shown by their configured id, the
// instance id going to "instance".
func statusResourceOf(p pengine.Primitive) statusResource {
	group := p.Group
	if p.Anonymous {
		group = statusInstanceBase(group)
	}
	sr := statusResource{ID: p.ID, Agent: p.Agent, State: p.Summary(), Role: p.Role, Pending: p.Pending,
		Group: group, Clone: p.Clone, Managed: p.Managed, Failed: p.Failed}
	if p.Clone != "" {
		sr.Instance = p.ID
		if p.Anonymous {
			sr.ID = statusInstanceBase(p.ID)
		}
	}
	if len(p.Nodes) > 0 && sr.State != "stopped" {
		n := p.Nodes[0]
		sr.Node = &n
	}
	if len(p.Nodes) > 1 {
		sr.Nodes = p.Nodes
	}
	return sr
}

// statusInstanceBase strips a clone instance number ("d:0" → "d").
func statusInstanceBase(id string) string {
	if i := strings.LastIndexByte(id, ':'); i > 0 {
		if _, err := strconv.Atoi(id[i+1:]); err == nil {
			return id[:i]
		}
	}
	return id
}

// statusVersion is admin_epoch.epoch.num_updates of the CIB shown, or the
// controller's when there is no CIB.
func statusVersion(st wire.Status, c *cib.CIB) string {
	if c == nil {
		return fmt.Sprintf("%d.%d.%d", st.Version.AdminEpoch, st.Version.Epoch, st.Version.NumUpdates)
	}
	part := func(name string) string {
		if v := c.Attrs.Value(name); v != "" {
			return v
		}
		return "0"
	}
	return part("admin_epoch") + "." + part("epoch") + "." + part("num_updates")
}

// Operation statuses (op-status) as crm_mon names them
// (pcmk_exec_status_str), indexed from -1 (pending).
var statusExecTexts = []string{"pending", "complete", "Cancelled", "Timed Out", "NOT SUPPORTED", "Error",
	"Hard error", "Fatal error", "Not installed", "Internal communication failure", "Cannot execute now",
	"No fence device", "CIB secrets unavailable"}

func statusExecText(s int) string {
	if s+1 >= 0 && s+1 < len(statusExecTexts) {
		return statusExecTexts[s+1]
	}
	return fmt.Sprintf("unknown (%d)", s)
}

// statusFailedOps lists the operations of the CIB's history whose result is not
// the expected one (or that did not complete), one per operation and
// node, on online nodes only (as crm_mon's "Failed Resource Actions").
// Probes that found the resource running or promoted are state discovery,
// not failures. Degraded counts as its healthy counterpart.
func statusFailedOps(c *cib.CIB, cs *pengine.ClusterStatus) []statusFailedOp {
	if c == nil || c.Status == nil {
		return nil
	}
	online := map[string]bool{}
	for _, n := range cs.Nodes {
		online[n.Name] = n.Online
	}
	var out []statusFailedOp
	seen := map[string]bool{}
	for _, ns := range c.Status.Nodes {
		node := ns.Uname()
		if !online[node] {
			continue
		}
		for _, lr := range ns.Resources {
			for _, op := range lr.Ops {
				f, ok := parseFailedOp(lr.ID(), node, op)
				if !ok || seen[node+"\x00"+f.Key] {
					continue
				}
				seen[node+"\x00"+f.Key] = true
				out = append(out, f)
			}
		}
	}
	return out
}

func parseFailedOp(rsc, node string, op *cib.LRMOp) (statusFailedOp, bool) {
	status, rc, target := op.OpStatus(), op.RC(), op.TargetRC()
	if status == -1 || status == 1 || op.CallID() < 0 { // pending or cancelled
		return statusFailedOp{}, false
	}
	healthy := rc
	switch lrmd.RC(rc) {
	case lrmd.RCDegraded:
		healthy = int(lrmd.RCOK)
	case lrmd.RCDegradedPromoted:
		healthy = int(lrmd.RCRunningPromoted)
	}
	probe := op.Task() == lrmd.ActionMonitor && op.IntervalMS() == 0
	if target < 0 {
		target = int(lrmd.RCOK)
	}
	switch {
	case status != 0:
	case probe && (healthy == int(lrmd.RCOK) || healthy == int(lrmd.RCNotRunning) || healthy == int(lrmd.RCRunningPromoted)):
		return statusFailedOp{}, false
	case healthy == target:
		return statusFailedOp{}, false
	}
	key := op.Attrs.Value("operation_key")
	if key == "" {
		key = fmt.Sprintf("%s_%s_%d", rsc, op.Task(), op.IntervalMS())
	}
	f := statusFailedOp{Key: key, Resource: rsc, Operation: op.Task(), IntervalMS: op.IntervalMS(), Node: node,
		RC: rc, RCText: lrmd.RC(rc).String(), ExpectedRC: target, Status: statusExecText(status),
		ExitReason: op.Attrs.Value("exit-reason"), CallID: op.CallID()}
	f.QueueMS, _ = strconv.Atoi(op.Attrs.Value("queue-time"))
	f.ExecMS, _ = strconv.Atoi(op.Attrs.Value("exec-time"))
	if t := op.LastRCChange(); t > 0 {
		tt := time.Unix(t, 0).UTC()
		f.LastRCChange = &tt
	}
	return f, true
}

// statusTime is how times are shown: in now's location, to the second.
func statusTime(t, now time.Time) string {
	return t.In(now.Location()).Format("2006-01-02 15:04:05Z07:00")
}

func writeStatusText(w io.Writer, st wire.Status, c *cib.CIB, cs *pengine.ClusterStatus, failed []statusFailedOp, history []stonithd.Entry, now time.Time) error {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("Cluster Summary:")
	switch {
	case !st.Enabled:
		line("  * Resource management is disabled on %s ([resources] enabled = false)", statusOrNone(st.Name))
	case st.DC == "":
		line("  * Current DC: NONE")
	case st.Quorate:
		line("  * Current DC: %s (%d) - partition with quorum", st.DC, st.DCID)
	default:
		line("  * Current DC: %s (%d) - partition WITHOUT quorum", st.DC, st.DCID)
	}
	line("  * Last updated: %s on %s", statusTime(now, now), statusOrNone(st.Name))
	change := "  * Last change:  "
	if c != nil && c.Attrs.Value("cib-last-written") != "" {
		change += c.Attrs.Value("cib-last-written")
		for _, x := range []struct{ word, attr string }{{"by", "update-user"}, {"via", "update-client"}, {"on", "update-origin"}} {
			if v := c.Attrs.Value(x.attr); v != "" {
				change += " " + x.word + " " + v
			}
		}
		change += ", "
	}
	line("%sversion %s", change, statusVersion(st, c))
	if st.Transition != 0 {
		line("  * Transition %d in progress (%d actions pending)", st.Transition, st.Pending)
	}
	line("  * %d nodes configured", len(cs.Nodes))
	var extra []string
	if cs.Disabled > 0 {
		extra = append(extra, fmt.Sprintf("%d DISABLED", cs.Disabled))
	}
	if cs.Blocked > 0 {
		extra = append(extra, fmt.Sprintf("%d BLOCKED from further action due to failure", cs.Blocked))
	}
	if len(extra) > 0 {
		line("  * %d resource instances configured (%s)", cs.Instances, strings.Join(extra, ", "))
	} else {
		line("  * %d resource instances configured", cs.Instances)
	}
	if cs.MaintenanceMode {
		line("")
		line("              *** Resource management is DISABLED ***")
		line("  The cluster will not attempt to start, stop or recover services")
	}
	line("")
	line("Node List:")
	if err := simulate.WriteNodeList(&b, "  ", cs); err != nil {
		return err
	}
	line("")
	line("Full List of Resources:")
	if err := simulate.WriteResourceList(&b, "  ", cs); err != nil {
		return err
	}
	if len(failed) > 0 {
		line("")
		line("Failed Resource Actions:")
		for _, f := range failed {
			changed := ""
			if f.LastRCChange != nil {
				changed = statusTime(*f.LastRCChange, now)
			}
			line("  * %s on %s '%s' (%d): call=%d, status='%s', exitreason='%s', last-rc-change='%s', queued=%dms, exec=%dms",
				f.Key, f.Node, f.RCText, f.RC, f.CallID, f.Status, f.ExitReason, changed, f.QueueMS, f.ExecMS)
		}
	}
	if len(history) > 0 {
		line("")
		line("Fencing History:")
		// Newest first, as crm_mon shows it (history is oldest first).
		hs := append([]stonithd.Entry(nil), history...)
		sort.SliceStable(hs, func(i, j int) bool { return hs[i].Time.After(hs[j].Time) })
		for _, e := range hs {
			line("  * %s", statusFenceText(e, now))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// statusFenceText is crm_mon's line for one fencing operation.
func statusFenceText(e stonithd.Entry, now time.Time) string {
	var fields []string
	add := func(name, v string) {
		if v != "" {
			fields = append(fields, name+"="+v)
		}
	}
	add("delegate", e.Executioner)
	add("client", e.Client)
	add("origin", e.Origin)
	if e.Result == stonithd.ResultSuccess {
		fields = append(fields, "completed='"+statusTime(e.Time, now)+"'")
		return fmt.Sprintf("%s of %s successful: %s", e.Action, e.Target, strings.Join(fields, ", "))
	}
	fields = append(fields, "last-failed='"+statusTime(e.Time, now)+"'")
	verdict := "failed"
	if e.Reason != "" {
		verdict += " (" + e.Reason + ")"
	}
	return fmt.Sprintf("%s of %s %s: %s", e.Action, e.Target, verdict, strings.Join(fields, ", "))
}

func statusOrNone(s string) string {
	if s == "" {
		return "NONE"
	}
	return s
}
