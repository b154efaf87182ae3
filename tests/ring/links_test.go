package ring

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/internal/clustertest"
	"ringmaster/internal/testutil"
)

// TestRedundantLinks is issue 16's "done when" for redundant links, on
// real ringd processes in network namespaces with two bridges (two links
// per node), for udpu and for udp (a multicast group per link):
//
//   - both links to every peer come up (heartbeats);
//   - cutting link 0's bridge while `pload verify` runs changes no ring ID
//     on any node and the run stays clean (nothing lost, duplicated or
//     reordered): traffic moves to link 1;
//   - cutting link 1's bridge too leaves every node alone (the membership
//     changes only when every link to a node is lost);
//   - restoring link 1 brings its links back up (ringctl status shows
//     them) and the ring re-forms; restoring link 0 brings it back too.
func TestRedundantLinks(t *testing.T) {
	for _, tr := range []string{"udpu", "udp"} {
		t.Run(tr, func(t *testing.T) {
			c := clustertest.New(t, clustertest.Options{Nodes: 3, Transport: tr, Token: 1000, Netns: true, Links: 2})
			c.StartAll()
			all := []int{1, 2, 3}
			c.MustRing(deadline, all, all...)
			waitLinkStates(t, c, map[int]string{0: "up", 1: "up"})
			before := ringIDs(t, c, 1, 2, 3)

			pload := exec.Command(c.Bin+"/pload", "verify", "--json", "--size", "200", "--rate", "2000", "--duration", "5s",
				"--socket", c.Node(1).Socket, "--socket", c.Node(2).Socket, "--socket", c.Node(3).Socket)
			var out strings.Builder
			pload.Stdout, pload.Stderr = &out, &out
			require.NoError(t, pload.Start())
			done := make(chan error, 1)
			go func() { done <- pload.Wait() }()
			// Cut link 0 once the load is flowing.
			start := c.Status(1).Counters["messages_in"]
			testutil.WaitFor(t, deadline, "pload traffic", func() bool {
				st := c.Status(1)
				return st != nil && st.Counters["messages_in"] > start+500
			})
			c.SetBridge(0, false)
			waitLinkStates(t, c, map[int]string{0: "down", 1: "up"})
			select {
			case err := <-done:
				require.NoError(t, err, "pload verify across the cut of link 0:\n%s", out.String())
			case <-time.After(deadline):
				_ = pload.Process.Kill()
				t.Fatalf("pload verify did not finish:\n%s", out.String())
			}
			var v struct {
				Sent       int  `json:"sent"`
				OrderOK    bool `json:"order_ok"`
				Lost       int  `json:"lost"`
				Duplicates int  `json:"duplicates"`
			}
			require.NoError(t, json.Unmarshal([]byte(out.String()), &v), out.String())
			assert.True(t, v.OrderOK && v.Lost == 0 && v.Duplicates == 0 && v.Sent > 0, "pload verify: %s", out.String())
			assert.Equal(t, before, ringIDs(t, c, 1, 2, 3), "losing one link must not change the membership")
			for i := 1; i <= 3; i++ {
				st := c.Status(i)
				require.NotNil(t, st)
				assert.Positive(t, st.Counters["link_down_events"], "node %d counted no link down", i)
			}

			// Both links cut: every node is alone.
			c.SetBridge(1, false)
			for i := 1; i <= 3; i++ {
				c.MustRing(deadline, []int{i}, i)
			}

			// Link 1 back: its links come up, the ring re-forms.
			c.SetBridge(1, true)
			c.MustRing(deadline, all, all...)
			waitLinkStates(t, c, map[int]string{0: "down", 1: "up"})
			status, code := c.Ctl(1, "status")
			require.Zero(t, code, status)
			assert.Regexp(t, `link 1  up +10\.\d+\.1\.1:\d+ -> 10\.\d+\.1\.2:\d+`, status)
			assert.Regexp(t, `link 0  down +10\.\d+\.0\.1:\d+ -> 10\.\d+\.0\.3:\d+`, status)

			// Link 0 back too, and preferred again (same priority:
			// the lower number), with the ring untouched.
			formed := ringIDs(t, c, 1, 2, 3)
			c.SetBridge(0, true)
			waitLinkStates(t, c, map[int]string{0: "up", 1: "up"})
			assert.Equal(t, formed, ringIDs(t, c, 1, 2, 3), "a link coming back must not change the membership")
		})
	}
}

// waitLinkStates waits until every node reports, for each link in want,
// that state towards every other node.
func waitLinkStates(t *testing.T, c *clustertest.Cluster, want map[int]string) {
	t.Helper()
	var last string
	ok := func() bool {
		for i := 1; i <= len(c.Nodes); i++ {
			st := c.Status(i)
			if st == nil {
				last = fmt.Sprintf("node %d: no status", i)
				return false
			}
			n := 0
			for _, l := range st.Links {
				if w, ok := want[l.Link]; ok {
					if l.State != w {
						last = fmt.Sprintf("node %d: %+v", i, st.Links)
						return false
					}
					n++
				}
			}
			if n != len(want)*(len(c.Nodes)-1) {
				last = fmt.Sprintf("node %d: %+v", i, st.Links)
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(deadline)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("links never reached %v: %s", want, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
