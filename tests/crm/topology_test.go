package crm_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"ringmaster/internal/clustertest"
	"ringmaster/internal/testutil"
)

// The classic topologies of the HA guides, as constraints, on 4 nodes
// running builtin:dummy resources (no root, no fencing: a "failed" node is
// a killed ringd whose run directory is wiped before it returns, as a
// reboot wipes /run).

// topology is one scenario: its resources and constraints, where they run
// at first, the nodes that fail, and where they run then.
type topology struct {
	name   string
	toml   string
	before map[string]string // resource -> node
	fail   []int
	after  func(place map[string]string) error
}

// dummies is a [[resource]] of builtin:dummy for each id, monitored every
// interval.
func dummies(interval string, ids ...string) string {
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "\n[[resource]]\nid = %q\nagent = \"builtin:dummy\"\n[[resource.op]]\nname = \"monitor\"\ninterval = %q\n", id, interval)
	}
	return b.String()
}

func loc(rsc, node string, score string) string {
	return fmt.Sprintf("\n[[location]]\nresource = %q\nnode = %q\nscore = %q\n", rsc, node, score)
}

const topoHeader = `
[cluster]
stonith-enabled = false
no-quorum-policy = "stop"
symmetric-cluster = true

[rsc_defaults]
resource-stickiness = 100
`

func expect(want map[string]string) func(map[string]string) error {
	return func(got map[string]string) error {
		for r, n := range want {
			if got[r] != n {
				return fmt.Errorf("%s on %q, want %s (placement %v)", r, got[r], n, got)
			}
		}
		return nil
	}
}

func TestTopologies(t *testing.T) {
	all := []string{"n1", "n2", "n3", "n4"}
	others := func(keep ...string) string {
		var b strings.Builder
		for _, n := range all {
			if !slices.Contains(keep, n) {
				b.WriteString(loc("", n, "-INFINITY"))
			}
		}
		return b.String()
	}
	// onlyOn confines rsc to nodes, preferring them in order.
	onlyOn := func(rsc string, nodes ...string) string {
		var b strings.Builder
		for i, n := range nodes {
			b.WriteString(loc(rsc, n, fmt.Sprint(100-50*i)))
		}
		b.WriteString(strings.ReplaceAll(others(nodes...), `resource = ""`, fmt.Sprintf("resource = %q", rsc)))
		return b.String()
	}
	scenarios := []topology{
		{
			name: "active/passive", toml: dummies("1s", "svc") + onlyOn("svc", "n1", "n2"),
			before: map[string]string{"svc": "n1"}, fail: []int{1},
			after: expect(map[string]string{"svc": "n2"}),
		},
		{
			name:   "N+1 (shared failover)",
			toml:   dummies("1s", "s1", "s2", "s3") + onlyOn("s1", "n1", "n4") + onlyOn("s2", "n2", "n4") + onlyOn("s3", "n3", "n4"),
			before: map[string]string{"s1": "n1", "s2": "n2", "s3": "n3"}, fail: []int{2},
			after: expect(map[string]string{"s1": "n1", "s2": "n4", "s3": "n3"}),
		},
		{
			name:   "N+M (two spares)",
			toml:   dummies("1s", "s1", "s2") + onlyOn("s1", "n1", "n3", "n4") + onlyOn("s2", "n2", "n4", "n3"),
			before: map[string]string{"s1": "n1", "s2": "n2"}, fail: []int{1, 2},
			after: expect(map[string]string{"s1": "n3", "s2": "n4"}),
		},
		{
			name:   "N-to-1 (one node takes every service)",
			toml:   dummies("1s", "s1", "s2", "s3") + onlyOn("s1", "n1", "n4") + onlyOn("s2", "n2", "n4") + onlyOn("s3", "n3", "n4"),
			before: map[string]string{"s1": "n1", "s2": "n2", "s3": "n3"}, fail: []int{1, 3},
			after: expect(map[string]string{"s1": "n4", "s2": "n2", "s3": "n4"}),
		},
		{
			name:   "N-to-N (every node runs and backs up services)",
			toml:   dummies("1s", "s1", "s2", "s3", "s4") + loc("s1", "n1", "100") + loc("s2", "n2", "100") + loc("s3", "n3", "100") + loc("s4", "n4", "100"),
			before: map[string]string{"s1": "n1", "s2": "n2", "s3": "n3", "s4": "n4"}, fail: []int{4},
			after: func(p map[string]string) error {
				per := map[string]int{}
				for _, r := range []string{"s1", "s2", "s3", "s4"} {
					if p[r] == "" || p[r] == "n4" {
						return fmt.Errorf("%s not running on a live node: %v", r, p)
					}
					per[p[r]]++
				}
				if p["s1"] != "n1" || p["s2"] != "n2" || p["s3"] != "n3" || per["n1"] > 2 || per["n2"] > 2 || per["n3"] > 2 {
					return fmt.Errorf("the survivors keep their services and share s4: %v", p)
				}
				return nil
			},
		},
	}
	// last_man_standing: after a failure settles, expected votes follow
	// the survivors, so a second failure leaves 2 of 3 (quorate).
	c := clustertest.New(t, clustertest.Options{Nodes: 4, Token: 300, Resources: "startup_wait = 2000",
		Quorum: "last_man_standing = true\nlast_man_standing_window = 1000"})
	c.StartAll()
	c.MustRing(deadline, []int{1, 2, 3, 4}, 1, 2, 3, 4)
	for _, sc := range scenarios {
		f := filepath.Join(c.Dir, "topology.toml")
		if err := os.WriteFile(f, []byte(topoHeader+sc.toml), 0o644); err != nil {
			t.Fatal(err)
		}
		mustCtl(t, c, 1, "crm", "apply", "-f", f)
		settled(t, c, 1)
		testutil.WaitFor(t, deadline, sc.name+": initial placement", func() bool { return expect(sc.before)(placement(c, 1)) == nil })
		up := []int{}
		for i := 1; i <= 4; i++ {
			if !slices.Contains(sc.fail, i) {
				up = append(up, i)
			}
		}
		alive := []int{1, 2, 3, 4}
		for _, i := range sc.fail {
			c.Kill(i)
			alive = slices.DeleteFunc(alive, func(x int) bool { return x == i })
			c.MustRing(deadline, alive, alive...)
			testutil.WaitFor(t, deadline, "expected votes to follow the survivors (last_man_standing)", func() bool {
				out, code := c.Ctl(alive[0], "quorum", "--json")
				var q struct {
					Expected int `json:"expected_votes"`
				}
				return code == 0 && json.Unmarshal([]byte(out), &q) == nil && q.Expected == len(alive)
			})
		}
		var last error
		testutil.WaitFor(t, deadline, sc.name+": placement after the failure", func() bool {
			last = sc.after(placement(c, up[0]))
			return last == nil
		})
		// Reboot the failed nodes: /run is empty again.
		for _, i := range sc.fail {
			if err := os.RemoveAll(filepath.Join(c.Node(i).Dir, "run")); err != nil {
				t.Fatal(err)
			}
			c.Start(i)
		}
		c.MustRing(deadline, []int{1, 2, 3, 4}, 1, 2, 3, 4)
		settled(t, c, 1)
		// Every resource runs where crm status says, and nowhere else.
		p := placement(c, 1)
		for r, n := range p {
			for i := 1; i <= 4; i++ {
				if want := fmt.Sprintf("n%d", i) == n; dummyRunning(c, i, r) != want {
					t.Fatalf("%s: %s's state file on n%d: %v, want %v (placement %v)", sc.name, r, i, !want, want, p)
				}
			}
		}
		// Clean up for the next scenario: stop everything.
		for r := range p {
			mustCtl(t, c, 1, "crm", "resource", "stop", r)
		}
		testutil.WaitFor(t, deadline, sc.name+": every resource stopped", func() bool {
			for _, n := range placement(c, 1) {
				if n != "" {
					return false
				}
			}
			return true
		})
	}
}

// placement maps each resource to its node ("" stopped) as node i sees it.
func placement(c *clustertest.Cluster, i int) map[string]string {
	st, ok := status(c, i)
	out := map[string]string{}
	if !ok {
		return out
	}
	for _, r := range st.Resources {
		if r.State == "started" && r.Node != nil {
			out[r.ID] = *r.Node
		} else {
			out[r.ID] = ""
		}
	}
	return out
}
