package crm_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"ringmaster/internal/clustertest"
	"ringmaster/internal/testutil"
)

var chaosTOML = `
[cluster]
stonith-enabled = false
no-quorum-policy = "stop"

[rsc_defaults]
resource-stickiness = 50
migration-threshold = 3
` + dummies("500ms", "a", "b", "c") + `
[[resource]]
id = "d"
agent = "builtin:dummy"

[[group]]
id = "g"
members = ["c", "d"]

[[colocation]]
resource = "b"
with = "a"
score = "-INFINITY"
`

// TestChaos (RINGMASTER_CRM_CHAOS=N steps, off by default): random kills,
// clean stops, restarts ("reboots": the run directory is wiped), moves,
// bans, clears and monitor failures on a 3-node cluster of builtin:dummy
// resources. After each step, once the cluster has settled, every resource
// the quorate partition reports started runs on exactly that node (its
// state file), and nowhere else.
func TestChaos(t *testing.T) {
	steps, _ := strconv.Atoi(os.Getenv("RINGMASTER_CRM_CHAOS"))
	if steps <= 0 {
		t.Skip("RINGMASTER_CRM_CHAOS=N runs N random steps")
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("RINGMASTER_CRM_CHAOS_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	c := clustertest.New(t, clustertest.Options{Nodes: 3, Token: 300, Resources: "startup_wait = 2000"})
	c.StartAll()
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	f := filepath.Join(c.Dir, "chaos.toml")
	if err := os.WriteFile(f, []byte(chaosTOML), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCtl(t, c, 1, "crm", "apply", "-f", f)
	rscs := []string{"a", "b", "c", "d"}
	up := []int{1, 2, 3}
	for step := 0; step < steps; step++ {
		var what string
		switch k := rng.IntN(8); {
		case k == 0 && len(up) == 3:
			i := up[rng.IntN(len(up))]
			what = fmt.Sprintf("kill -9 n%d", i)
			c.Kill(i)
			up = slices.DeleteFunc(up, func(x int) bool { return x == i })
		case k == 1 && len(up) == 3:
			i := up[rng.IntN(len(up))]
			what = fmt.Sprintf("clean stop of n%d", i)
			if err := c.Stop(i); err != nil {
				t.Fatal(err)
			}
			testutil.WaitFor(t, deadline, what, func() bool { return !c.Node(i).Running() })
			up = slices.DeleteFunc(up, func(x int) bool { return x == i })
		case k <= 2 && len(up) < 3:
			for i := 1; i <= 3; i++ {
				if !slices.Contains(up, i) {
					what = fmt.Sprintf("reboot n%d", i)
					_ = os.RemoveAll(filepath.Join(c.Node(i).Dir, "run"))
					c.Start(i)
					up = append(up, i)
					slices.Sort(up)
					break
				}
			}
		case k == 3:
			r, n := rscs[rng.IntN(2)], up[rng.IntN(len(up))]
			what = fmt.Sprintf("move %s n%d", r, n)
			c.Ctl(up[0], "crm", "resource", "move", r, fmt.Sprintf("n%d", n))
		case k == 4:
			r, n := "g", up[rng.IntN(len(up))]
			what = fmt.Sprintf("ban %s n%d", r, n)
			c.Ctl(up[0], "crm", "resource", "ban", r, fmt.Sprintf("n%d", n))
		case k == 5:
			what = "clear all"
			for _, r := range []string{"a", "b", "g"} {
				c.Ctl(up[0], "crm", "resource", "clear", r)
			}
		case k == 6:
			// A monitor failure: the state file of a running resource goes.
			p := placement(c, up[0])
			r := rscs[rng.IntN(3)]
			if n := p[r]; n != "" {
				what = "monitor failure of " + r + " on " + n
				_ = os.Remove(filepath.Join(c.Node(nodeNum(n)).Dir, "run", "dummy-"+r+".state"))
			}
		default:
			what = "cleanup all"
			for _, r := range rscs {
				c.Ctl(up[0], "crm", "resource", "cleanup", r)
			}
		}
		if what == "" {
			continue
		}
		t.Logf("step %d: %s (up %v)", step, what, up)
		c.MustRing(deadline, up, up...)
		if len(up) < 2 {
			continue // no quorum: nothing to check but that it stops (below)
		}
		settled(t, c, up[0])
		if p, ok := agentsAgree(c, up, rscs); !ok {
			t.Fatalf("step %d (%s): crm status %v disagrees with the agents' state files", step, what, p)
		}
	}
}

// TestChaosFenced (RINGMASTER_CRM_CHAOS=N, root): the same with fencing in
// network namespaces. A builtin:fence-script powers a node off (kills
// everything in its namespace); steps cut a node's link (the majority
// fences it), kill nodes, reboot powered-off nodes, move resources and
// fail monitors. After each step, on every running node of the quorate
// partition, the agents' state files agree with crm status.
func TestChaosFenced(t *testing.T) {
	steps, _ := strconv.Atoi(os.Getenv("RINGMASTER_CRM_CHAOS"))
	if steps <= 0 {
		t.Skip("RINGMASTER_CRM_CHAOS=N runs N random steps")
	}
	testutil.RequireRoot(t)
	requireAgents(t)
	// token 1000: on a loaded 2-core machine a shorter token sees process
	// stalls as failures (and, correctly, fences the stalled node).
	c := clustertest.New(t, clustertest.Options{Nodes: 3, Transport: "udp", Token: 1000, ExtraTotem: "token_coefficient = 0",
		Netns: true, Resources: "startup_wait = 2000"})
	c.StartAll()
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("RINGMASTER_CRM_CHAOS_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	f := filepath.Join(c.Dir, "chaos.toml")
	cfg := strings.Replace(chaosTOML, "stonith-enabled = false", "stonith-enabled = true", 1) + poweroffDevice(c)
	if err := os.WriteFile(f, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCtl(t, c, 1, "crm", "apply", "-f", f)
	rscs := []string{"a", "b", "c", "d"}
	running := func() []int {
		var out []int
		for i := 1; i <= 3; i++ {
			if c.Node(i).Running() {
				out = append(out, i)
			}
		}
		return out
	}
	for step := 0; step < steps; step++ {
		up := running()
		var what string
		switch k := rng.IntN(6); {
		case k == 0 && len(up) == 3:
			i := up[rng.IntN(3)]
			what = fmt.Sprintf("cut n%d's link (it gets fenced)", i)
			c.SetLink(i, false)
			testutil.WaitFor(t, deadline, "a node powered off by fencing", func() bool { return len(running()) < 3 })
		case k == 1 && len(up) == 3:
			i := up[rng.IntN(3)]
			what = fmt.Sprintf("kill -9 n%d", i)
			c.Kill(i)
			c.SetLink(i, false)
		case k <= 2 && len(up) < 3:
			for i := 1; i <= 3; i++ {
				if !c.Node(i).Running() {
					what = fmt.Sprintf("reboot n%d", i)
					_ = os.RemoveAll(filepath.Join(c.Node(i).Dir, "run"))
					c.SetLink(i, true)
					c.Start(i)
					break
				}
			}
		case k == 3:
			r, n := rscs[rng.IntN(2)], up[rng.IntN(len(up))]
			what = fmt.Sprintf("move %s n%d", r, n)
			c.Ctl(up[0], "crm", "resource", "move", r, fmt.Sprintf("n%d", n))
		case k == 4:
			p := placement(c, up[0])
			r := rscs[rng.IntN(3)]
			if n := p[r]; n != "" {
				what = "monitor failure of " + r + " on " + n
				_ = os.Remove(filepath.Join(c.Node(nodeNum(n)).Dir, "run", "dummy-"+r+".state"))
			}
		default:
			what = "clear and cleanup"
			for _, r := range []string{"a", "b", "g"} {
				c.Ctl(up[0], "crm", "resource", "clear", r)
			}
			for _, r := range rscs {
				c.Ctl(up[0], "crm", "resource", "cleanup", r)
			}
		}
		if what == "" {
			continue
		}
		up = running()
		t.Logf("step %d: %s (running %v)", step, what, up)
		c.MustRing(deadline, up, up...)
		settled(t, c, up[0])
		if p, ok := agentsAgree(c, up, rscs); !ok {
			t.Fatalf("step %d (%s): crm status %v disagrees with the agents' state files", step, what, p)
		}
	}
}

// agentsAgree waits (boundedly) until, on every node of up, each
// builtin:dummy of rscs has its state file exactly where crm status (as
// up[0] sees it) says it runs; it returns the last placement seen.
func agentsAgree(c *clustertest.Cluster, up []int, rscs []string) (map[string]string, bool) {
	var p map[string]string
	for try := 0; try < 100; try++ {
		p = placement(c, up[0])
		ok := true
		for _, r := range rscs {
			for _, i := range up {
				if dummyRunning(c, i, r) != (p[r] == fmt.Sprintf("n%d", i)) {
					ok = false
				}
			}
		}
		if ok {
			return p, true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p, false
}
