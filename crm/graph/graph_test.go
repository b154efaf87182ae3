package graph_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"ringmaster/crm/graph"
)

// recorder is a Functions implementation that records calls and fails the
// actions named in fail.
type recorder struct {
	mu      sync.Mutex
	calls   []string
	fail    map[int]bool
	running atomic.Int32
	maxSeen atomic.Int32
	gate    chan struct{} // when set, resource actions wait on it
	arrived chan struct{} // when set, resource actions announce themselves
}

func (r *recorder) do(kind string, a *graph.Action) error {
	n := r.running.Add(1)
	defer r.running.Add(-1)
	for {
		m := r.maxSeen.Load()
		if n <= m || r.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	if r.gate != nil && kind == "rsc" {
		r.arrived <- struct{}{}
		<-r.gate
	}
	r.mu.Lock()
	r.calls = append(r.calls, fmt.Sprintf("%s:%s", kind, a.Key))
	r.mu.Unlock()
	if r.fail[a.ID] {
		return errors.New("injected failure")
	}
	return nil
}

func (r *recorder) Pseudo(a *graph.Action) error   { return r.do("pseudo", a) }
func (r *recorder) Resource(a *graph.Action) error { return r.do("rsc", a) }
func (r *recorder) Cluster(a *graph.Action) error  { return r.do("cluster", a) }
func (r *recorder) Fence(a *graph.Action) error    { return r.do("fence", a) }

// chain: stop A (1) -> group stopped (2, pseudo) -> start B (3); fence (4)
// independent; start C (5) waits for start B and the fencing.
func chain() *graph.Graph {
	return &graph.Graph{Actions: []*graph.Action{
		{ID: 5, Kind: graph.KindResource, Task: "start", Key: "C_start_0", Node: "n1", Inputs: []int{3, 4}},
		{ID: 3, Kind: graph.KindResource, Task: "start", Key: "B_start_0", Node: "n1", Inputs: []int{2}},
		{ID: 2, Kind: graph.KindPseudo, Task: "stopped", Key: "g_stopped_0", Inputs: []int{1}},
		{ID: 1, Kind: graph.KindResource, Task: "stop", Key: "A_stop_0", Node: "n2"},
		{ID: 4, Kind: graph.KindFence, Task: "stonith", Key: "stonith-n3-reboot", Node: "n3"},
	}}
}

func TestSequentialOrder(t *testing.T) {
	r := &recorder{}
	res, err := (&graph.Executor{Funcs: r}).Run(chain())
	if err != nil {
		t.Fatal(err)
	}
	// Repeated scans in synapse order: a scan runs whatever is ready,
	// including actions whose inputs completed earlier in the same scan.
	want := "rsc:A_stop_0 fence:stonith-n3-reboot pseudo:g_stopped_0 rsc:B_start_0 rsc:C_start_0"
	if got := strings.Join(r.calls, " "); got != want {
		t.Errorf("order:\n got %s\nwant %s", got, want)
	}
	if len(res.Executed) != 5 || len(res.Skipped) != 0 {
		t.Errorf("executed %d skipped %d", len(res.Executed), len(res.Skipped))
	}
}

func TestFailureAborts(t *testing.T) {
	r := &recorder{fail: map[int]bool{2: true}}
	res, err := (&graph.Executor{Funcs: r}).Run(chain())
	if !errors.Is(err, graph.ErrAborted) {
		t.Fatalf("want ErrAborted, got %v", err)
	}
	if len(res.Failed) != 1 || res.Failed[0].ID != 2 {
		t.Errorf("failed: %v", res.Failed)
	}
	for _, c := range r.calls {
		if strings.Contains(c, "B_start") || strings.Contains(c, "C_start") {
			t.Errorf("%s ran after its input failed", c)
		}
	}
}

// TestIncomplete: an input that is not in the graph can never complete
// (Pacemaker can produce such graphs); the executor reports it instead of
// waiting forever.
func TestIncomplete(t *testing.T) {
	g := chain()
	g.Actions[0].Inputs = append(g.Actions[0].Inputs, 99)
	res, err := (&graph.Executor{Funcs: &recorder{}}).Run(g)
	if !errors.Is(err, graph.ErrIncomplete) {
		t.Fatalf("want ErrIncomplete, got %v", err)
	}
	if len(res.Skipped) != 1 || res.Skipped[0].ID != 5 {
		t.Errorf("skipped: %v", res.Skipped)
	}
}

func TestCycleIsIncomplete(t *testing.T) {
	g := &graph.Graph{Actions: []*graph.Action{
		{ID: 1, Kind: graph.KindPseudo, Key: "a", Inputs: []int{2}},
		{ID: 2, Kind: graph.KindPseudo, Key: "b", Inputs: []int{1}},
	}}
	if _, err := (&graph.Executor{Funcs: &recorder{}}).Run(g); !errors.Is(err, graph.ErrIncomplete) {
		t.Fatalf("want ErrIncomplete, got %v", err)
	}
}

// TestParallel runs independent actions concurrently, bounded by Parallel,
// and still respects the orderings.
func TestParallel(t *testing.T) {
	g := &graph.Graph{}
	for i := 1; i <= 6; i++ {
		g.Actions = append(g.Actions, &graph.Action{ID: i, Kind: graph.KindResource, Key: fmt.Sprintf("r%d_start_0", i)})
	}
	g.Actions = append(g.Actions, &graph.Action{ID: 7, Kind: graph.KindPseudo, Key: "all_running_0", Inputs: []int{1, 2, 3, 4, 5, 6}})
	r := &recorder{gate: make(chan struct{}), arrived: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := (&graph.Executor{Funcs: r, Parallel: 3}).Run(g)
		done <- err
	}()
	// Three actions start before any finishes; each release lets exactly
	// one more start.
	for i := 0; i < 3; i++ {
		<-r.arrived
	}
	if n := r.running.Load(); n != 3 {
		t.Errorf("%d actions running, want 3", n)
	}
	for i := 0; i < 3; i++ {
		r.gate <- struct{}{}
		<-r.arrived
	}
	for i := 0; i < 3; i++ {
		r.gate <- struct{}{}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m := r.maxSeen.Load(); m != 3 {
		t.Errorf("max concurrency %d, want 3", m)
	}
	if last := r.calls[len(r.calls)-1]; last != "pseudo:all_running_0" {
		t.Errorf("pseudo action ran before its inputs: %v", r.calls)
	}
}

func TestWriteXML(t *testing.T) {
	g := chain()
	g.Attrs = [][2]string{{"batch-limit", "0"}}
	g.Actions[1].Priority = 5
	g.Actions[1].Resource, g.Actions[1].Class, g.Actions[1].Provider, g.Actions[1].Type = "B", "ocf", "heartbeat", "Dummy"
	g.Actions[1].Params = map[string]string{"ip": "10.0.0.1"}
	g.Actions[1].Meta = map[string]string{"timeout": "20000"}
	var b strings.Builder
	if err := g.WriteXML(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		`<transition_graph batch-limit="0" transition_id="0">`,
		`<synapse id="1" priority="5">`,
		`<rsc_op id="3" operation="start" operation_key="B_start_0" on_node="n1" on_node_uuid="">`,
		`<primitive id="B" class="ocf" provider="heartbeat" type="Dummy"/>`,
		`<attributes CRM_meta_timeout="20000" ip="10.0.0.1"/>`,
		`<pseudo_event id="2" operation="stopped" operation_key="g_stopped_0"/>`,
		`<inputs/>`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in:\n%s", want, out)
		}
	}
}

// TestAbortLetsPseudoActionsFinish: after a failure, independent resource
// actions are not started, but ready pseudo actions still complete (as in
// Pacemaker, where they cost nothing).
func TestAbortLetsPseudoActionsFinish(t *testing.T) {
	g := &graph.Graph{Actions: []*graph.Action{
		{ID: 1, Kind: graph.KindResource, Key: "A_start_0"},
		{ID: 2, Kind: graph.KindResource, Key: "B_start_0"},
		{ID: 3, Kind: graph.KindPseudo, Key: "grp_start_0"},
		{ID: 4, Kind: graph.KindPseudo, Key: "A_running_0", Inputs: []int{1}},
	}}
	r := &recorder{fail: map[int]bool{1: true}}
	res, err := (&graph.Executor{Funcs: r}).Run(g)
	if !errors.Is(err, graph.ErrAborted) {
		t.Fatalf("want ErrAborted, got %v", err)
	}
	if got := strings.Join(r.calls, " "); got != "rsc:A_start_0 pseudo:grp_start_0" {
		t.Errorf("calls: %s", got)
	}
	if len(res.Skipped) != 2 {
		t.Errorf("skipped %v", res.Skipped)
	}
}
