package ring

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
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
//
// The "-ipv6" variants put link 1 on IPv6 (fd00:S:1::i, link 0 stays on
// IPv4): the same must hold with the traffic on IPv6 after link 0's cut,
// for udpu and for udp (an IPv6 group per link, ff18::/96).
func TestRedundantLinks(t *testing.T) {
	for _, tc := range []struct {
		name, tr string
		ipv6     bool // link 1 on IPv6
	}{{"udpu", "udpu", false}, {"udp", "udp", false}, {"udpu-ipv6", "udpu", true}, {"udp-ipv6", "udp", true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := clustertest.New(t, clustertest.Options{Nodes: 3, Transport: tc.tr, Token: 1000, Netns: true, Links: 2})
			if tc.ipv6 {
				linkToIPv6(t, c, 1)
			}
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
			start := c.MustStatus(t, 1).Counters["messages_in"]
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
				st := c.MustStatus(t, i)
				assert.Positive(t, st.Counters["link_down_events"], "node %d counted no link down", i)
				if tc.ipv6 {
					assert.Zero(t, st.Counters["rejected_bad_address"], "node %d rejected IPv6 datagrams as from a bad address", i)
				}
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
			assert.Regexp(t, linkLine(c, 1, "up", 1, 2), status)
			assert.Regexp(t, linkLine(c, 0, "down", 1, 3), status)

			// Link 0 back too, and preferred again (same priority:
			// the lower number), with the ring untouched.
			formed := ringIDs(t, c, 1, 2, 3)
			c.SetBridge(0, true)
			waitLinkStates(t, c, map[int]string{0: "up", 1: "up"})
			assert.Equal(t, formed, ringIDs(t, c, 1, 2, 3), "a link coming back must not change the membership")
		})
	}
}

// linkLine matches ringctl status's line for link k from node a to node
// b in state: "link 1  up    [fd00:142:1::1]:20001 -> [fd00:142:1::2]:20001".
func linkLine(c *clustertest.Cluster, k int, state string, a, b int) string {
	ep := func(i int) string {
		addr := c.Node(i).LinkAddrs[k]
		if strings.Contains(addr, ":") {
			addr = "[" + addr + "]"
		}
		return regexp.QuoteMeta(addr) + `:\d+`
	}
	return fmt.Sprintf(`link %d  %s +%s -> %s`, k, state, ep(a), ep(b))
}

// linkToIPv6 moves link k of a namespaced cluster (not started yet) to
// IPv6: each node gets fd00:S:K::i/64 next to its 10.S.K.i on the same
// interface (nodad: usable at once, no duplicate address detection to
// wait for), and every node's configuration names it as ringK_addr. The
// IPv4 address stays (the metrics listener of link 0 uses it).
func linkToIPv6(t *testing.T, c *clustertest.Cluster, k int) {
	t.Helper()
	repl := []string{}
	for _, n := range c.Nodes {
		v4 := n.LinkAddrs[k]
		var sub, kk, i int
		if _, err := fmt.Sscanf(v4, "10.%d.%d.%d", &sub, &kk, &i); err != nil || kk != k {
			t.Fatalf("node %d: link %d address %q is not 10.S.%d.I", n.ID, k, v4, k)
		}
		out, err := exec.Command("ip", "-n", n.NS, "-o", "-4", "addr", "show", "to", v4).CombinedOutput()
		f := strings.Fields(string(out))
		if err != nil || len(f) < 2 {
			t.Fatalf("ip -n %s addr show to %s: %v %s", n.NS, v4, err, out)
		}
		v6 := fmt.Sprintf("fd00:%d:%d::%d", sub, k, i)
		if out, err := exec.Command("ip", "-n", n.NS, "-6", "addr", "add", v6+"/64", "dev", f[1], "nodad").CombinedOutput(); err != nil {
			t.Fatalf("ip -n %s -6 addr add %s dev %s: %v %s", n.NS, v6, f[1], err, out)
		}
		repl = append(repl, fmt.Sprintf("ring%d_addr = %q", k, v4), fmt.Sprintf("ring%d_addr = %q", k, v6))
		n.LinkAddrs[k] = v6
		if k == 0 {
			n.Addr = v6
		}
	}
	r := strings.NewReplacer(repl...)
	for _, n := range c.Nodes {
		b, err := os.ReadFile(n.Config)
		require.NoError(t, err)
		s := r.Replace(string(b))
		require.NotEqual(t, string(b), s)
		require.NoError(t, os.WriteFile(n.Config, []byte(s), 0o644))
	}
}

// TestIPv6Ring: a ring whose only link is IPv6 (ring0_addr fd00:S:0::i)
// forms across namespaces, with udpu and with udp (the default group's
// IPv6 form), and re-forms after a node is cut off and back.
func TestIPv6Ring(t *testing.T) {
	for _, tr := range []string{"udpu", "udp"} {
		t.Run(tr, func(t *testing.T) {
			c := clustertest.New(t, clustertest.Options{Nodes: 3, Transport: tr, Token: 1000, Netns: true})
			linkToIPv6(t, c, 0)
			c.StartAll()
			all := []int{1, 2, 3}
			c.MustRing(deadline, all, all...)
			c.SetLink(3, false)
			c.MustRing(deadline, []int{1, 2}, 1, 2)
			c.SetLink(3, true)
			c.MustRing(deadline, all, all...)
			for i := 1; i <= 3; i++ {
				st := c.MustStatus(t, i)
				assert.Zero(t, st.Counters["rejected_bad_address"], "node %d rejected datagrams from a bad address", i)
			}
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
