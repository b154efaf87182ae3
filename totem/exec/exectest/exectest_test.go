package exectest_test

import (
	"fmt"
	"slices"
	"testing"

	"ringmaster/totem"
	"ringmaster/totem/exec"
	"ringmaster/totem/exec/exectest"
)

// recorder is a service that logs what its node delivers.
type recorder struct {
	id   exec.ServiceID
	host exec.Host
	log  []string
}

func (r *recorder) ID() exec.ServiceID     { return r.id }
func (r *recorder) Name() string           { return "recorder" }
func (r *recorder) Init(h exec.Host) error { r.host = h; return nil }
func (r *recorder) Deliver(m totem.Message) {
	r.log = append(r.log, fmt.Sprintf("%d:%s", m.Sender, m.Payload))
}
func (r *recorder) SyncStart(totem.ConfChange) {}
func (r *recorder) SyncDone()                  { r.log = append(r.log, "synced") }
func (r *recorder) ConfChange(c totem.ConfChange) {
	r.log = append(r.log, fmt.Sprintf("%s %s members=%v left=%v joined=%v", c.Kind, c.Ring, c.Members, c.Left, c.Joined))
}

func newCluster(t *testing.T, n int, seed uint64) (*exectest.Cluster, map[totem.NodeID]*recorder) {
	t.Helper()
	recs := map[totem.NodeID]*recorder{}
	c, err := exectest.New(exectest.Options{Nodes: n, Seed: seed, Services: func(id totem.NodeID) []exec.Service {
		r := &recorder{id: 100}
		recs[id] = r
		return []exec.Service{r}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, recs
}

func send(t *testing.T, c *exectest.Cluster, id totem.NodeID, msg string) {
	t.Helper()
	if err := c.Node(id).Send(100, 1, totem.Agreed, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

func logOf(c *exectest.Cluster, r *recorder, id totem.NodeID) []string {
	var out []string
	c.Node(id).Exec.Do(func() { out = slices.Clone(r.log) })
	return out
}

// TestTotalOrderAndDeterminism: every node delivers the same sequence, and
// the same seed gives the same sequence again.
func TestTotalOrderAndDeterminism(t *testing.T) {
	run := func(seed uint64) []string {
		c, recs := newCluster(t, 3, seed)
		for i := range 20 {
			for n := totem.NodeID(1); n <= 3; n++ {
				send(t, c, n, fmt.Sprintf("m%d", i))
			}
		}
		c.Drain(10000)
		if !c.Synced() {
			t.Fatal("not synced after draining")
		}
		ref := logOf(c, recs[1], 1)
		for n := totem.NodeID(2); n <= 3; n++ {
			if got := logOf(c, recs[n], n); !slices.Equal(got, ref) {
				t.Fatalf("node %d delivered\n%v\nnode 1\n%v", n, got, ref)
			}
		}
		return ref
	}
	a, b := run(42), run(42)
	if !slices.Equal(a, b) {
		t.Fatal("same seed, different order")
	}
	if c := run(43); slices.Equal(a, c) {
		t.Log("seeds 42 and 43 happened to give the same order")
	}
}

// TestFaultsDeliverEVSConfigurations: crash, partition and merge deliver a
// transitional then a regular configuration with the right lists, and
// unsent messages travel into the new ring.
func TestFaultsDeliverEVSConfigurations(t *testing.T) {
	c, recs := newCluster(t, 3, 1)
	c.Drain(1000)
	mark := func(id totem.NodeID) int { return len(logOf(c, recs[id], id)) }
	since := func(id totem.NodeID, from int) []string { return logOf(c, recs[id], id)[from:] }

	m1 := mark(1)
	c.Crash(3)
	c.Drain(1000)
	want := []string{
		"transitional 1.4 members=[1 2] left=[3] joined=[]",
		"regular 1.8 members=[1 2] left=[3] joined=[]",
		"synced",
	}
	if got := since(1, m1); !slices.Equal(got, want) {
		t.Fatalf("crash:\n%q\nwant\n%q", got, want)
	}

	if _, err := c.Restart(3); err != nil {
		t.Fatal(err)
	}
	c.Drain(1000)
	m1, m3 := mark(1), 0
	c.Freeze()
	send(t, c, 1, "queued-before-merge")
	c.Heal()
	c.Thaw()
	c.Drain(1000)
	want1 := []string{
		"transitional 1.8 members=[1 2] left=[] joined=[]",
		"regular 1.16 members=[1 2 3] left=[] joined=[3]",
		"1:queued-before-merge",
		"synced",
	}
	if got := since(1, m1); !slices.Equal(got, want1) {
		t.Fatalf("merge on node 1:\n%q\nwant\n%q", got, want1)
	}
	want3 := []string{
		"regular 3.12 members=[3] left=[] joined=[3]",
		"synced",
		"transitional 3.12 members=[3] left=[] joined=[]",
		"regular 1.16 members=[1 2 3] left=[] joined=[1 2]",
		"1:queued-before-merge",
		"synced",
	}
	if got := since(3, m3); !slices.Equal(got, want3) {
		t.Fatalf("merge on node 3:\n%q\nwant\n%q", got, want3)
	}

	if err := c.Partition([]totem.NodeID{1}, []totem.NodeID{2, 3}); err != nil {
		t.Fatal(err)
	}
	c.Drain(1000)
	if got := logOf(c, recs[2], 2); !slices.Contains(got, "regular 2.24 members=[2 3] left=[1] joined=[]") {
		t.Fatalf("partition on node 2: %q", got)
	}
	if err := c.Partition([]totem.NodeID{1, 2}); err == nil {
		t.Fatal("a partition that leaves out a live node must be refused")
	}
}

// TestQueueLimitAndFreeze: Send answers try-again on a full queue, and a
// frozen cluster orders nothing except what StepFrom asks for.
func TestQueueLimitAndFreeze(t *testing.T) {
	c, recs := newCluster(t, 2, 1)
	c.Drain(1000)
	c.Freeze()
	n := c.Node(2)
	n.SetQueueLimit(2)
	send(t, c, 2, "a")
	send(t, c, 2, "b")
	if err := n.Send(100, 1, totem.Agreed, []byte("c")); err != totem.ErrTryAgain {
		t.Fatalf("full queue: %v", err)
	}
	if c.Step() {
		t.Fatal("stepped while frozen")
	}
	if got := c.StepFrom(2, 1); got != 1 {
		t.Fatalf("StepFrom: %d", got)
	}
	if log := logOf(c, recs[1], 1); log[len(log)-1] != "2:a" {
		t.Fatalf("node 1: %q", log)
	}
	c.Thaw()
	c.Drain(100)
	if log := logOf(c, recs[1], 1); log[len(log)-1] != "2:b" {
		t.Fatalf("node 1: %q", log)
	}
}
