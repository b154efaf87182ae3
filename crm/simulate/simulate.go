// Package simulate implements `ringctl crm simulate`: it prints a CIB's
// cluster status, runs the policy engine on it, executes the resulting
// transition with fake action functions that record their results in the
// CIB's status section, and prints the revised status — in crm_simulate's
// text format.
package simulate

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"ringmaster/crm/cib"
	"ringmaster/crm/graph"
	"ringmaster/crm/pengine"
)

// ErrBadSpec wraps an invalid injection specification.
var ErrBadSpec = errors.New("simulate: invalid specification")

// Options mirror crm_simulate's.
type Options struct {
	// Now is the cluster time; the CIB's execution-date overrides it
	// unless SetDate is true.
	Now time.Time
	// SetDate makes Now the effective cluster time even when the CIB
	// records an execution-date (crm_simulate -t).
	SetDate bool
	// Simulate executes the transition (-S); otherwise only the status and
	// the transition summary are printed (-s/-R style).
	Simulate bool
	// Schedule computes a transition without executing it (implied by
	// Simulate and ShowScores).
	Schedule bool
	// ShowScores prints allocation scores (-s).
	ShowScores bool
	// NodeUp, NodeDown and NodeFail change node states before scheduling.
	NodeUp, NodeDown, NodeFail []string
	// OpInject records operation results before scheduling
	// (RSC_TASK_INTERVALMS@NODE=RC).
	OpInject []string
	// OpFail makes actions fail during the simulated transition
	// (RSC_TASK_INTERVALMS@NODE=RC).
	OpFail []string
	// Explain names a resource to explain.
	Explain string
	// Stderr, when set, receives crm_simulate's error-stream messages
	// (scheduler warnings, an incomplete transition).
	Stderr io.Writer
}

// Outcome is what a simulation produced, for -O and -G.
type Outcome struct {
	CIB   *cib.CIB
	Graph *graph.Graph
	// Summary and Scores are the scheduler's transition summary and
	// allocation scores (Scores only with ShowScores).
	Summary []pengine.Change
	Scores  []pengine.ScoreLine
	// TransitionErr is set when the simulated transition did not complete:
	// it wraps graph.ErrAborted after an injected failure (crm_simulate
	// still exits 0 then) or graph.ErrIncomplete when actions could never
	// run (an invalid transition; crm_simulate exits 1).
	TransitionErr error
}

// Run simulates in and writes the report to w.
func Run(w io.Writer, in *cib.CIB, opts Options) (*Outcome, error) {
	c := in.Clone()
	now, dateLine := effectiveDate(c, opts.Now)
	if opts.SetDate {
		now = opts.Now
		dateLine = "Setting effective cluster time: " + now.UTC().Format("2006-01-02 15:04:05")
	}
	p := &printer{w: w}
	if dateLine != "" {
		p.line(dateLine)
	}
	st, err := pengine.Status(c, now, pengine.StatusOptions{ShowPending: true})
	if err != nil {
		return nil, err
	}
	if st.MaintenanceMode {
		p.line("")
		p.line("              *** Resource management is DISABLED ***")
		p.line("  The cluster will not attempt to start, stop or recover services")
		p.line("")
	}
	if st.Disabled > 0 || st.Blocked > 0 {
		p.line(fmt.Sprintf("%d of %d resource instances DISABLED and %d BLOCKED from further action due to failure", st.Disabled, st.Instances, st.Blocked))
		p.line("")
	}
	p.status("Current cluster status", st)

	if len(opts.NodeUp)+len(opts.NodeDown)+len(opts.NodeFail)+len(opts.OpInject) > 0 {
		p.line("")
		p.line("Performing Requested Modifications:")
		if err := inject(p, c, opts, now); err != nil {
			return nil, err
		}
		// crm_simulate re-reads the modified CIB, announcing the date again.
		if dateLine != "" {
			p.line(dateLine)
		}
	}
	out := &Outcome{CIB: c}
	if !opts.Simulate && !opts.Schedule && !opts.ShowScores && opts.Explain == "" {
		return out, nil
	}
	res, err := pengine.Schedule(c, now, pengine.Options{ShowScores: opts.ShowScores, Explain: opts.Explain})
	if err != nil {
		return nil, err
	}
	out.Graph, out.Summary, out.Scores = res.Graph, res.Summary, res.Scores
	if opts.Stderr != nil {
		// Configuration problems the scheduler worked around (a
		// constraint naming an unknown resource, an unfenceable node),
		// reported like crm_simulate does: on the error stream.
		for _, w := range res.Warnings {
			fmt.Fprintln(opts.Stderr, "warning: "+w)
		}
	}
	if opts.ShowScores {
		p.line("")
		p.line("Allocation Scores:")
		for _, l := range res.Scores {
			p.line(l.String())
		}
	}
	p.line("")
	p.line("Transition Summary:")
	for _, ch := range res.Summary {
		p.line("  * " + ch.Text)
	}
	if opts.Explain != "" {
		p.line("")
		p.line("Explanation for " + opts.Explain + ":")
		for _, l := range res.Explain {
			p.line("  " + l)
		}
	}
	if !opts.Simulate {
		return out, nil
	}
	p.line("")
	p.line("Executing Cluster Transition:")
	fails, err := parseSpecs(opts.OpFail)
	if err != nil {
		return nil, err
	}
	sf := &simFuncs{p: p, cib: c, fails: fails, now: now.Unix()}
	ex := &graph.Executor{Funcs: sf}
	if _, err := ex.Run(res.Graph); err != nil {
		out.TransitionErr = err
		if !errors.Is(err, graph.ErrAborted) && opts.Stderr != nil {
			// crm_simulate's wording, on its error stream.
			fmt.Fprintln(opts.Stderr, "Transition failed: terminated")
			fmt.Fprintln(opts.Stderr, "An invalid transition was produced")
		}
	}
	if dateLine != "" {
		p.line(dateLine)
	}
	rev, err := pengine.Status(c, now, pengine.StatusOptions{})
	if err != nil {
		return nil, err
	}
	p.line("")
	p.status("Revised Cluster Status", rev)
	return out, p.err
}

// effectiveDate returns the time to schedule at: the CIB's execution-date
// when present (saved scheduler inputs carry it), else now.
func effectiveDate(c *cib.CIB, now time.Time) (time.Time, string) {
	v, ok := c.Attrs.Get("execution-date")
	if !ok {
		return now, ""
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil || sec == 0 {
		return now, ""
	}
	t := time.Unix(sec, 0).UTC()
	return t, "Using the original execution date of: " + t.Format("2006-01-02 15:04:05Z")
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) line(s string) {
	if p.err != nil {
		return
	}
	_, p.err = io.WriteString(p.w, s+"\n")
}

func (p *printer) status(title string, st *pengine.ClusterStatus) {
	p.line(title + ":")
	p.line("  * Node List:")
	if p.err == nil {
		p.err = WriteNodeList(p.w, "    ", st)
	}
	p.line("")
	p.line("  * Full List of Resources:")
	if p.err == nil {
		p.err = WriteResourceList(p.w, "    ", st)
	}
}

// WriteNodeList writes the node list of a status as crm_simulate and
// crm_mon show it ("* Online: [ n1 n2 ]", "* Node n3: UNCLEAN (offline)"),
// each line prefixed with indent. `ringctl crm status` shares it.
func WriteNodeList(w io.Writer, indent string, st *pengine.ClusterStatus) error {
	p := &printer{w: w}
	var online, offline []string
	for _, n := range st.Nodes {
		switch {
		case n.Individual:
			p.line(fmt.Sprintf("%s* Node %s: %s", indent, n.Name, n.State))
		case n.Online:
			online = append(online, n.Name)
		default:
			offline = append(offline, n.Name)
		}
	}
	if len(online) > 0 {
		p.line(indent + "* Online: [ " + strings.Join(online, " ") + " ]")
	}
	if len(offline) > 0 {
		p.line(indent + "* OFFLINE: [ " + strings.Join(offline, " ") + " ]")
	}
	return p.err
}

// WriteResourceList writes the resources of a status as crm_simulate and
// crm_mon show them (groups and clones with their members indented), each
// line prefixed with indent.
func WriteResourceList(w io.Writer, indent string, st *pengine.ClusterStatus) error {
	p := &printer{w: w}
	in1, in2 := indent+"  ", indent+"    "
	if len(st.Resources) == 0 {
		p.line(indent + "* No resources")
	}
	for _, r := range st.Resources {
		if r.IsGroup {
			if r.Flags != "" {
				p.line(fmt.Sprintf("%s* Resource Group: %s (%s):", indent, r.ID, r.Flags))
			} else {
				p.line(fmt.Sprintf("%s* Resource Group: %s:", indent, r.ID))
			}
			for _, m := range r.Members {
				p.line(fmt.Sprintf("%s* %s\t(%s):\t%s", in1, m.ID, m.Agent, m.State))
			}
			continue
		}
		if r.IsClone {
			if r.Flags != "" {
				p.line(fmt.Sprintf("%s* Clone Set: %s [%s] (%s):", indent, r.ID, r.Child, r.Flags))
			} else {
				p.line(fmt.Sprintf("%s* Clone Set: %s [%s]:", indent, r.ID, r.Child))
			}
			for _, m := range r.Members {
				if m.IsGroup {
					if m.Flags != "" {
						p.line(fmt.Sprintf("%s* Resource Group: %s (%s):", in1, m.ID, m.Flags))
					} else {
						p.line(fmt.Sprintf("%s* Resource Group: %s:", in1, m.ID))
					}
					for _, x := range m.Members {
						p.line(fmt.Sprintf("%s* %s\t(%s):\t%s", in2, x.ID, x.Agent, x.State))
					}
					continue
				}
				p.line(fmt.Sprintf("%s* %s\t(%s):\t%s", in1, m.ID, m.Agent, m.State))
			}
			for _, rl := range r.Roles {
				p.line(fmt.Sprintf("%s* %s: [ %s ]", in1, rl.Role, strings.Join(rl.Nodes, " ")))
			}
			continue
		}
		p.line(fmt.Sprintf("%s* %s\t(%s):\t%s", indent, r.ID, r.Agent, r.State))
	}
	return p.err
}

// opSpec is RSC_TASK_INTERVALMS@NODE=RC.
type opSpec struct {
	rsc, task, node string
	intervalMS, rc  int
	key             string
}

var specRe = regexp.MustCompile(`^([^@]+)@([^=]+)=(-?[0-9]+)$`)

func parseSpec(spec string) (opSpec, error) {
	m := specRe.FindStringSubmatch(spec)
	if m == nil {
		return opSpec{}, fmt.Errorf("%w: %q (want RSC_TASK_INTERVALMS@NODE=RC)", ErrBadSpec, spec)
	}
	key := m[1]
	i := strings.LastIndexByte(key, '_')
	if i <= 0 {
		return opSpec{}, fmt.Errorf("%w: %q has no interval", ErrBadSpec, spec)
	}
	iv, err := strconv.Atoi(key[i+1:])
	if err != nil {
		return opSpec{}, fmt.Errorf("%w: %q: interval %q is not a number of milliseconds", ErrBadSpec, spec, key[i+1:])
	}
	rest := key[:i]
	j := strings.LastIndexByte(rest, '_')
	if j <= 0 {
		return opSpec{}, fmt.Errorf("%w: %q has no task", ErrBadSpec, spec)
	}
	task := rest[j+1:]
	rsc := rest[:j]
	for _, t := range []string{"migrate_to", "migrate_from"} {
		if strings.HasSuffix(rest, "_"+t) {
			task, rsc = t, rest[:len(rest)-len(t)-1]
		}
	}
	rc, _ := strconv.Atoi(m[3])
	return opSpec{rsc: rsc, task: task, node: m[2], intervalMS: iv, rc: rc, key: key}, nil
}

func parseSpecs(specs []string) ([]opSpec, error) {
	var out []opSpec
	for _, s := range specs {
		sp, err := parseSpec(s)
		if err != nil {
			return nil, err
		}
		out = append(out, sp)
	}
	return out, nil
}

func nodeID(c *cib.CIB, uname string) string {
	for _, n := range c.Config.Nodes {
		if strings.EqualFold(n.Uname, uname) {
			return n.ID
		}
	}
	return uname
}

func findResource(list []*cib.Resource, id string) *cib.Resource {
	for _, r := range list {
		if r.ID == id {
			return r
		}
		if f := findResource(r.Children, id); f != nil {
			return f
		}
	}
	return nil
}

// inject applies node state changes and operation results before
// scheduling, as crm_simulate's --node-up/--node-down/--node-fail/--op-inject.
func inject(p *printer, c *cib.CIB, opts Options, now time.Time) error {
	for _, n := range opts.NodeUp {
		p.line("  * Bringing node " + n + " online")
		c.Status.EnsureNode(nodeID(c, n), n).SetMembership(true)
	}
	for _, n := range opts.NodeDown {
		p.line("  * Taking node " + n + " offline")
		ns := c.Status.EnsureNode(nodeID(c, n), n)
		ns.SetMembership(false)
		ns.ClearHistory()
		ns.ClearTransient()
	}
	for _, n := range opts.NodeFail {
		p.line("  * Failing node " + n)
		ns := c.Status.EnsureNode(nodeID(c, n), n)
		ns.SetMembership(true)
		ns.Attrs.Set("in_ccm", "false")
	}
	for _, spec := range opts.OpInject {
		sp, err := parseSpec(spec)
		if err != nil {
			return err
		}
		p.line("  * Injecting " + spec + " into the configuration")
		r := findResource(c.Config.Resources, sp.rsc)
		if r == nil || r.IsGroup() {
			return fmt.Errorf("%w: %q: no primitive %q", ErrBadSpec, spec, sp.rsc)
		}
		ns := c.Status.EnsureNode(nodeID(c, sp.node), sp.node)
		lr := ns.EnsureResource(r.ID, r.Class, r.Type, r.Provider)
		injectFailcount(p, ns, r.ID, sp.task, sp.intervalMS, sp.rc, now.Unix())
		// Like crm_simulate, an injected result carries no parameters and
		// so no digest of its own.
		lr.Record(cib.OpResult{
			Task: sp.task, IntervalMS: sp.intervalMS, RC: sp.rc, OpStatus: 0, TargetRC: 0,
			CallID: lr.MaxCallID() + 1, LastChange: now.Unix(), ExitReason: "Simulated action result",
		})
	}
	return nil
}

// injectFailcount bumps the fail count for a failed result, except for a
// probe that found the resource stopped.
func injectFailcount(p *printer, ns *cib.NodeState, rsc, task string, iv, rc int, now int64) {
	if rc == 0 || (rc == 7 && iv == 0) {
		return
	}
	suffix := fmt.Sprintf("%s#%s_%d", rsc, task, iv)
	for _, kv := range [][2]string{{"fail-count-" + suffix, "value++"}, {"last-failure-" + suffix, strconv.FormatInt(now, 10)}} {
		p.line(fmt.Sprintf("  * Injecting attribute %s=%s into /node_state '%s'", kv[0], kv[1], ns.ID()))
		ns.SetTransientAttr(kv[0], kv[1])
	}
}

// simFuncs pretend to execute actions: every action succeeds with its
// expected result unless an OpFail spec matches, and resource results are
// recorded in the CIB status like the controller would.
type simFuncs struct {
	p     *printer
	cib   *cib.CIB
	fails []opSpec
	now   int64
}

// Pseudo prints the pseudo action the way crm_simulate does.
func (f *simFuncs) Pseudo(a *graph.Action) error {
	if a.Node != "" {
		f.p.line(fmt.Sprintf("  * Pseudo action:   %s on %s", a.Key, a.Node))
	} else {
		f.p.line("  * Pseudo action:   " + a.Key)
	}
	return nil
}

// Cluster prints the controller action; it changes nothing in the CIB
// (crm_simulate does not clear fail counts either).
func (f *simFuncs) Cluster(a *graph.Action) error {
	if a.Resource != "" {
		f.p.line(fmt.Sprintf("  * Cluster action:  %s for %s on %s", a.Task, a.Resource, a.Node))
	} else {
		f.p.line(fmt.Sprintf("  * Cluster action:  %s on %s", a.Task, a.Node))
	}
	return nil
}

// Fence marks the node down and forgets its resource history and transient
// attributes, as a completed fencing would.
func (f *simFuncs) Fence(a *graph.Action) error {
	op := a.Meta["stonith_action"]
	f.p.line(fmt.Sprintf("  * Fencing %s (%s)", a.Node, op))
	if op != "on" {
		ns := f.cib.Status.EnsureNode(a.NodeID, a.Node)
		ns.SetMembership(false)
		ns.ClearHistory()
		ns.ClearTransient()
	}
	return nil
}

// Resource pretends the operation ran: it prints it, records its result
// (the expected one, or the one an OpFail spec names) in the node's history
// and, for a failure, bumps the fail count and fails the action.
func (f *simFuncs) Resource(a *graph.Action) error {
	printOp := func() {
		if a.IntervalMS > 0 {
			f.p.line(fmt.Sprintf("  * Resource action: %-15s %s=%d on %s", a.Resource, a.Task, a.IntervalMS, a.Node))
		} else {
			f.p.line(fmt.Sprintf("  * Resource action: %-15s %s on %s", a.Resource, a.Task, a.Node))
		}
	}
	switch a.Task {
	case "delete", "meta-data", "notify":
		// Notifications leave no history that scheduling would read.
		if a.Task == "notify" {
			printOp()
			return nil
		}
		f.p.line(fmt.Sprintf("  * Resource action: %-15s %s on %s", a.Resource, a.Task, a.Node))
		return nil
	}
	target := a.TargetRC()
	rc := target
	failed := false
	for _, sp := range f.fails {
		if strings.EqualFold(sp.rsc, a.Resource) && sp.task == a.Task && sp.intervalMS == a.IntervalMS && strings.EqualFold(sp.node, a.Node) {
			rc = sp.rc
			failed = true
			break
		}
	}
	ns := f.cib.Status.EnsureNode(a.NodeID, a.Node)
	// As crm_simulate: the history entry named as the action shows the
	// resource, if the node has one, else a new one under the history id.
	histID := a.Resource
	if a.HistoryID != "" && ns.Resource(a.Resource) == nil {
		histID = a.HistoryID
	}
	lr := ns.EnsureResource(histID, a.Class, a.Type, a.Provider)
	printOp()
	if failed {
		f.p.line(fmt.Sprintf("Pretending action %d failed with rc=%d", a.ID, rc))
		injectFailcount(f.p, ns, histID, a.Task, a.IntervalMS, rc, f.now)
	}
	lr.Record(cib.OpResult{
		Task: a.Task, IntervalMS: a.IntervalMS, RC: rc, OpStatus: 0, TargetRC: target,
		CallID: lr.MaxCallID() + 1, Digest: a.Meta["op-digest"], LastChange: f.now,
	})
	if failed {
		return fmt.Errorf("%s_%s_%d on %s failed with rc=%d", a.Resource, a.Task, a.IntervalMS, a.Node, rc)
	}
	return nil
}
