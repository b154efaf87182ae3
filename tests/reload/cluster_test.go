package reload

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/internal/clustertest"
	"ringmaster/internal/testutil"
)

// cmapIs reports whether node i's cmap key ends with "= want".
func cmapIs(c *clustertest.Cluster, i int, key, want string) bool {
	out, code := c.Ctl(i, "cmap", "get", key)
	return code == 0 && strings.HasSuffix(strings.TrimSpace(out), "= "+want)
}

// waitCmap waits until every node in nodes shows key = want.
func waitCmap(t *testing.T, c *clustertest.Cluster, key, want string, nodes ...int) {
	t.Helper()
	for _, i := range nodes {
		testutil.WaitFor(t, deadline, fmt.Sprintf("n%d: %s = %s", i, key, want), func() bool { return cmapIs(c, i, key, want) })
	}
}

// clusterReload runs `ringctl config reload --json` on node i and returns
// its result and exit code.
func clusterReload(t *testing.T, c *clustertest.Cluster, i int) (map[string]any, string, int) {
	t.Helper()
	out, code := c.Ctl(i, "--json", "config", "reload")
	var res map[string]any
	_ = json.Unmarshal([]byte(out), &res)
	return res, out, code
}

// mustReload is clusterReload that must commit.
func mustReload(t *testing.T, c *clustertest.Cluster, i int) {
	t.Helper()
	res, out, code := clusterReload(t, c, i)
	require.Equal(t, 0, code, "config reload on n%d: %s", i, out)
	require.Equal(t, true, res["committed"], out)
}

// verifier runs `pload verify` across nodes 1-3 again and again until
// stopped, and records every run that was not clean.
type verifier struct {
	mu     sync.Mutex
	runs   int
	failed []string
	stop   chan struct{}
	done   chan struct{}
}

func startVerifier(c *clustertest.Cluster) *verifier {
	v := &verifier{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(v.done)
		for {
			select {
			case <-v.stop:
				return
			default:
			}
			v.mu.Lock()
			group := fmt.Sprintf("reload-verify-%d", v.runs)
			v.mu.Unlock()
			out, err := exec.Command(c.Bin+"/pload", "verify", "--json", "--size", "200", "--rate", "300", "--duration", "4s", "--group", group,
				"--socket", c.Node(1).Socket, "--socket", c.Node(2).Socket, "--socket", c.Node(3).Socket).CombinedOutput()
			v.mu.Lock()
			v.runs++
			var res struct {
				Sent  int  `json:"sent"`
				Order bool `json:"order_ok"`
			}
			if err != nil || json.Unmarshal(out, &res) != nil || !res.Order || res.Sent == 0 {
				v.failed = append(v.failed, fmt.Sprintf("%v: %s", err, out))
			}
			v.mu.Unlock()
		}
	}()
	return v
}

// waitSending waits until the first run's group has a member on each of
// nodes 1-3: the load is on.
func (v *verifier) waitSending(t *testing.T, c *clustertest.Cluster) {
	t.Helper()
	testutil.WaitFor(t, deadline, "pload verify's group on 3 nodes", func() bool {
		out, code := c.Ctl(1, "--json", "cpg", "groups")
		var gs struct {
			Groups []struct {
				Name    string `json:"name"`
				Members []struct {
					NodeID int `json:"nodeid"`
				} `json:"members"`
			} `json:"groups"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &gs) != nil {
			return false
		}
		for _, g := range gs.Groups {
			if g.Name == "reload-verify-0" && len(g.Members) == 3 {
				return true
			}
		}
		return false
	})
}

// finish waits for the run in progress and returns the counts.
func (v *verifier) finish() (runs int, failed []string) {
	close(v.stop)
	<-v.done
	return v.runs, v.failed
}

// TestClusterReload: on a running 3-node cluster under a `pload verify`
// load, `ringctl config reload` changes the token on every node, adds a
// 4th node (which then starts and joins), removes it again once stopped,
// and rotates the key in two steps; no ringd restarts and every pload
// verify run stays clean (no loss, no duplicates, the same order
// everywhere).
func TestClusterReload(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Nodes: 3})
	c.StartAll()
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	pids := map[int]int{}
	for i := 1; i <= 3; i++ {
		pids[i] = c.Node(i).PID()
	}
	v := startVerifier(c)
	v.waitSending(t, c)

	// Token: 300 → 500 ms (runtime.config.totem.token is the effective
	// value: with 3 nodes, 500 + 650).
	c.Opt.Token = 500
	c.WriteConfigs(c.KeyFile())
	mustReload(t, c, 1)
	waitCmap(t, c, "totem.token", "500", 1, 2, 3)
	waitCmap(t, c, "runtime.config.totem.token", "1150", 1, 2, 3)

	// Add node 4: every file lists it, the reload makes it a peer and an
	// expected voter everywhere, then it starts and joins.
	n4 := c.AddNode()
	c.WriteConfigs(c.KeyFile())
	mustReload(t, c, 2)
	waitCmap(t, c, "runtime.votequorum.expected_votes", "4", 1, 2, 3)
	c.Start(n4)
	c.MustRing(deadline, []int{1, 2, 3, 4}, 1, 2, 3, 4)
	waitCmap(t, c, "runtime.votequorum.total_votes", "4", 1, 2, 3, 4)

	// Removing it while it runs is refused, naming it.
	removed := c.RemoveLastNode()
	c.WriteConfigs(c.KeyFile())
	res, out, code := clusterReload(t, c, 1)
	require.NotEqual(t, 0, code, out)
	assert.Contains(t, fmt.Sprint(res["error"]), "node 4", out)
	assert.Contains(t, fmt.Sprint(res["error"]), "stop it first", out)
	waitCmap(t, c, "runtime.votequorum.expected_votes", "4", 1, 2, 3)
	// Stopped, it can be removed: no longer a peer, no longer counted.
	require.NoError(t, c.StopRemoved(removed))
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	mustReload(t, c, 3)
	waitCmap(t, c, "runtime.votequorum.expected_votes", "3", 1, 2, 3)

	// Key rotation: the new key seals, the old one still opens; then the
	// old one is dropped.
	newKey := filepath.Join(c.Dir, "authkey.new")
	require.NoError(t, os.WriteFile(newKey, []byte("a new key, 32 bytes long, really"), 0o400))
	c.Opt.ExtraTotem = fmt.Sprintf("previous_keyfiles = [%q]", c.KeyFile())
	c.WriteConfigs(newKey)
	mustReload(t, c, 1)
	waitCmap(t, c, "totem.keyfile", newKey, 1, 2, 3)
	c.Opt.ExtraTotem = ""
	c.WriteConfigs(newKey)
	mustReload(t, c, 2)
	for i := 1; i <= 3; i++ {
		testutil.WaitFor(t, deadline, fmt.Sprintf("n%d: no previous keyfiles", i), func() bool {
			out, code := c.Ctl(i, "cmap", "get", "totem.previous_keyfiles")
			return code != 0 || strings.Contains(out, "not found")
		})
	}

	runs, failed := v.finish()
	assert.Empty(t, failed, "pload verify runs that were not clean")
	assert.Positive(t, runs)
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	for i := 1; i <= 3; i++ {
		assert.Equal(t, pids[i], c.Node(i).PID(), "n%d restarted", i)
	}
	t.Logf("%d pload verify runs across the reloads, all clean", runs)
	if testing.Verbose() {
		for _, l := range strings.Split(c.Log(1), "\n") {
			if strings.Contains(l, "reload") || strings.Contains(l, "changed") {
				t.Log(l)
			}
		}
	}
}

// TestClusterReloadRefused: a bad file on one node refuses the reload on
// every node, the answer names the node and its FILE:LINE, and every node
// keeps running the old configuration; files that validate but differ in
// a cluster-wide part are refused too, naming the part.
func TestClusterReloadRefused(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Nodes: 3})
	c.StartAll()
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	c.Opt.Token = 600
	c.WriteConfigs(c.KeyFile())
	setToken := func(i, token int) {
		b, err := os.ReadFile(c.Node(i).Config)
		require.NoError(t, err)
		s := regexp.MustCompile(`(?m)^token = \d+$`).ReplaceAllString(string(b), fmt.Sprintf("token = %d", token))
		require.NoError(t, os.WriteFile(c.Node(i).Config, []byte(s), 0o644))
	}
	lineOf := func(i int, prefix string) int {
		b, err := os.ReadFile(c.Node(i).Config)
		require.NoError(t, err)
		for n, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, prefix) {
				return n + 1
			}
		}
		t.Fatalf("no %q in %s", prefix, c.Node(i).Config)
		return 0
	}
	unchanged := func() {
		t.Helper()
		for i := 1; i <= 3; i++ {
			assert.True(t, cmapIs(c, i, "totem.token", "300"), "n%d token changed", i)
			assert.True(t, cmapIs(c, i, "runtime.config.totem.token", "950"), "n%d runtime token changed", i)
		}
	}

	setToken(2, 5)
	out, code := c.Ctl(3, "config", "reload")
	require.Equal(t, 1, code, out)
	want := fmt.Sprintf("node 2: %s:%d: totem.token: must be at least 10 ms, got 5", c.Node(2).Config, lineOf(2, "token = "))
	assert.Contains(t, out, want)
	unchanged()

	setToken(2, 700)
	res, out, code := clusterReload(t, c, 1)
	require.Equal(t, 1, code, out)
	assert.Contains(t, fmt.Sprint(res["error"]), "node 2's [totem] differs from node 1's", out)
	unchanged()

	// Fixed, it goes through; the ring never changed.
	before := c.MustStatus(t, 1).RingID
	setToken(2, 600)
	mustReload(t, c, 2)
	waitCmap(t, c, "totem.token", "600", 1, 2, 3)
	assert.Equal(t, before, c.MustStatus(t, 1).RingID)
}

// TestClusterReloadNodeTwoLinks: with two links, a node added by reload
// becomes a peer on both (SetLinks) and joins; stopped and removed, it is
// no longer counted.
func TestClusterReloadNodeTwoLinks(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Nodes: 3, Links: 2})
	c.StartAll()
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	n4 := c.AddNode()
	c.WriteConfigs(c.KeyFile())
	mustReload(t, c, 1)
	waitCmap(t, c, "runtime.votequorum.expected_votes", "4", 1, 2, 3)
	c.Start(n4)
	c.MustRing(deadline, []int{1, 2, 3, 4}, 1, 2, 3, 4)
	removed := c.RemoveLastNode()
	require.NoError(t, c.StopRemoved(removed))
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	c.WriteConfigs(c.KeyFile())
	mustReload(t, c, 2)
	waitCmap(t, c, "runtime.votequorum.expected_votes", "3", 1, 2, 3)
}
