package sim

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"ringmaster/crm/cib"
)

// both runs a scenario on the ordered-delivery model and on totem/sim.
func both(t *testing.T, f func(t *testing.T, onTotem bool)) {
	t.Run("ordered", func(t *testing.T) { f(t, false) })
	t.Run("totem", func(t *testing.T) { f(t, true) })
}

func scripted(onTotem bool, nodes int, stonith bool, policy string) Options {
	return Options{Seed: 1, OnTotem: onTotem, Nodes: nodes, Stonith: stonith, NoQuorumPolicy: policy, Primitives: 3, Groups: 1,
		Stickiness: 100, Settle: 60 * time.Second, Token: 200 * time.Millisecond, Trace: 1 << 20}
}

func mustRun(t *testing.T, c *Cluster, d time.Duration) {
	t.Helper()
	if f := c.runFor(d); f != nil {
		t.Fatal(f)
	}
}

func mustConverge(t *testing.T, c *Cluster) {
	t.Helper()
	for i := 0; i < 600; i++ {
		if c.converged() == "" {
			return
		}
		mustRun(t, c, 100*time.Millisecond)
	}
	t.Fatalf("no convergence: %s\n%s", c.converged(), strings.Join(c.trace, "\n"))
}

func running(c *Cluster, id int) []string {
	var out []string
	for _, r := range c.rscs {
		if c.nodes[id-1].running[r] {
			out = append(out, r)
		}
	}
	return out
}

func epoch(x *cib.CIB) string { return x.Attrs.Value("epoch") }

// After a partition heals, the newest configuration (highest epoch) is on
// every node, whichever side made it; the other side's change is lost, as
// in Pacemaker.
func TestPartitionHealNewestConfigWins(t *testing.T) {
	both(t, func(t *testing.T, onTotem bool) {
		c := New(scripted(onTotem, 3, false, "stop"))
		mustConverge(t, c)
		c.partition(0, 0, 1)
		mustRun(t, c, time.Second)
		c.configChange(c.nodes[2]) // minority: one change
		mustRun(t, c, 100*time.Millisecond)
		c.configChange(c.nodes[0]) // majority: two changes
		mustRun(t, c, 100*time.Millisecond)
		c.configChange(c.nodes[1])
		mustRun(t, c, 100*time.Millisecond)
		maj, min := c.nodes[0].ctl.CIB(), c.nodes[2].ctl.CIB()
		if epoch(maj) == epoch(min) {
			t.Fatalf("epochs %s and %s: the changes did not apply", epoch(maj), epoch(min))
		}
		want := epoch(maj)
		c.partition(0, 0, 0)
		mustConverge(t, c)
		for _, n := range c.nodes {
			if got := epoch(n.ctl.CIB()); got != want {
				t.Fatalf("node%d has epoch %s, want the majority's %s", n.id, got, want)
			}
		}
	})
}

// A conditional change based on an old version is refused on every node.
func TestConfigConflict(t *testing.T) {
	both(t, func(t *testing.T, onTotem bool) {
		c := New(scripted(onTotem, 3, false, "stop"))
		mustConverge(t, c)
		n := c.nodes[1]
		old := n.ctl.Version()
		c.configChange(c.nodes[0])
		mustRun(t, c, 100*time.Millisecond)
		xml := []byte(`<cib><configuration><crm_config/><nodes/><resources/><constraints/></configuration></cib>`)
		if _, err := n.ctl.ReplaceConfig(c.now, xml, &old); err != nil {
			t.Fatal(err)
		}
		c.process(n)
		mustRun(t, c, 100*time.Millisecond)
		if !strings.Contains(strings.Join(c.trace, "\n"), "configuration changed concurrently") {
			t.Fatalf("stale change not refused:\n%s", strings.Join(c.trace, "\n"))
		}
		if len(n.ctl.CIB().Config.Resources) == 0 {
			t.Fatal("the stale change was applied")
		}
	})
}

// A partition without quorum stops its resources (no-quorum-policy=stop)
// and the majority runs everything.
func TestNoQuorumStops(t *testing.T) {
	both(t, func(t *testing.T, onTotem bool) {
		c := New(scripted(onTotem, 3, false, "stop"))
		mustConverge(t, c)
		c.partition(1, 0, 0)
		mustRun(t, c, 2*time.Second)
		if r := running(c, 1); len(r) != 0 {
			t.Fatalf("node1 without quorum still runs %v", r)
		}
		total := len(running(c, 2)) + len(running(c, 3))
		if total != len(c.rscs) {
			t.Fatalf("majority runs %d of %d resources", total, len(c.rscs))
		}
		if st := c.nodes[0].ctl.Status(); st.DC != 0 || st.Quorate {
			t.Fatalf("node1 alone: %+v, want no DC", st)
		}
		if st := c.nodes[1].ctl.Status(); st.DC != 2 {
			t.Fatalf("majority's DC %d, want node2", st.DC)
		}
		c.partition(0, 0, 0)
		mustConverge(t, c)
	})
}

// no-quorum-policy=freeze: the minority keeps what it runs.
func TestNoQuorumFreeze(t *testing.T) {
	both(t, func(t *testing.T, onTotem bool) {
		c := New(scripted(onTotem, 3, false, "freeze"))
		mustConverge(t, c)
		before := running(c, 1)
		c.partition(1, 0, 0)
		mustRun(t, c, 2*time.Second)
		if got := running(c, 1); strings.Join(got, ",") != strings.Join(before, ",") {
			t.Fatalf("frozen node1 runs %v, ran %v", got, before)
		}
	})
}

// A node lost uncleanly is fenced before its resources start elsewhere; a
// fencing that keeps failing is retried and blocks the recovery, and once
// the node comes back cleanly nothing waits for it any more.
func TestFenceFailureRetriedUntilNodeReturns(t *testing.T) {
	both(t, func(t *testing.T, onTotem bool) {
		o := scripted(onTotem, 3, true, "stop")
		c := New(o)
		mustConverge(t, c)
		var victim int
		for id := 1; id <= 3; id++ {
			if len(running(c, id)) > 0 && !(len(running(c, id)) == 1 && running(c, id)[0] == "fence") {
				victim = id
				break
			}
		}
		if victim == 0 {
			t.Fatal("nothing runs")
		}
		lost := running(c, victim)
		c.o.fenceFails = true
		labels := []int{0, 0, 0}
		labels[victim-1] = 1
		c.partition(labels...)
		mustRun(t, c, 12*time.Second)
		if c.FenceAttempts < 2 {
			t.Fatalf("%d fencing attempts in 12 s, want retries", c.FenceAttempts)
		}
		for _, r := range lost {
			if r == "fence" {
				continue
			}
			for id := 1; id <= 3; id++ {
				if id != victim && c.nodes[id-1].running[r] {
					t.Fatalf("%s started on node%d while node%d was not fenced", r, id, victim)
				}
			}
		}
		attempts := c.FenceAttempts
		t.Logf("node%d (running %v) partitioned: %d fencing attempts failed in 12 s", victim, lost, attempts)
		c.partition(0, 0, 0)
		mustConverge(t, c)
		mustRun(t, c, 10*time.Second)
		if c.FenceAttempts > attempts+1 {
			t.Fatalf("fencing went on after node%d came back: %d attempts, %d before", victim, c.FenceAttempts, attempts)
		}
	})
}

// A node that joins is probed for every resource before anything runs
// there.
func TestJoinProbes(t *testing.T) {
	both(t, func(t *testing.T, onTotem bool) {
		c := New(scripted(onTotem, 3, false, "stop"))
		mustConverge(t, c)
		n := c.nodes[2]
		c.crash(n, "test")
		mustRun(t, c, 2*time.Second)
		start := len(c.trace)
		c.restart(n)
		mustConverge(t, c)
		probed := map[string]bool{}
		for _, l := range c.trace[start:] {
			if !strings.Contains(l, "node3 lrmd ") {
				continue
			}
			op := strings.Fields(l)[3]
			if strings.HasSuffix(op, "_monitor_0") {
				probed[strings.TrimSuffix(op, "_monitor_0")] = true
				continue
			}
			if len(probed) < len(c.rscs) {
				t.Fatalf("node3 ran %s before probing everything (%d of %d)", op, len(probed), len(c.rscs))
			}
		}
		if len(probed) != len(c.rscs) {
			t.Fatalf("node3 probed %d of %d resources", len(probed), len(c.rscs))
		}
	})
}

// A node that asks to shut down has its resources moved away, is allowed
// to leave, and leaves without being fenced.
func TestCleanShutdown(t *testing.T) {
	both(t, func(t *testing.T, onTotem bool) {
		c := New(scripted(onTotem, 3, true, "stop"))
		mustConverge(t, c)
		n := c.nodes[2]
		n.ctl.SetAttribute(c.now, "shutdown", fmt.Sprint(c.now.Unix()), false)
		c.process(n)
		for i := 0; i < 50 && !n.shutdownOK; i++ {
			mustRun(t, c, 100*time.Millisecond)
		}
		if !n.shutdownOK {
			t.Fatalf("node3 never allowed to shut down:\n%s", strings.Join(c.trace, "\n"))
		}
		if r := running(c, 3); len(r) != 0 {
			t.Fatalf("node3 allowed to leave while running %v", r)
		}
		c.crash(n, "clean shutdown")
		mustRun(t, c, 3*time.Second)
		if c.FenceAttempts != 0 {
			t.Fatalf("node3 fenced after a clean shutdown:\n%s", strings.Join(c.trace, "\n"))
		}
		if got := len(running(c, 1)) + len(running(c, 2)); got != len(c.rscs) {
			t.Fatalf("%d of %d resources run after node3 left", got, len(c.rscs))
		}
	})
}

// A resource removed from the configuration is stopped and its history
// erased on every node, also on a node of another partition that kept it
// running (no-quorum-policy=freeze) when the partition heals; added back
// (same definition), it runs again on exactly one node.
func TestRemovedResourceStoppedAndForgotten(t *testing.T) {
	both(t, func(t *testing.T, onTotem bool) {
		c := New(scripted(onTotem, 3, false, "freeze"))
		mustConverge(t, c)
		where := func(r string) []int {
			var on []int
			for _, n := range c.nodes {
				if n.running[r] {
					on = append(on, int(n.id))
				}
			}
			return on
		}
		gone := func(r string) {
			t.Helper()
			if w := where(r); len(w) != 0 {
				t.Fatalf("removed %s still runs on %v", r, w)
			}
			for _, n := range c.nodes {
				if h := histories(n.ctl.CIB())[r]; len(h) != 0 {
					t.Fatalf("node%d's CIB still holds the history of removed %s on %v", n.id, r, h)
				}
			}
		}
		c.resourceChange(c.nodes[0], "r0", false)
		mustConverge(t, c)
		gone("r0")
		c.resourceChange(c.nodes[1], "r0", true)
		mustConverge(t, c)
		if w := where("r0"); len(w) != 1 {
			t.Fatalf("r0 added back runs on %v", w)
		}

		w := where("r1")
		if len(w) != 1 {
			t.Fatalf("r1 runs on %v", w)
		}
		v := w[0]
		labels := []int{0, 0, 0}
		labels[v-1] = 1
		c.partition(labels...)
		mustRun(t, c, 2*time.Second)
		c.resourceChange(c.nodes[v%3], "r1", false) // a majority node
		mustRun(t, c, 2*time.Second)
		if !c.nodes[v-1].running["r1"] {
			t.Fatalf("frozen node%d stopped r1", v)
		}
		c.partition(0, 0, 0)
		mustConverge(t, c)
		gone("r1")
	})
}

// A resource whose agent changes (type Dummy → Dummy2) is stopped with the
// old agent, its history erased on every node (the plan's deletes) and
// started with the new one; the cluster then converges: the nodes whose
// history was erased are probed with the new agent without waiting for
// cluster-recheck-interval.
func TestAgentChangeReprobed(t *testing.T) {
	both(t, func(t *testing.T, onTotem bool) {
		c := New(scripted(onTotem, 3, false, "stop"))
		mustConverge(t, c)
		n := c.nodes[0]
		cfg := n.ctl.CIB().ConfigElement()
		for _, e := range cfg.Child("resources").Children {
			if e.ID() == "r0" {
				e.Attrs.Set("type", "Dummy2")
			}
		}
		c.submit(n, cfg, "r0 type Dummy2")
		mustConverge(t, c)
		for _, n := range c.nodes {
			for _, ns := range n.ctl.CIB().Status.Nodes {
				for _, r := range ns.Resources {
					if r.ID() == "r0" && r.Attrs.Value("type") != "Dummy2" {
						t.Fatalf("node%d: %s's history of r0 is of type %s", n.id, ns.Uname(), r.Attrs.Value("type"))
					}
				}
			}
		}
	})
}
