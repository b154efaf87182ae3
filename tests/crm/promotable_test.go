package crm_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"ringmaster/internal/clustertest"
	"ringmaster/internal/testutil"
)

const statefulTOML = `
[cluster]
stonith-enabled = false
no-quorum-policy = "stop"

[[resource]]
id = "db"
agent = "ocf:pacemaker:Stateful"
[[resource.op]]
name = "monitor"
interval = "1s"
role = "Promoted"
[[resource.op]]
name = "monitor"
interval = "2s"
role = "Unpromoted"

[[clone]]
id = "db-clone"
resource = "db"
promotable = true
meta = { promoted-max = 1, notify = true }
`

// roles maps each node to db's role there ("promoted", "unpromoted"), as
// node i sees it.
func roles(c *clustertest.Cluster, i int) map[string]string {
	out, code := c.Ctl(i, "crm", "status", "--json")
	var st struct {
		Resources []struct {
			ID    string  `json:"id"`
			State string  `json:"state"`
			Node  *string `json:"node"`
		} `json:"resources"`
	}
	m := map[string]string{}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		return m
	}
	for _, r := range st.Resources {
		if r.ID == "db" && r.Node != nil {
			m[*r.Node] = r.State
		}
	}
	return m
}

func promotedOn(m map[string]string) (node string, promoted, unpromoted int) {
	for n, s := range m {
		switch s {
		case "promoted":
			node = n
			promoted++
		case "unpromoted":
			unpromoted++
		}
	}
	return node, promoted, unpromoted
}

// TestPromotableStateful: Debian's ocf:pacemaker:Stateful, unchanged, as a
// promotable clone on 3 nodes in network namespaces. It sets its promotion score with
// crm_attribute --promotion, which ringctl answers (HA_SBIN_DIR); one node
// is promoted, the others unpromoted. The promoted node is killed and
// another one is promoted.
func TestPromotableStateful(t *testing.T) {
	if _, err := os.Stat("/usr/lib/ocf/resource.d/pacemaker/Stateful"); err != nil {
		if testutil.InCI() {
			t.Fatal("ocf:pacemaker:Stateful must be installed in CI (pacemaker-resource-agents)")
		}
		t.Skip("ocf:pacemaker:Stateful not installed (pacemaker-resource-agents)")
	}
	testutil.RequireRoot(t)
	c := clustertest.New(t, clustertest.Options{Nodes: 3, Transport: "udp", Token: 300, ExtraTotem: "token_coefficient = 0",
		Netns: true, Resources: "startup_wait = 2000"})
	c.StartAll()
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	f := filepath.Join(c.Dir, "stateful.toml")
	if err := os.WriteFile(f, []byte(statefulTOML), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCtl(t, c, 1, "crm", "apply", "-f", f)
	var p string
	testutil.WaitFor(t, deadline, "one promoted and two unpromoted instances", func() bool {
		node, pr, un := promotedOn(roles(c, 1))
		p = node
		return pr == 1 && un == 2
	})
	pi := nodeNum(p)
	other := pi%3 + 1
	killed := time.Now()
	c.Kill(pi)
	c.SetLink(pi, false)
	var np string
	testutil.WaitFor(t, deadline, "another node promoted", func() bool {
		node, pr, un := promotedOn(roles(c, other))
		np = node
		return pr == 1 && un == 1 && node != p
	})
	t.Logf("promoted %s killed; %s promoted %v later (token 300, no fencing)", p, np, time.Since(killed).Round(time.Millisecond))
}
