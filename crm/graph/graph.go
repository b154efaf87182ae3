// Package graph holds a transition graph — the actions the policy engine
// decided on and the orderings between them — and the single executor that
// carries one out.
//
// The executor is meant to serve two callers that differ only in their
// Functions: the simulator (ringctl crm simulate, today's only caller), which
// pretends every action succeeds or fails as injected, and the controller
// (not built yet), which will call the local resource manager and the fencer.
package graph

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Kind says which function executes an action.
type Kind int

// Action kinds, matching the element names of Pacemaker's graph XML.
const (
	// KindResource is a resource agent operation (rsc_op).
	KindResource Kind = iota
	// KindPseudo needs no work; it only joins orderings (pseudo_event).
	KindPseudo
	// KindCluster is a controller action such as do_shutdown or
	// clear_failcount (crm_event).
	KindCluster
	// KindFence fences a node (crm_event with operation "stonith").
	KindFence
)

// MarshalText names the kind in JSON: resource, pseudo, cluster or fence.
func (k Kind) MarshalText() ([]byte, error) {
	switch k {
	case KindResource:
		return []byte("resource"), nil
	case KindPseudo:
		return []byte("pseudo"), nil
	case KindCluster:
		return []byte("cluster"), nil
	case KindFence:
		return []byte("fence"), nil
	}
	return nil, fmt.Errorf("graph: unknown action kind %d", int(k))
}

func (k Kind) String() string {
	switch k {
	case KindResource:
		return "rsc_op"
	case KindPseudo:
		return "pseudo_event"
	case KindCluster, KindFence:
		return "crm_event"
	}
	return "unknown"
}

// Action is one step of a transition.
type Action struct {
	ID   int  `json:"id"`
	Kind Kind `json:"kind"`
	// Task is the operation: start, stop, monitor, cancel, delete, running,
	// do_shutdown, clear_failcount, stonith, ...
	Task string `json:"task"`
	// Key is the operation key (RSC_TASK_INTERVAL) or, for cluster-wide
	// actions, their name.
	Key string `json:"key"`
	// Resource identifies the resource (resource and clear_failcount
	// actions) with its agent.
	Resource string `json:"resource,omitempty"`
	// HistoryID, when set, is the id the action's result is recorded
	// under in the node's history (an anonymous clone instance's actions
	// name the instance, its history the configured resource).
	HistoryID string `json:"history_id,omitempty"`
	Class     string `json:"class,omitempty"`
	Provider  string `json:"provider,omitempty"`
	Type      string `json:"type,omitempty"`
	// Node is where the action runs (empty for most pseudo actions).
	Node   string `json:"node,omitempty"`
	NodeID string `json:"node_id,omitempty"`
	// IntervalMS is the interval of a recurring monitor (or of the monitor
	// a cancel stops).
	IntervalMS int `json:"interval_ms,omitempty"`
	// Meta carries operation meta-attributes: timeout, op_target_rc
	// (expected result), stonith_action, op-digest, call-id, ...
	Meta map[string]string `json:"meta,omitempty"`
	// Params are the resource's instance attributes for this node.
	Params map[string]string `json:"params,omitempty"`
	// Inputs are the IDs of actions that must complete first.
	Inputs []int `json:"inputs,omitempty"`
	// Priority orders ready actions when an executor must choose (the
	// resource's priority); it is the synapse priority in the XML.
	Priority int `json:"priority,omitempty"`
}

// TargetRC is the result the action is expected to return (0 unless the
// action says otherwise; a probe of a stopped resource expects 7).
func (a *Action) TargetRC() int {
	if v, ok := a.Meta["op_target_rc"]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return 0
}

// Unsettled reports whether a is work a cluster still has to do: a
// cluster whose plan has no such action has settled (crm_resource
// --wait). Pseudo actions only join orderings, and every plan lists a
// running resource's recurring monitors again.
func (a *Action) Unsettled() bool {
	return a.Kind != KindPseudo && !(a.Kind == KindResource && a.Task == "monitor" && a.IntervalMS > 0)
}

// Graph is a transition graph. Actions are listed in synapse order; the
// executor scans them in this order, which makes execution deterministic.
type Graph struct {
	ID int
	// Attrs are the transition-wide settings written on the root element
	// (cluster-delay, stonith-timeout, batch-limit, ...), in order.
	Attrs   [][2]string
	Actions []*Action
	// Unlisted describes actions that some action waits for but that are
	// not part of the graph themselves. Pacemaker's scheduler can produce
	// such inputs (e.g. a required start of an unmanaged resource); the
	// transition then cannot complete, which is what Pacemaker reports too.
	Unlisted []*Action
}

// Lookup returns the action with the given id.
func (g *Graph) Lookup(id int) *Action {
	for _, a := range g.Actions {
		if a.ID == id {
			return a
		}
	}
	return nil
}

// WriteXML writes the graph in the layout of Pacemaker's transition graph
// (transition_graph > synapse > action_set / inputs > trigger).
func (g *Graph) WriteXML(w io.Writer) error {
	var b strings.Builder
	b.WriteString("<transition_graph")
	for _, kv := range g.Attrs {
		fmt.Fprintf(&b, " %s=\"%s\"", kv[0], esc(kv[1]))
	}
	fmt.Fprintf(&b, " transition_id=\"%d\">\n", g.ID)
	byID := map[int]*Action{}
	for _, a := range g.Unlisted {
		byID[a.ID] = a
	}
	for _, a := range g.Actions {
		byID[a.ID] = a
	}
	for i, a := range g.Actions {
		if a.Priority > 0 {
			fmt.Fprintf(&b, "  <synapse id=\"%d\" priority=\"%d\">\n    <action_set>\n", i, a.Priority)
		} else {
			fmt.Fprintf(&b, "  <synapse id=\"%d\">\n    <action_set>\n", i)
		}
		writeAction(&b, a, "      ", true)
		b.WriteString("    </action_set>\n")
		if len(a.Inputs) == 0 {
			b.WriteString("    <inputs/>\n  </synapse>\n")
			continue
		}
		b.WriteString("    <inputs>\n")
		for _, in := range a.Inputs {
			b.WriteString("      <trigger>\n")
			if ia := byID[in]; ia != nil {
				writeAction(&b, ia, "        ", false)
			}
			b.WriteString("      </trigger>\n")
		}
		b.WriteString("    </inputs>\n  </synapse>\n")
	}
	b.WriteString("</transition_graph>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeAction(b *strings.Builder, a *Action, indent string, full bool) {
	fmt.Fprintf(b, "%s<%s id=\"%d\" operation=\"%s\" operation_key=\"%s\"", indent, a.Kind, a.ID, esc(a.Task), esc(a.Key))
	if a.Node != "" {
		fmt.Fprintf(b, " on_node=\"%s\" on_node_uuid=\"%s\"", esc(a.Node), esc(a.NodeID))
	}
	if !full {
		b.WriteString("/>\n")
		return
	}
	b.WriteString(">\n")
	if a.Resource != "" {
		fmt.Fprintf(b, "%s  <primitive id=\"%s\" class=\"%s\"", indent, esc(a.Resource), esc(a.Class))
		if a.Provider != "" {
			fmt.Fprintf(b, " provider=\"%s\"", esc(a.Provider))
		}
		fmt.Fprintf(b, " type=\"%s\"/>\n", esc(a.Type))
	}
	attrs := map[string]string{}
	for k, v := range a.Params {
		attrs[k] = v
	}
	for k, v := range a.Meta {
		attrs["CRM_meta_"+strings.ReplaceAll(k, "-", "_")] = v
	}
	if a.IntervalMS > 0 {
		attrs["CRM_meta_interval"] = strconv.Itoa(a.IntervalMS)
	}
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(b, "%s  <attributes", indent)
	for _, k := range keys {
		fmt.Fprintf(b, " %s=\"%s\"", k, esc(attrs[k]))
	}
	b.WriteString("/>\n")
	fmt.Fprintf(b, "%s</%s>\n", indent, a.Kind)
}

func esc(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
	return r.Replace(s)
}

// Functions carry out actions. The executor calls exactly one of them per
// action, never twice for the same action. With Executor.Parallel <= 1 (the
// simulator) all calls come from the goroutine that called Run, one at a
// time; with Parallel = N, up to N calls may run concurrently from different
// goroutines, so implementations must then be safe for concurrent use.
// Returning an error marks the action failed. As in Pacemaker, the
// transition is then aborted: actions that depend on the failed one never
// run, no further resource, cluster or fencing action is started (those
// already running are waited for), but pseudo actions whose inputs all
// succeeded still complete, since they cost nothing and only join
// orderings.
type Functions interface {
	// Pseudo completes a pseudo action (no work; it only joins orderings).
	Pseudo(a *Action) error
	// Resource runs a resource agent operation (start, stop, monitor,
	// cancel, delete, ...) on a.Node and returns once it completed; an
	// error means the result differed from a.TargetRC().
	Resource(a *Action) error
	// Cluster runs a controller action on a.Node: do_shutdown,
	// clear_failcount, lrm_delete.
	Cluster(a *Action) error
	// Fence fences a.Node with a.Meta["stonith_action"] (reboot, off, on).
	Fence(a *Action) error
}

// ErrIncomplete is returned when actions remain that could never run
// (their inputs failed or the graph has a cycle).
var ErrIncomplete = errors.New("graph: transition incomplete")

// ErrAborted is returned when an action failed and the rest was skipped.
var ErrAborted = errors.New("graph: transition aborted after a failed action")

// Executor runs a graph.
type Executor struct {
	Funcs Functions
	// Parallel bounds concurrently running actions; 0 or 1 runs them one
	// at a time in a deterministic order.
	Parallel int
}

// Result reports what happened to each action.
type Result struct {
	Executed []*Action // in completion order
	Failed   []*Action
	Skipped  []*Action
}

func (e *Executor) call(a *Action) error {
	switch a.Kind {
	case KindPseudo:
		return e.Funcs.Pseudo(a)
	case KindFence:
		return e.Funcs.Fence(a)
	case KindCluster:
		return e.Funcs.Cluster(a)
	default:
		return e.Funcs.Resource(a)
	}
}

// Run executes g. In sequential mode it repeatedly scans the actions in
// graph order and runs each one whose inputs have all completed, so an
// action can run in the same scan as the inputs it waits for (this is the
// order crm_simulate prints). The error wraps ErrAborted when an action
// failed, or ErrIncomplete when actions were left that could never run
// (an input missing from the graph, or a cycle).
func (e *Executor) Run(g *Graph) (*Result, error) {
	if e.Parallel > 1 {
		return e.runParallel(g)
	}
	st := newRunState(g)
	for progress := true; progress; {
		progress = false
		for _, a := range g.Actions {
			if !st.canStart(a) {
				continue
			}
			st.started[a.ID] = true
			progress = true
			st.finish(a, e.call(a))
		}
	}
	return st.result(g)
}

// runState tracks one execution.
type runState struct {
	started, done, failed map[int]bool
	aborted               bool
	res                   *Result
}

func newRunState(g *Graph) *runState {
	return &runState{started: map[int]bool{}, done: map[int]bool{}, failed: map[int]bool{}, res: &Result{}}
}

// canStart is should_fire_synapse: every input completed successfully, and
// after an abort only pseudo actions may still start.
func (st *runState) canStart(a *Action) bool {
	if st.started[a.ID] {
		return false
	}
	for _, in := range a.Inputs {
		if !st.done[in] || st.failed[in] {
			return false
		}
	}
	return !st.aborted || a.Kind == KindPseudo
}

func (st *runState) finish(a *Action, err error) {
	st.done[a.ID] = true
	if err != nil {
		st.failed[a.ID] = true
		st.aborted = true
		st.res.Failed = append(st.res.Failed, a)
		return
	}
	st.res.Executed = append(st.res.Executed, a)
}

func (st *runState) result(g *Graph) (*Result, error) {
	for _, a := range g.Actions {
		if !st.started[a.ID] {
			st.res.Skipped = append(st.res.Skipped, a)
		}
	}
	switch {
	case st.aborted:
		return st.res, ErrAborted
	case len(st.res.Skipped) > 0:
		return st.res, fmt.Errorf("%w: %d actions could not run", ErrIncomplete, len(st.res.Skipped))
	}
	return st.res, nil
}

type completion struct {
	a   *Action
	err error
}

// runParallel starts up to Parallel ready actions at a time, in graph
// order, and starts more as they complete.
func (e *Executor) runParallel(g *Graph) (*Result, error) {
	st := newRunState(g)
	running := 0
	ch := make(chan completion)
	for {
		for _, a := range g.Actions {
			if running >= e.Parallel {
				break
			}
			if !st.canStart(a) {
				continue
			}
			st.started[a.ID] = true
			running++
			go func(a *Action) { ch <- completion{a, e.call(a)} }(a)
		}
		if running == 0 {
			break
		}
		c := <-ch
		running--
		st.finish(c.a, c.err)
	}
	return st.result(g)
}
