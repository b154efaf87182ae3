package metrics

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"ringmaster/crm/cib"
	"ringmaster/crm/controld"
	"ringmaster/crm/pengine"
	"ringmaster/internal/events"
)

// CRM is the resource manager as one scrape sees it: the controller's
// status and its CIB (an immutable snapshot), taken under the executive's
// lock. Everything else is derived from them at scrape time, outside it.
type CRM struct {
	Now    time.Time
	Status controld.Status
	// DC is the name of the partition's DC ("" while there is none or
	// the controller is still syncing).
	DC  string
	CIB *cib.CIB
	// ConfigSeen is when this ringd first saw the current configuration
	// version (admin_epoch, epoch): the CIB records no time of change.
	ConfigSeen time.Time
}

// Resource states of ringmaster_crm_resources{status}, as
// ha_cluster_pacemaker_resources has them.
var resourceStatuses = []string{"active", "orphaned", "blocked", "failed", "failure_ignored"}

// Node states of ringmaster_crm_nodes{status}, as ha_cluster_pacemaker_nodes
// has them.
var nodeStatuses = []string{"online", "standby", "standby_onfail", "maintenance", "pending", "unclean", "shutdown", "expected_up", "dc"}

// crmFamilies exports the resource manager: the controller's state, the
// configuration's version, and what pengine.Status makes of the CIB
// (nodes, resources by state and node, fail counts and migration
// thresholds, location constraints, node attributes), shaped as
// ha_cluster_exporter's ha_cluster_pacemaker_* families.
func crmFamilies(c *CRM, counter func(fq, help string, v uint64, labels ...string), gauge func(fq, help string, v float64, labels ...string)) {
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	st := c.Status
	gauge(name("crm", "synced"), "1 when the controller has synced with its partition.", b2f(st.Synced))
	gauge(name("crm", "is_dc"), "1 when this node is the DC (designated controller) of its partition.", b2f(st.DC != 0 && st.Synced && st.DC == st.Node))
	gauge(name("crm", "transition_id"), "The DC's running transition (0 when idle or not the DC).", float64(st.Transition))
	gauge(name("crm", "transition_pending_actions"), "Actions of the DC's running transition not yet completed.", float64(st.Pending))
	for _, v := range []struct {
		part string
		v    int64
	}{{"admin_epoch", st.Version.AdminEpoch}, {"epoch", st.Version.Epoch}, {"num_updates", st.Version.NumUpdates}} {
		gauge(name("crm", "config_version"), "Version of the CIB by part (admin_epoch, epoch, num_updates).", float64(v.v), "part", v.part)
	}
	if !c.ConfigSeen.IsZero() {
		gauge(name("crm", "config_last_change"), "Unix time at which this ringd first saw the current configuration (admin_epoch, epoch); as ha_cluster_pacemaker_config_last_change.",
			float64(c.ConfigSeen.Unix()))
	}
	if c.CIB == nil {
		return
	}
	cfg := c.CIB.Config
	if cfg == nil {
		cfg = &cib.Configuration{}
	}
	gauge(name("crm", "stonith_enabled"), "1 when fencing is enabled (stonith-enabled, default true).", b2f(stonithEnabled(cfg)))

	cs, err := pengine.Status(c.CIB, c.Now, pengine.StatusOptions{ShowPending: true})
	if err != nil {
		gauge(name("crm", "status_error"), "1 when the CIB could not be unpacked for the status families.", 1)
		return
	}
	gauge(name("crm", "status_error"), "1 when the CIB could not be unpacked for the status families.", 0)

	// --- nodes ---
	states := map[string]*cib.NodeState{}
	if c.CIB.Status != nil {
		for _, ns := range c.CIB.Status.Nodes {
			states[ns.Uname()] = ns
		}
	}
	for _, n := range cs.Nodes {
		ns := states[n.Name]
		onFail := strings.Contains(n.State, "on-fail")
		is := map[string]bool{
			"online": n.Online, "standby": n.Standby && !onFail, "standby_onfail": onFail, "maintenance": n.Maintenance,
			"pending": n.Pending, "unclean": n.Unclean, "dc": c.DC != "" && n.Name == c.DC,
		}
		if ns != nil {
			v, _ := ns.TransientAttr("shutdown")
			is["shutdown"] = v != "" && v != "0"
			is["expected_up"] = ns.Attrs.Value("expected") == "member"
		}
		for _, s := range nodeStatuses {
			gauge(name("crm", "nodes"), "Status of each node, one line per status: 1 when in it (as ha_cluster_pacemaker_nodes).", b2f(is[s]),
				"node", n.Name, "type", "member", "status", s)
		}
	}

	// --- resources ---
	for _, r := range cs.Primitives() {
		role := strings.ToLower(r.Role)
		if r.Pending != "" {
			role = strings.ToLower(r.Pending)
		}
		is := map[string]bool{
			"active":          len(r.Nodes) > 0,
			"orphaned":        strings.Contains(r.State, "ORPHANED"),
			"blocked":         strings.Contains(r.State, "blocked"),
			"failed":          r.Failed,
			"failure_ignored": strings.Contains(r.State, "failure ignored"),
		}
		nodes := r.Nodes
		if len(nodes) == 0 {
			nodes = []string{""}
		}
		for _, n := range nodes {
			for _, s := range resourceStatuses {
				gauge(name("crm", "resources"), "Status of each primitive on each node it is active on (node \"\" when on none), one line per status: 1 when in it (as ha_cluster_pacemaker_resources).",
					b2f(is[s]), "node", n, "resource", r.ID, "role", role, "managed", strconv.FormatBool(r.Managed), "status", s,
					"agent", r.Agent, "group", r.Group, "clone", r.Clone)
			}
		}
	}

	// --- fail counts and migration thresholds (crm_mon's node history) ---
	rscs := indexResources(cfg.Resources, nil, map[string][]*cib.Resource{})
	if c.CIB.Status != nil {
		for _, ns := range c.CIB.Status.Nodes {
			counts := failCounts(ns)
			ids := map[string]bool{}
			for _, r := range ns.Resources {
				ids[baseID(r.ID())] = true
			}
			for id := range counts {
				ids[id] = true
			}
			for _, id := range slices.Sorted(func(yield func(string) bool) {
				for k := range ids {
					if !yield(k) {
						return
					}
				}
			}) {
				gauge(name("crm", "fail_count"), "Fail count of a resource on a node (as ha_cluster_pacemaker_fail_count).", float64(counts[id]), "node", ns.Uname(), "resource", id)
				if chain, ok := rscs[id]; ok {
					gauge(name("crm", "migration_threshold"), "Failures of a resource on a node before it moves away (migration-threshold; 1000000 is INFINITY) (as ha_cluster_pacemaker_migration_threshold).",
						float64(migrationThreshold(chain, cfg.RscDefaults)), "node", ns.Uname(), "resource", id)
				}
			}
		}
	}

	// --- location constraints (the ones naming a node) ---
	for _, l := range cfg.Locations {
		if l.Node == "" {
			continue
		}
		gauge(name("crm", "location_constraints"), "Score of each location constraint naming a node (±Inf for ±INFINITY) (as ha_cluster_pacemaker_location_constraints).",
			scoreFloat(l.Score), "constraint", l.ID, "node", l.Node, "resource", l.Rsc, "role", l.Role)
	}

	// --- node attributes: configured ones without rules, then transient ---
	attrs := map[[2]string]string{}
	for _, n := range cfg.Nodes {
		for _, set := range n.Attrs {
			if set.Kind != "instance_attributes" || set.Rule != nil {
				continue
			}
			for _, p := range set.Pairs {
				if p.HasValue {
					attrs[[2]string{n.Uname, p.Name}] = p.Value
				}
			}
		}
	}
	if c.CIB.Status != nil {
		for _, ns := range c.CIB.Status.Nodes {
			for _, set := range ns.Transient {
				for _, p := range set.Pairs {
					if p.HasValue && !strings.HasPrefix(p.Name, "fail-count-") && !strings.HasPrefix(p.Name, "last-failure-") && !strings.HasPrefix(p.Name, "#") {
						attrs[[2]string{ns.Uname(), p.Name}] = p.Value
					}
				}
			}
		}
	}
	for _, k := range slices.SortedFunc(func(yield func([2]string) bool) {
		for k := range attrs {
			if !yield(k) {
				return
			}
		}
	}, func(a, b [2]string) int { return strings.Compare(a[0]+"\x00"+a[1], b[0]+"\x00"+b[1]) }) {
		gauge(name("crm", "node_attributes"), "Node attributes, value 1 (as ha_cluster_pacemaker_node_attributes).", 1, "node", k[0], "name", k[1], "value", attrs[k])
	}
}

// stonithEnabled reads stonith-enabled from crm_config (Pacemaker's
// default: true).
func stonithEnabled(cfg *cib.Configuration) bool {
	if v, ok := metaValue(cfg.CrmConfig, "stonith-enabled"); ok {
		b, ok := cib.ParseBool(v)
		return !ok || b
	}
	return true
}

// metaValue is the value of name in the first set without a rule that has
// it (sets with rules depend on the node and the time: left out).
func metaValue(sets []*cib.NVSet, name string) (string, bool) {
	for _, s := range sets {
		if s.Rule != nil {
			continue
		}
		for _, p := range s.Pairs {
			if p.Name == name && p.HasValue {
				return p.Value, true
			}
		}
	}
	return "", false
}

// indexResources maps every resource id to its chain of resources, itself
// first, then its parents (group, clone): meta attributes are inherited.
func indexResources(rs []*cib.Resource, parents []*cib.Resource, out map[string][]*cib.Resource) map[string][]*cib.Resource {
	for _, r := range rs {
		chain := append([]*cib.Resource{r}, parents...)
		out[r.ID] = chain
		indexResources(r.Children, chain, out)
	}
	return out
}

// migrationThreshold is the resource's migration-threshold: its own meta
// attribute or an ancestor's, else rsc_defaults, else INFINITY; negative
// values count as 1, as the scheduler reads them.
func migrationThreshold(chain []*cib.Resource, defaults []*cib.NVSet) int {
	v, ok := "", false
	for _, r := range chain {
		if v, ok = metaValue(r.Meta, "migration-threshold"); ok && !strings.EqualFold(v, "default") {
			break
		}
		ok = false
	}
	if !ok {
		v, ok = metaValue(defaults, "migration-threshold")
	}
	if !ok {
		return pengine.Infinity
	}
	if t := pengine.ParseScore(v); t >= 0 {
		return t
	}
	return 1
}

// failCounts sums a node's fail-count-RSC#OP_INTERVAL attributes (and the
// pre-3.0.13 fail-count-RSC) by resource; clone instances count under
// the clone's primitive, as the scheduler keeps them.
func failCounts(ns *cib.NodeState) map[string]int {
	out := map[string]int{}
	for _, set := range ns.Transient {
		for _, p := range set.Pairs {
			rest, ok := strings.CutPrefix(p.Name, "fail-count-")
			if !ok || !p.HasValue {
				continue
			}
			if i := strings.LastIndexByte(rest, '#'); i > 0 {
				rest = rest[:i]
			}
			id := baseID(rest)
			out[id] = pengine.AddScores(out[id], pengine.ParseScore(p.Value))
		}
	}
	return out
}

// baseID strips a clone instance number ("rsc:1" → "rsc").
func baseID(id string) string {
	if i := strings.LastIndexByte(id, ':'); i > 0 {
		if _, err := strconv.Atoi(id[i+1:]); err == nil {
			return id[:i]
		}
	}
	return id
}

// scoreFloat is a score as a float: ±INFINITY become ±Inf.
func scoreFloat(s string) float64 {
	switch v := pengine.ParseScore(s); {
	case v >= pengine.Infinity:
		return math.Inf(1)
	case v <= -pengine.Infinity:
		return math.Inf(-1)
	default:
		return float64(v)
	}
}

// Activity counts what the event log records of the resource manager and
// fencing: transitions, operation results and their duration, fencing
// results, and every event by kind. Safe from any goroutine (it is the
// event log's OnRecord); register it as a collector.
type Activity struct {
	events      *prometheus.CounterVec
	transitions prometheus.Counter
	ops         *prometheus.CounterVec
	opTime      *prometheus.HistogramVec
	fencing     *prometheus.CounterVec
}

// NewActivity returns the counters, all at zero.
func NewActivity() *Activity {
	a := &Activity{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "events_total",
			Help: "Events recorded in the event log (ringctl events), by kind."}, []string{"kind"}),
		transitions: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "crm", Name: "transitions_total",
			Help: "Transitions with actions this node started as the DC."}),
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "crm", Name: "operations_total",
			Help: "Resource operations on this node that failed or changed a resource's state (successful monitors and probes are not counted), by operation and result."},
			[]string{"operation", "result"}),
		opTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "crm", Name: "operation_duration_seconds",
			Help:    "Duration of the operations counted by crm_operations_total, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"operation"}),
		fencing: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "fencing_total",
			Help: "Fencing operations recorded by this node's fencer, by action and result."}, []string{"action", "result"}),
	}
	for _, k := range []events.Kind{events.Membership, events.Quorum, events.CPGJoin, events.CPGLeave, events.ConfigReload,
		events.Daemon, events.CRM, events.Resource, events.Fencing} {
		a.events.WithLabelValues(string(k))
	}
	return a
}

// Observe counts one event.
func (a *Activity) Observe(e events.Event) {
	a.events.WithLabelValues(string(e.Kind)).Inc()
	str := func(k string) string { s, _ := e.Fields[k].(string); return s }
	switch e.Kind {
	case events.CRM:
		// "transition N started (reason)", recorded when it has actions.
		if strings.HasPrefix(e.Message, "transition ") && strings.Contains(e.Message, " started") {
			a.transitions.Inc()
		}
	case events.Resource:
		op, result := str("operation"), str("result")
		if op == "" {
			return
		}
		a.ops.WithLabelValues(op, result).Inc()
		var ms float64
		switch v := e.Fields["ms"].(type) {
		case int64:
			ms = float64(v)
		case int:
			ms = float64(v)
		case float64:
			ms = v
		default:
			return
		}
		a.opTime.WithLabelValues(op).Observe(ms / 1000)
	case events.Fencing:
		// The fencer's own records carry the action; the controller's
		// view of the same attempt ("node fenced") does not.
		action := str("action")
		if action == "" {
			return
		}
		result := "failed"
		if strings.Contains(e.Message, "succeeded") {
			result = "succeeded"
		}
		a.fencing.WithLabelValues(action, result).Inc()
	}
}

// Describe implements prometheus.Collector.
func (a *Activity) Describe(ch chan<- *prometheus.Desc) {
	a.events.Describe(ch)
	a.transitions.Describe(ch)
	a.ops.Describe(ch)
	a.opTime.Describe(ch)
	a.fencing.Describe(ch)
}

// Collect implements prometheus.Collector.
func (a *Activity) Collect(ch chan<- prometheus.Metric) {
	a.events.Collect(ch)
	a.transitions.Collect(ch)
	a.ops.Collect(ch)
	a.opTime.Collect(ch)
	a.fencing.Collect(ch)
}
