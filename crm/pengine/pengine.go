// Package pengine is ringmaster's policy engine: a pure function from a CIB
// (configuration plus recorded status) and the current time to a transition
// graph, mirroring the decisions of Pacemaker's scheduler (version 2.1.5)
// for primitives, groups, clones and promotable clones.
//
// The pipeline follows Pacemaker's: unpack the configuration and status
// (which resource is where, what failed), apply constraints (location
// rules, stickiness, fail-count bans), assign resources to nodes (in
// priority then configuration order, pulling colocated resources' scores
// in), create actions (stops, starts, probes, recurring monitors, fencing,
// shutdowns), link them with orderings and propagate "required" and
// "runnable" along the links, and finally emit the graph.
//
// Schedule never reads the clock, touches files or starts goroutines; time
// is an input, so every decision can be replayed from a saved CIB.
//
// Deterministic tie-breaks (each documented where it is made):
//   - nodes are listed by name (natural order: node2 before node10);
//   - resources are assigned by priority, then configuration order;
//   - between equally scored nodes: fewer assigned resources, then the
//     node the resource is active on, then the name that sorts first;
//   - a resource's colocations are applied in order of the other
//     resource's priority, then its id (byte order: r10 before r7);
//   - attribute sets are applied by score, then reverse document order.
package pengine

import (
	"fmt"
	"time"

	"ringmaster/crm/cib"
	"ringmaster/crm/graph"
)

// Options select optional outputs.
type Options struct {
	// ShowScores records the allocation scores (crm_simulate -s).
	ShowScores bool
	// Explain names a resource whose score contributions and actions are
	// to be explained.
	Explain string
}

// ScoreLine is one allocation score as crm_simulate -s prints it.
type ScoreLine struct {
	Func     string
	Resource string
	Node     string
	Score    int
}

func (l ScoreLine) String() string {
	return fmt.Sprintf("%s: %s allocation score on %s: %s", l.Func, l.Resource, l.Node, FormatScore(l.Score))
}

// Change is one line of the transition summary.
type Change struct {
	// Verb is Start, Stop, Move, Recover, Restart, Reload, Promote, Demote,
	// Re-promote, Migrate, or Fence.
	Verb     string
	Resource string
	From, To string
	Node     string // for Fence
	Action   string // fencing action, for Fence
	Reason   string
	Blocked  bool
	// Text is the line as crm_simulate prints it (without the "  * ").
	Text string

	details string
}

// Result is the outcome of one scheduling run.
type Result struct {
	Graph    *graph.Graph
	Scores   []ScoreLine
	Summary  []Change
	Explain  []string
	Warnings []string
}

// Schedule computes the transition for a CIB at time now.
func Schedule(in *cib.CIB, now time.Time, opts Options) (*Result, error) {
	s, err := unpack(in, now, opts)
	if err != nil {
		return nil, err
	}
	if err := s.run(); err != nil {
		return nil, err
	}
	res := &Result{
		Graph:    s.buildGraph(),
		Scores:   s.scores,
		Summary:  s.summary(),
		Warnings: s.warn,
	}
	if s.explain != nil {
		res.Explain = s.explainReport()
	}
	return res, nil
}

// unpack builds the working set: configuration, nodes, resources and
// status (Pacemaker's cluster_status).
func unpack(in *cib.CIB, now time.Time, opts Options) (*scheduler, error) {
	if in == nil || in.Config == nil {
		return nil, fmt.Errorf("%w: no configuration", cib.ErrInvalid)
	}
	s := &scheduler{
		in:         in,
		now:        now.Unix(),
		opts:       opts,
		nodeByName: map[string]*node{},
		nodeByID:   map[string]*node{},
		byID:       map[string]*resource{},
		singletons: map[string]*action{},
		// Pacemaker numbers actions from 1, so graphs (-G) and "Pretending
		// action N failed" lines use the same ids.
		actionID: 1,
	}
	if opts.Explain != "" {
		s.explain = &explainer{rsc: opts.Explain}
	}
	if err := s.unpackConfig(); err != nil {
		return nil, err
	}
	if err := s.unpackNodes(); err != nil {
		return nil, err
	}
	if err := s.unpackResources(); err != nil {
		return nil, err
	}
	if s.explain != nil && s.byID[opts.Explain] == nil {
		return nil, fmt.Errorf("%w: no resource %q to explain", ErrConfig, opts.Explain)
	}
	if in.Status != nil {
		s.unpackStatus()
	}
	for _, r := range s.resources {
		s.count(r)
	}
	return s, nil
}

func (s *scheduler) count(r *resource) {
	if r.collective() {
		for _, c := range r.children {
			s.count(c)
		}
		return
	}
	if r.has(rscOrphan) && r.role <= RoleStopped {
		return
	}
	s.ninstances++
	if isDisabled(r) {
		s.disabled++
	}
	if r.has(rscBlock) {
		s.blocked++
	}
}

// isDisabled is pe__resource_is_disabled: target-role Stopped, or
// Unpromoted within a promotable clone (the clone included).
func isDisabled(r *resource) bool {
	v, ok := r.meta["target-role"]
	if !ok {
		return false
	}
	switch parseRole(v) {
	case RoleStopped:
		return true
	case RoleUnpromoted:
		t := r.top()
		return t.isClone && t.clone != nil && t.clone.promotable
	}
	return false
}

// run is pcmk__schedule_actions after unpacking.
func (s *scheduler) run() error {
	if err := s.unpackConstraints(); err != nil {
		return err
	}
	// apply_node_criteria
	s.applyLocations()
	for _, r := range s.resources {
		s.applyStickiness(r)
	}
	for _, n := range s.nodes {
		for _, r := range s.resources {
			s.checkFailureThreshold(r, n)
			s.applyExclusiveDiscovery(r, n)
		}
	}
	for _, r := range s.resources {
		s.internalConstraints(r)
	}
	s.handleConfigChanges()
	for _, r := range s.resources {
		s.assign(r, nil)
	}
	// schedule_resource_actions
	if s.probes {
		s.scheduleProbes()
	}
	if s.stopOrphans {
		for _, r := range s.resources {
			s.clearFailcountsIfOrphaned(r)
		}
	}
	for _, r := range s.resources {
		s.createActions(r)
	}
	s.scheduleFencingAndShutdowns()
	s.applyOrderings()
	s.createNotifications()
	return s.checkMigrations()
}

// checkMigrations refuses a transition in which Pacemaker would move a
// resource by live migration (allow-migrate, on primitives and group
// members), which is not implemented: a stop/start there would be a
// silently different answer. It runs once actions and orderings are known,
// because a move whose start cannot run is a plain stop in Pacemaker too.
func (s *scheduler) checkMigrations() error {
	var check func(r *resource) error
	check = func(r *resource) error {
		if r.collective() {
			for _, c := range r.children {
				if err := check(c); err != nil {
					return err
				}
			}
			return nil
		}
		// pcmk__rsc_can_migrate
		if !cib.IsTrue(r.meta["allow-migrate"]) || !r.has(rscManaged) || r.has(rscFailed) || r.has(rscStartPending) {
			return nil
		}
		if len(r.runningOn) != 1 || r.allocatedTo == nil || r.nextRole < RoleStarted {
			return nil
		}
		cur := r.runningOn[0]
		if cur == r.allocatedTo || !cur.online || cur.unclean {
			return nil
		}
		for _, a := range resourceActions(r, r.allocatedTo, taskStart, true) {
			if a.has(actRunnable) && !a.has(actOptional) {
				return fmt.Errorf("%w: %s would be live-migrated from %s to %s (allow-migrate)", cib.ErrUnsupported, r.id, cur.name, r.allocatedTo.name)
			}
		}
		return nil
	}
	for _, r := range s.resources {
		if err := check(r); err != nil {
			return err
		}
	}
	return nil
}
