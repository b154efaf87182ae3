// Package crm_test runs the resource manager end to end: real ringd
// processes, ringctl as operators use it, real agents (builtin:dummy,
// builtin:vip, Debian's ocf:heartbeat:Dummy and fence_dummy).
package crm_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ringmaster/internal/clustertest"
	"ringmaster/internal/testutil"
)

// deadline bounds every wait on a condition (never a timing assertion).
const deadline = 60 * time.Second

type rscState struct {
	ID    string  `json:"id"`
	State string  `json:"state"`
	Node  *string `json:"node"`
	Group string  `json:"group"`
}

type crmStatus struct {
	DC         *string    `json:"dc"`
	Quorate    bool       `json:"quorate"`
	Transition int        `json:"transition"`
	Pending    int        `json:"pending_actions"`
	Resources  []rscState `json:"resources"`
	Nodes      []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"nodes"`
}

// status is `ringctl crm status --json` of node i (ok false when it does
// not answer).
func status(c *clustertest.Cluster, i int) (crmStatus, bool) {
	out, code := c.Ctl(i, "crm", "status", "--json")
	var st crmStatus
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		return st, false
	}
	return st, true
}

// where is the node running rsc as node i sees it ("" stopped, "?" no
// answer or another state).
func where(c *clustertest.Cluster, i int, rsc string) string {
	st, ok := status(c, i)
	if !ok {
		return "?"
	}
	for _, r := range st.Resources {
		if r.ID != rsc {
			continue
		}
		switch {
		case r.State == "stopped":
			return ""
		case r.State == "started" && r.Node != nil:
			return *r.Node
		}
	}
	return "?"
}

// groupOn waits until every rsc runs on one node, as node i sees it, and
// returns that node.
func groupOn(t *testing.T, c *clustertest.Cluster, i int, rscs ...string) string {
	t.Helper()
	return togetherOn(t, c, i, "", rscs...)
}

// togetherOn waits until every rsc runs on one node other than not, as
// node i sees it, and returns that node.
func togetherOn(t *testing.T, c *clustertest.Cluster, i int, not string, rscs ...string) string {
	t.Helper()
	var on string
	what := fmt.Sprintf("%v started together (node %d's view)", rscs, i)
	if not != "" {
		what = fmt.Sprintf("%v started together on a node other than %s (node %d's view)", rscs, not, i)
	}
	testutil.WaitFor(t, deadline, what, func() bool {
		on = where(c, i, rscs[0])
		if on == "" || on == "?" || on == not {
			return false
		}
		for _, r := range rscs[1:] {
			if where(c, i, r) != on {
				return false
			}
		}
		return true
	})
	return on
}

// settled waits until node i's partition has nothing to do: `ringctl crm
// wait` on node i (the scheduler plans nothing from its CIB, which holds
// every change node i made) and then a DC with no transition running.
// The DC's own state alone would pass right after a change, before the
// DC has delivered it.
func settled(t *testing.T, c *clustertest.Cluster, i int) {
	t.Helper()
	if out, code := c.Ctl(i, "crm", "wait", "--timeout", deadline.String()); code != 0 {
		t.Fatalf("ringctl crm wait on n%d: exit %d: %s", i, code, out)
	}
	testutil.WaitFor(t, deadline, fmt.Sprintf("node %d's partition to settle", i), func() bool {
		st, ok := status(c, i)
		if !ok || st.DC == nil {
			return false
		}
		// Only the DC knows its transition: ask it.
		dc, ok := status(c, nodeNum(*st.DC))
		return ok && dc.DC != nil && *dc.DC == *st.DC && dc.Transition == 0 && dc.Pending == 0
	})
}

func nodeNum(name string) int {
	var n int
	fmt.Sscanf(name, "n%d", &n)
	return n
}

// dummyRunning reports whether builtin:dummy rsc has its state file on
// node i (the agent's own truth, not the CIB's).
func dummyRunning(c *clustertest.Cluster, i int, rsc string) bool {
	_, err := os.Stat(filepath.Join(c.Node(i).Dir, "run", "dummy-"+rsc+".state"))
	return err == nil
}

func mustCtl(t *testing.T, c *clustertest.Cluster, i int, args ...string) string {
	t.Helper()
	out, code := c.Ctl(i, args...)
	if code != 0 {
		t.Fatalf("ringctl %s on n%d: exit %d: %s", strings.Join(args, " "), i, code, out)
	}
	return out
}

var groupTOML = `
[cluster]
stonith-enabled = false
no-quorum-policy = "stop"

[rsc_defaults]
resource-stickiness = 100
migration-threshold = 2
` + dummies("500ms", "db", "app") + `
[[group]]
id = "web"
members = ["db", "app"]
`

// TestGroupLifecycle: a group of builtin:dummy resources (no root) is
// placed, moved and cleared, recovers in place from a monitor failure up
// to migration-threshold and then moves, moves away from a node that
// stops cleanly, and stays where it is (stickiness) when that node returns.
func TestGroupLifecycle(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Nodes: 3, Token: 300, Resources: "startup_wait = 2000"})
	c.StartAll()
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	f := filepath.Join(c.Dir, "resources.toml")
	if err := os.WriteFile(f, []byte(groupTOML), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCtl(t, c, 1, "crm", "apply", "-f", f)
	h := groupOn(t, c, 1, "db", "app")
	hi := nodeNum(h)
	if !dummyRunning(c, hi, "db") || !dummyRunning(c, hi, "app") {
		t.Fatalf("crm status says the group runs on %s but its state files are not there", h)
	}
	for i := 1; i <= 3; i++ {
		if i != hi && (dummyRunning(c, i, "db") || dummyRunning(c, i, "app")) {
			t.Fatalf("the group runs on n%d as well as on %s", i, h)
		}
	}

	// move and clear: the group goes to the target and, with stickiness,
	// stays there after the constraint is gone.
	target := hi%3 + 1
	// --wait returns once the move is done: the agents' own state says so
	// at once, with no wait of the test's.
	mustCtl(t, c, 2, "crm", "resource", "move", "web", fmt.Sprintf("n%d", target), "--wait="+deadline.String())
	if !dummyRunning(c, target, "db") || !dummyRunning(c, target, "app") || dummyRunning(c, hi, "db") || dummyRunning(c, hi, "app") {
		t.Fatalf("crm resource move --wait returned before the group was moved from n%d to n%d", hi, target)
	}
	testutil.WaitFor(t, deadline, "the group on the move target", func() bool {
		return where(c, 1, "db") == fmt.Sprintf("n%d", target) && where(c, 1, "app") == fmt.Sprintf("n%d", target)
	})
	mustCtl(t, c, 3, "crm", "resource", "clear", "web")
	settled(t, c, 1)
	if got := groupOn(t, c, 1, "db", "app"); got != fmt.Sprintf("n%d", target) {
		t.Fatalf("after clear the group moved to %s; stickiness should keep it on n%d", got, target)
	}
	if !dummyRunning(c, target, "db") || dummyRunning(c, hi, "db") {
		t.Fatalf("after the move the state files disagree with crm status")
	}

	// A monitor failure restarts the resource in place (fail count 1);
	// the second reaches migration-threshold = 2 and the group moves.
	if err := os.Remove(filepath.Join(c.Node(target).Dir, "run", "dummy-db.state")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, deadline, "db restarted in place after its monitor failed", func() bool {
		return dummyRunning(c, target, "db")
	})
	settled(t, c, 1)
	if got := groupOn(t, c, 1, "db", "app"); got != fmt.Sprintf("n%d", target) {
		t.Fatalf("after one monitor failure the group moved to %s; it should restart on n%d", got, target)
	}
	if err := os.Remove(filepath.Join(c.Node(target).Dir, "run", "dummy-db.state")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, deadline, "the group away from the node that failed twice", func() bool {
		on := where(c, 1, "db")
		return on != "" && on != "?" && on != fmt.Sprintf("n%d", target) && where(c, 1, "app") == on
	})
	out := mustCtl(t, c, 1, "crm", "status")
	if !strings.Contains(out, "Failed Resource Actions") || !strings.Contains(out, "db") {
		t.Errorf("crm status does not list the failed monitor:\n%s", out)
	}
	mustCtl(t, c, 1, "crm", "resource", "cleanup", "db")

	// Clean stop of the holder: the group moves before the node leaves.
	settled(t, c, 1)
	h = groupOn(t, c, 1, "db", "app")
	hi = nodeNum(h)
	other := hi%3 + 1
	if err := c.Stop(hi); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, deadline, "the stopped node's ringd to exit", func() bool { return !c.Node(hi).Running() })
	if dummyRunning(c, hi, "db") || dummyRunning(c, hi, "app") {
		t.Fatalf("%s left cleanly with its resources still running", h)
	}
	nh := groupOn(t, c, other, "db", "app")
	if nh == h {
		t.Fatalf("the group is still reported on the stopped node %s", h)
	}
	// The node returns; stickiness keeps the group where it is.
	c.Start(hi)
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	settled(t, c, hi)
	if got := groupOn(t, c, hi, "db", "app"); got != nh {
		t.Fatalf("the group moved to %s when %s returned; stickiness should keep it on %s", got, h, nh)
	}
	for i := 1; i <= 3; i++ {
		if want := fmt.Sprintf("n%d", i) == nh; dummyRunning(c, i, "db") != want {
			t.Fatalf("db's state file on n%d: %v, want %v (group on %s)", i, !want, want, nh)
		}
	}
}

// requireAgents fails in CI and skips elsewhere without Debian's agents.
func requireAgents(t *testing.T) {
	t.Helper()
	missing := ""
	if _, err := os.Stat("/usr/lib/ocf/resource.d/heartbeat/Dummy"); err != nil {
		missing = "resource-agents"
	}
	if _, err := exec.LookPath("fence_dummy"); err != nil {
		missing += " fence-agents"
	}
	if missing == "" {
		return
	}
	if testutil.InCI() {
		t.Fatalf("Debian's %s must be installed in CI (.ci/run installs them)", missing)
	}
	t.Skipf("Debian's %s not installed", missing)
}

const fencedCIB = `<cib admin_epoch="0" epoch="1" num_updates="0" validate-with="pacemaker-3.7">
  <configuration>
    <crm_config><cluster_property_set id="opts">
      <nvpair id="o1" name="stonith-enabled" value="true"/>
      <nvpair id="o2" name="no-quorum-policy" value="stop"/>
    </cluster_property_set></crm_config>
    <nodes/>
    <resources>
      <primitive id="fence" class="stonith" type="fence_dummy">
        <instance_attributes id="fence-ia">
          <nvpair id="fence-hosts" name="pcmk_host_list" value="n1 n2 n3"/>
          <nvpair id="fence-file" name="status_file" value="%s"/>
        </instance_attributes>
      </primitive>
      <group id="web">
        <primitive id="vip" class="builtin" type="vip">
          <instance_attributes id="vip-ia">
            <nvpair id="vip-ip" name="ip" value="%s"/>
            <nvpair id="vip-nm" name="cidr_netmask" value="24"/>
          </instance_attributes>
          <operations><op id="vip-mon" name="monitor" interval="1s" timeout="5s"/></operations>
        </primitive>
        <primitive id="app" class="ocf" provider="heartbeat" type="Dummy">
          <operations><op id="app-mon" name="monitor" interval="1s" timeout="5s"/></operations>
        </primitive>
      </group>
    </resources>
    <rsc_defaults><meta_attributes id="rd"><nvpair id="rd1" name="resource-stickiness" value="100"/></meta_attributes></rsc_defaults>
    <constraints/>
  </configuration>
  <status/>
</cib>
`

// fencedGroup starts 3 namespaced nodes (udp, token 200) and imports
// fencedCIB through node i; it returns the cluster and the VIP.
func fencedGroup(t *testing.T, i int) (*clustertest.Cluster, string) {
	t.Helper()
	c := nsCluster(t)
	vip := strings.TrimSuffix(c.Node(1).Addr, ".1") + ".100"
	f := filepath.Join(c.Dir, "cib.xml")
	if err := os.WriteFile(f, fmt.Appendf(nil, fencedCIB, filepath.Join(c.Dir, "fence.status"), vip), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCtl(t, c, i, "crm", "import", f)
	return c, vip
}

// vipHolder is the node whose namespace holds ip ("" none, "many" more
// than one).
func vipHolder(c *clustertest.Cluster, ip string) string {
	holder := ""
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		out, err := exec.Command("ip", "-n", n.NS, "-4", "addr", "show").CombinedOutput()
		if err == nil && strings.Contains(string(out), " "+ip+"/") {
			if holder != "" {
				return "many"
			}
			holder = fmt.Sprintf("n%d", n.ID)
		}
	}
	return holder
}

// TestFailoverWithFencing: 3 nodes in network namespaces (udp multicast,
// token 200) run a group {builtin:vip, ocf:heartbeat:Dummy} with Debian's
// fence_dummy. The holder dies: it is fenced (history on every node) and
// the group starts on another node. Then another node dies: the last one
// has no quorum and stops the group. The VIP is never on two nodes.
func TestFailoverWithFencing(t *testing.T) {
	c, vip := fencedGroup(t, 1)
	h := groupOn(t, c, 1, "vip", "app")
	testutil.WaitFor(t, deadline, "the VIP on "+h, func() bool { return vipHolder(c, vip) == h })

	hi := nodeNum(h)
	killed := time.Now()
	c.Kill(hi)
	c.SetLink(hi, false)
	var nh string
	testutil.WaitFor(t, deadline, "the VIP on another node", func() bool {
		nh = vipHolder(c, vip)
		if nh == "many" {
			t.Fatalf("the VIP is on two nodes")
		}
		return nh != "" && nh != h
	})
	t.Logf("VIP moved %s -> %s in %v (token 200, fenced first)", h, nh, time.Since(killed).Round(time.Millisecond))
	ni := nodeNum(nh)
	for i := 1; i <= 3; i++ {
		if i == hi {
			continue
		}
		testutil.WaitFor(t, deadline, fmt.Sprintf("n%d's fencing history to show %s fenced", i, h), func() bool {
			out, code := c.Ctl(i, "stonith", "history", "--json")
			var hist []struct{ Target, Result string }
			return code == 0 && json.Unmarshal([]byte(out), &hist) == nil && len(hist) > 0 &&
				hist[len(hist)-1].Target == h && hist[len(hist)-1].Result == "success"
		})
	}
	if got := groupOn(t, c, ni, "vip", "app"); got != nh {
		t.Fatalf("crm status on %s says the group is on %s, the VIP is on %s", nh, got, nh)
	}

	// Quorum loss: the survivor alone stops the group.
	o := 6 - hi - ni
	c.Kill(o)
	c.SetLink(o, false)
	testutil.WaitFor(t, deadline, "the group stopped on quorum loss", func() bool {
		return vipHolder(c, vip) == "" && where(c, ni, "vip") == "" && where(c, ni, "app") == ""
	})
}

// ocfDummyRunning reports whether ocf:heartbeat:Dummy rsc has its state
// file on node i (HA_RSCTMP is the node's run_dir/rsctmp).
func ocfDummyRunning(c *clustertest.Cluster, i int, rsc string) bool {
	_, err := os.Stat(filepath.Join(c.Node(i).Dir, "run", "rsctmp", "Dummy-"+rsc+".state"))
	return err == nil
}

// TestPartitionHeals: the holder of the group is cut off (a 1+2 split).
// Alone it has no quorum and stops the group; the majority fences it and
// starts the group. After the split heals, every node agrees and the
// group is active exactly once, checked in the agents' own state on every
// node.
func TestPartitionHeals(t *testing.T) {
	c, vip := fencedGroup(t, 2)
	h := groupOn(t, c, 1, "vip", "app")
	hi := nodeNum(h)
	rest := []int{}
	for i := 1; i <= 3; i++ {
		if i != hi {
			rest = append(rest, i)
		}
	}
	c.SetLink(hi, false)
	c.MustRing(deadline, rest, rest...)
	// fence_dummy does not power anything off: the cut-off node stops the
	// group itself (no quorum), the majority starts it after fencing.
	var on string
	testutil.WaitFor(t, deadline, "the majority to run the group and the cut-off node to stop it", func() bool {
		on = where(c, rest[0], "app")
		return on != "" && on != "?" && on != h && where(c, rest[0], "vip") == on && !ocfDummyRunning(c, hi, "app") &&
			vipHolder(c, vip) == on
	})
	c.SetLink(hi, true)
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	for i := 1; i <= 3; i++ {
		settled(t, c, i)
	}
	on = groupOn(t, c, 1, "vip", "app")
	for i := 1; i <= 3; i++ {
		if got := groupOn(t, c, i, "vip", "app"); got != on {
			t.Fatalf("after the heal n1 sees the group on %s, n%d on %s", on, i, got)
		}
		if want := fmt.Sprintf("n%d", i) == on; ocfDummyRunning(c, i, "app") != want {
			t.Fatalf("after the heal app's state file on n%d: %v, want %v (group on %s)", i, !want, want, on)
		}
	}
	if got := vipHolder(c, vip); got != on {
		t.Fatalf("after the heal the VIP is on %q, the group on %s", got, on)
	}
}

// TestFullClusterRestart: every node stops (cleanly, one after the other)
// and starts again; the configuration comes back from each node's
// state_dir and the group runs again, once.
func TestFullClusterRestart(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Nodes: 3, Token: 300, Resources: "startup_wait = 2000"})
	c.StartAll()
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	f := filepath.Join(c.Dir, "resources.toml")
	if err := os.WriteFile(f, []byte(groupTOML), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCtl(t, c, 1, "crm", "apply", "-f", f)
	groupOn(t, c, 1, "db", "app")
	for i := 1; i <= 3; i++ {
		if err := c.Stop(i); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, deadline, fmt.Sprintf("n%d to exit", i), func() bool { return !c.Node(i).Running() })
	}
	for i := 1; i <= 3; i++ {
		if dummyRunning(c, i, "db") || dummyRunning(c, i, "app") {
			t.Fatalf("n%d still runs the group after the whole cluster stopped cleanly", i)
		}
	}
	c.StartAll()
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	on := groupOn(t, c, 2, "db", "app")
	for i := 1; i <= 3; i++ {
		if want := fmt.Sprintf("n%d", i) == on; dummyRunning(c, i, "db") != want {
			t.Fatalf("after the restart db's state file on n%d: %v, want %v (group on %s)", i, !want, want, on)
		}
	}
}
