package crm_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"ringmaster/internal/clustertest"
	"ringmaster/internal/testutil"
)

const chaosTOML = `
[cluster]
stonith-enabled = false
no-quorum-policy = "stop"

[rsc_defaults]
resource-stickiness = 50
migration-threshold = 3
` + `
[[resource]]
id = "a"
agent = "builtin:dummy"
[[resource.op]]
name = "monitor"
interval = "500ms"

[[resource]]
id = "b"
agent = "builtin:dummy"
[[resource.op]]
name = "monitor"
interval = "500ms"

[[resource]]
id = "c"
agent = "builtin:dummy"
[[resource.op]]
name = "monitor"
interval = "500ms"

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
		var last string
		ok := false
		for try := 0; try < 100 && !ok; try++ {
			p := placement(c, up[0])
			last = fmt.Sprint(p)
			ok = true
			for _, r := range rscs {
				for i := 1; i <= 3; i++ {
					want := p[r] == fmt.Sprintf("n%d", i) && slices.Contains(up, i)
					if slices.Contains(up, i) && dummyRunning(c, i, r) != want {
						ok = false
					}
				}
			}
			if !ok {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if !ok {
			t.Fatalf("step %d (%s): crm status %s disagrees with the agents' state files", step, what, last)
		}
	}
}
