package pengine

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"ringmaster/crm/cib"
)

// ErrConfig wraps configuration problems found while unpacking (for example
// a constraint that names a resource that does not exist).
var ErrConfig = errors.New("pengine: configuration error")

type noQuorumPolicy int

const (
	noQuorumStop noQuorumPolicy = iota
	noQuorumFreeze
	noQuorumIgnore
	noQuorumSuicide
	noQuorumDemote
)

// scheduler is Pacemaker's working set for one run. It is created, used and
// dropped by a single call; nothing in it is shared.
type scheduler struct {
	in   *cib.CIB
	now  int64
	opts Options

	config                                         map[string]string
	haveQuorum, symmetric, stonithEnabled          bool
	haveStonithResource, maintenanceMode           bool
	stopOrphans, stopActionOrphans, stopAll        bool
	startFailureFatal, startupFencing, probes      bool
	concurrentFencing, managedDefault, removeAfter bool
	noQuorum                                       noQuorumPolicy
	stonithAction                                  string
	placement                                      string
	dcUUID                                         string
	legacyFailcounts                               bool

	nodes      []*node
	nodeByName map[string]*node
	nodeByID   map[string]*node

	resources []*resource // top-level, sorted by priority (stable)
	byID      map[string]*resource

	actions    []*action
	singletons map[string]*action
	actionID   int

	orderings   []*ordering
	orderID     int
	colocations []*colocation
	// byHistoryName indexes primitives by id and history name
	// (rscsMatchingID).
	byHistoryName map[string][]*resource
	locations     []*locationConstraint

	ninstances, disabled, blocked int
	failedProbes                  []failedProbe
	// failedSeen dedups recorded failures by operation key and node.
	failedSeen map[string]bool
	// digestCache is Pacemaker's per-node digest cache (see digestCompare).
	digestCache map[string]*digestEntry
	// restartDigests marks history entries whose expired failure must
	// reschedule the recurring monitor (Pacemaker edits its CIB copy).
	restartDigests map[*cib.LRMOp]string

	scores  []ScoreLine
	explain *explainer
	warn    []string
}

func (s *scheduler) cfg() *cib.Configuration { return s.in.Config }

func (s *scheduler) warnf(format string, args ...any) {
	s.warn = append(s.warn, fmt.Sprintf(format, args...))
}

// clusterOptionDefaults are the cluster options whose defaults matter for
// scheduling (see Pacemaker's pe_opts); each comment says why the default
// is what it is.
var clusterOptionDefaults = [][2]string{
	{"stonith-enabled", "true"},        // safety first: unclean nodes are fenced
	{"symmetric-cluster", "true"},      // resources may run anywhere unless told otherwise
	{"no-quorum-policy", "stop"},       // a partition without quorum stops its resources
	{"stop-orphan-resources", "true"},  // resources deleted from the config are stopped
	{"stop-orphan-actions", "true"},    // recurring ops deleted from the config are cancelled
	{"start-failure-is-fatal", "true"}, // a failed start bans the node via fail count
	{"maintenance-mode", "false"},
	{"stop-all-resources", "false"},
	{"stonith-action", "reboot"},
	{"startup-fencing", "true"}, // nodes never seen are assumed unclean
	{"enable-startup-probes", "true"},
	{"concurrent-fencing", "false"},
	{"placement-strategy", "default"},
	{"is-managed-default", "true"},
	{"node-health-strategy", "none"},
	{"shutdown-lock", "false"},
}

func (s *scheduler) unpackConfig() error {
	s.config = map[string]string{}
	s.evalNVSets(s.cfg().CrmConfig, "cib-bootstrap-options", nil, s.config, false)
	for _, d := range clusterOptionDefaults {
		if _, ok := s.config[d[0]]; !ok {
			s.config[d[0]] = d[1]
		}
	}
	b := func(name string) bool { return cib.IsTrue(s.config[name]) }
	s.haveQuorum = cib.IsTrue(s.in.Attrs.Value("have-quorum"))
	s.probes = b("enable-startup-probes")
	if b("have-watchdog") {
		s.haveStonithResource = true
	}
	s.stonithEnabled = b("stonith-enabled")
	s.stonithAction = s.config["stonith-action"]
	if s.stonithAction == "poweroff" {
		s.stonithAction = "off"
	}
	s.concurrentFencing = b("concurrent-fencing")
	s.stopAll = b("stop-all-resources")
	s.symmetric = b("symmetric-cluster")
	switch lower(s.config["no-quorum-policy"]) {
	case "ignore":
		s.noQuorum = noQuorumIgnore
	case "freeze":
		s.noQuorum = noQuorumFreeze
	case "demote":
		s.noQuorum = noQuorumDemote
	case "suicide":
		doPanic, _ := strconv.Atoi(s.in.Attrs.Value("no-quorum-panic"))
		if s.stonithEnabled && (doPanic != 0 || s.haveQuorum) {
			s.noQuorum = noQuorumSuicide
		} else {
			s.noQuorum = noQuorumStop
		}
	default:
		s.noQuorum = noQuorumStop
	}
	s.stopOrphans = b("stop-orphan-resources")
	s.stopActionOrphans = b("stop-orphan-actions")
	s.removeAfter = b("remove-after-stop")
	s.maintenanceMode = b("maintenance-mode")
	s.managedDefault = b("is-managed-default") && !s.maintenanceMode
	s.startFailureFatal = b("start-failure-is-fatal")
	if s.stonithEnabled {
		s.startupFencing = b("startup-fencing")
	}
	s.placement = lower(s.config["placement-strategy"])
	if s.placement != "default" {
		return fmt.Errorf("%w: placement-strategy=%s (only \"default\" is implemented)", cib.ErrUnsupported, s.placement)
	}
	if v := lower(s.config["node-health-strategy"]); v != "none" && v != "" {
		return fmt.Errorf("%w: node-health-strategy=%s", cib.ErrUnsupported, v)
	}
	if b("shutdown-lock") {
		return fmt.Errorf("%w: shutdown-lock=true", cib.ErrUnsupported)
	}
	s.dcUUID = s.in.Attrs.Value("dc-uuid")
	s.legacyFailcounts = compareVersion(s.in.Attrs.Value("crm_feature_set"), "3.0.13") < 0
	return nil
}

// compareVersion compares dotted version strings numerically.
func compareVersion(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// evalNVSets is pe__unpack_dataset_nvpairs: sets are visited with the
// always-first id leading, then by descending score (ties in reverse
// document order, as Pacemaker's prepend-then-stable-sort produces); a set
// whose rule fails is skipped; "#default" removes a value.
func (s *scheduler) evalNVSets(sets []*cib.NVSet, first string, nodeAttrs map[string]string, into map[string]string, overwrite bool) {
	if len(sets) == 0 {
		return
	}
	ordered := make([]*cib.NVSet, 0, len(sets))
	for i := len(sets) - 1; i >= 0; i-- {
		ordered = append(ordered, sets[i])
	}
	sort.SliceStable(ordered, func(i, j int) bool {
		a, b := ordered[i], ordered[j]
		if first != "" && strings.EqualFold(a.ID, first) {
			return !strings.EqualFold(b.ID, first)
		}
		if first != "" && strings.EqualFold(b.ID, first) {
			return false
		}
		return ParseScore(a.Score) > ParseScore(b.Score)
	})
	for _, set := range ordered {
		if set.Rule != nil && !evalRule(set.Rule, nodeAttrs) {
			continue
		}
		for _, p := range set.Pairs {
			if !p.HasValue {
				continue
			}
			_, exists := into[p.Name]
			if strings.EqualFold(p.Value, "#default") {
				delete(into, p.Name)
				continue
			}
			if !exists || overwrite {
				into[p.Name] = p.Value
			}
		}
	}
}

func (s *scheduler) unpackNodes() error {
	for _, cn := range s.cfg().Nodes {
		if s.nodeByName[lower(cn.Uname)] != nil {
			s.warnf("more than one node entry has name %q", cn.Uname)
			continue
		}
		n := &node{id: cn.ID, name: cn.Uname, weight: ParseScore(cn.Score), attrs: map[string]string{}}
		n.attrs["#kind"] = "cluster"
		if s.startupFencing {
			n.unclean = true
		}
		n.unseen = true
		s.nodes = append(s.nodes, n)
		s.nodeByName[lower(cn.Uname)] = n
		s.nodeByID[cn.ID] = n
	}
	sort.SliceStable(s.nodes, func(i, j int) bool { return numericLess(s.nodes[i].name, s.nodes[j].name) })
	for i, n := range s.nodes {
		n.idx = i
	}
	for _, cn := range s.cfg().Nodes {
		n := s.nodeByID[cn.ID]
		if n == nil || n.name != cn.Uname {
			continue
		}
		s.addNodeAttrs(n, cn.Attrs, false)
	}
	return nil
}

// addNodeAttrs is add_node_attrs: built-in attributes plus the given sets.
func (s *scheduler) addNodeAttrs(n *node, sets []*cib.NVSet, overwrite bool) {
	n.attrs["#uname"] = n.name
	n.attrs["#id"] = n.id
	if n.id == s.dcUUID {
		n.isDC = true
		n.attrs["#is_dc"] = "true"
	} else {
		n.attrs["#is_dc"] = "false"
	}
	if cn, ok := s.config["cluster-name"]; ok {
		n.attrs["#cluster-name"] = cn
	}
	s.evalNVSets(sets, "", nil, n.attrs, overwrite)
	if _, ok := n.attrs["#site-name"]; !ok {
		if sn, ok := n.attrs["site-name"]; ok {
			n.attrs["#site-name"] = sn
		} else if cn, ok := s.config["cluster-name"]; ok {
			n.attrs["#site-name"] = cn
		}
	}
}

// numericLess is pcmk__numeric_strcasecmp ordering: case-insensitive, with
// runs of digits compared by value, so node2 sorts before node10.
func numericLess(a, b string) bool { return numericCompare(a, b) < 0 }

func numericCompare(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		ca, cb := a[i], b[j]
		if isDigit(ca) && isDigit(cb) {
			si := i
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			sj := j
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			na := strings.TrimLeft(a[si:i], "0")
			nb := strings.TrimLeft(b[sj:j], "0")
			if len(na) != len(nb) {
				if len(na) < len(nb) {
					return -1
				}
				return 1
			}
			if na != nb {
				if na < nb {
					return -1
				}
				return 1
			}
			continue
		}
		la, lb := toLower(ca), toLower(cb)
		if la != lb {
			if la < lb {
				return -1
			}
			return 1
		}
		i++
		j++
	}
	switch {
	case i < len(a):
		return 1
	case j < len(b):
		return -1
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func toLower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 32
	}
	return c
}

func (s *scheduler) unpackResources() error {
	for _, cr := range s.cfg().Resources {
		r, err := s.unpackResource(cr, nil)
		if err != nil {
			return err
		}
		s.resources = append(s.resources, r)
	}
	// pe__cmp_rsc_priority: highest priority first, stable.
	sort.SliceStable(s.resources, func(i, j int) bool { return s.resources[i].priority > s.resources[j].priority })
	if s.stonithEnabled && !s.haveStonithResource {
		s.warnf("resource start-up disabled since no STONITH resources have been defined")
	}
	return nil
}

func (s *scheduler) unpackResource(cr *cib.Resource, parent *resource) (*resource, error) {
	r := &resource{
		id:          cr.ID,
		cfg:         cr,
		isGroup:     cr.IsGroup(),
		parent:      parent,
		meta:        map[string]string{},
		params:      map[string]string{},
		ops:         cr.Ops,
		role:        RoleStopped,
		nextRole:    RoleUnknown,
		knownOn:     make([]bool, len(s.nodes)),
		allowed:     newScoreTable(len(s.nodes)),
		history:     map[int]*cib.LRMResource{},
		failedProbe: map[int]int{},
	}
	if s.byID[r.id] != nil {
		return nil, fmt.Errorf("%w: duplicate resource id %q", ErrConfig, r.id)
	}
	s.byID[r.id] = r
	// get_meta_attributes: XML attributes, own sets, parent's meta, defaults.
	for _, kv := range [][2]string{{"id", cr.ID}, {"class", cr.Class}, {"provider", cr.Provider}, {"type", cr.Type}, {"description", cr.Description}} {
		if kv[1] != "" {
			r.meta[kv[0]] = kv[1]
		}
	}
	s.evalNVSets(cr.Meta, "", nil, r.meta, false)
	if parent != nil {
		for k, v := range parent.meta {
			if _, ok := r.meta[k]; !ok {
				r.meta[k] = v
			}
		}
	}
	s.evalNVSets(s.cfg().RscDefaults, "", nil, r.meta, false)
	r.params = s.rscParams(r, nil)

	r.set(rscProvisional)
	if !s.maintenanceMode && s.managedDefault {
		r.set(rscManaged)
	}
	r.recovery = recoveryStopStart
	r.migrationThreshold = Infinity
	r.priority = ParseScore(r.meta["priority"])
	if v, ok := r.meta["critical"]; !ok || cib.IsTrue(v) {
		r.set(rscCritical)
	}
	if v, ok := r.meta["is-managed"]; ok && !strings.EqualFold(v, "default") {
		if cib.IsTrue(v) {
			r.set(rscManaged)
		} else {
			r.clear(rscManaged)
		}
	}
	if cib.IsTrue(r.meta["maintenance"]) || s.maintenanceMode {
		r.clear(rscManaged)
		r.set(rscMaintenance)
	}
	switch lower(r.meta["multiple-active"]) {
	case "stop_only":
		r.recovery = recoveryStopOnly
	case "block":
		r.recovery = recoveryBlock
	case "stop_unexpected":
		r.recovery = recoveryStopUnexpected
	}
	if v, ok := r.meta["resource-stickiness"]; ok && !strings.EqualFold(v, "default") {
		r.stickiness = ParseScore(v)
	}
	if v, ok := r.meta["migration-threshold"]; ok && !strings.EqualFold(v, "default") {
		r.migrationThreshold = ParseScore(v)
		if r.migrationThreshold < 0 {
			r.migrationThreshold = 1
		}
	}
	if cr.IsFenceDevice() {
		s.haveStonithResource = true
		r.set(rscFenceDevice)
		if strings.EqualFold(r.meta["provides"], "unfencing") {
			return nil, fmt.Errorf("%w: <primitive id=%q> provides unfencing (unfencing is not implemented)", cib.ErrUnsupported, r.id)
		}
	}
	if strings.EqualFold(r.meta["requires"], "unfencing") && !r.has(rscFenceDevice) && s.stonithEnabled {
		return nil, fmt.Errorf("%w: <primitive id=%q> requires unfencing (unfencing is not implemented)", cib.ErrUnsupported, r.id)
	}
	s.unpackRequires(r, r.meta["requires"])
	if v, ok := r.meta["failure-timeout"]; ok {
		r.failureTimeout = int(parseInterval(v) / 1000)
	}
	if v, ok := r.meta["target-role"]; ok {
		if role, ok := targetRole(v, inPromotable(r)); ok {
			r.nextRole = role
		}
	}
	if r.isGroup {
		r.groupOrdered = true
		r.groupColocated = true
		if v, ok := r.meta["ordered"]; ok {
			r.groupOrdered = cib.IsTrue(v)
		}
		if v, ok := r.meta["collocated"]; ok {
			r.groupColocated = cib.IsTrue(v)
		}
		if cib.IsTrue(r.meta["promotable"]) && (parent == nil || !parent.isClone) {
			return nil, fmt.Errorf("%w: promotable group %q", cib.ErrUnsupported, r.id)
		}
		for _, cc := range cr.Children {
			child, err := s.unpackResource(cc, r)
			if err != nil {
				return nil, err
			}
			r.children = append(r.children, child)
		}
	}
	if cr.IsClone() {
		if err := s.unpackClone(r, cr); err != nil {
			return nil, err
		}
	}
	if s.symmetric {
		s.resourceLocation(r, nil, 0, "symmetric_default")
	}
	return r, nil
}

// targetRole is get_target_role: "Started" (or unset) means "no explicit
// role"; roles above Started only make sense inside a promotable clone,
// where Unpromoted keeps the instances from being promoted and Promoted is
// what would happen anyway (so it is no explicit role either).
func targetRole(v string, promotable bool) (Role, bool) {
	if v == "" || strings.EqualFold(v, "started") || strings.EqualFold(v, "default") {
		return RoleUnknown, false
	}
	role := parseRole(v)
	if role == RoleUnknown || role > RoleStarted && !(promotable && role == RoleUnpromoted) {
		return RoleUnknown, false
	}
	return role, true
}

// inPromotable tells whether r is a promotable clone's instance (or a
// member of one). The clone itself does not count: like Pacemaker, whose
// promotable flag is set after the clone's own target-role is read.
func inPromotable(r *resource) bool {
	t := r.top()
	return t != r && t.isClone && t.clone != nil && t.clone.promotable
}

func (s *scheduler) unpackRequires(r *resource, value string) {
	switch lower(value) {
	case "nothing":
		return
	case "quorum":
		r.set(rscNeedsQuorum)
		return
	case "fencing":
		r.set(rscNeedsFencing)
		return
	case "unfencing":
		if r.has(rscFenceDevice) || !s.stonithEnabled {
			r.set(rscNeedsQuorum)
			return
		}
		r.set(rscNeedsFencing)
		return
	}
	switch {
	case r.has(rscFenceDevice):
		r.set(rscNeedsQuorum)
	case s.stonithEnabled:
		r.set(rscNeedsFencing)
	case s.noQuorum == noQuorumIgnore:
	default:
		r.set(rscNeedsQuorum)
	}
}

// rscParams is pe_rsc_params: the resource's instance attributes (then its
// parents'), evaluated for a node (rules may depend on node attributes).
func (s *scheduler) rscParams(r *resource, n *node) map[string]string {
	out := map[string]string{}
	var attrs map[string]string
	if n != nil {
		attrs = n.attrs
	}
	for x := r; x != nil; x = x.parent {
		s.evalNVSets(x.cfg.Instance, "", attrs, out, false)
	}
	return out
}

// resourceLocation is resource_location: add score on node (or on every
// node when n is nil) to the resource and all its children.
func (s *scheduler) resourceLocation(r *resource, n *node, score int, tag string) {
	if n != nil {
		s.resourceNodeScore(r, n, score, tag)
	} else {
		for _, x := range s.nodes {
			s.resourceNodeScore(r, x, score, tag)
		}
	}
	if n == nil && score <= -Infinity && r.allocatedTo != nil {
		r.allocatedTo = nil
	}
}

func (s *scheduler) resourceNodeScore(r *resource, n *node, score int, tag string) {
	if tag == "symmetric_default" && (r.has(rscExclusiveDiscover) || r.allowed.discover[n.idx] == discoverNever) {
		return
	}
	for _, c := range r.children {
		s.resourceNodeScore(c, n, score, tag)
	}
	if !r.allowed.has[n.idx] {
		r.allowed.has[n.idx] = true
		r.allowed.w[n.idx] = n.weight
	}
	r.allowed.w[n.idx] = AddScores(r.allowed.w[n.idx], score)
	s.explainScore(r, n, score, tag)
}
