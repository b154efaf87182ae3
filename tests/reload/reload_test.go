// Package reload holds the real-process tests of configuration reload
// (SIGHUP) across a cluster: what a reload reports as applied must be in
// force on the wire.
package reload

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/internal/clustertest"
	"ringmaster/internal/testutil"
)

const deadline = 20 * time.Second

// reload rewrites node i's keyfile setting, sends SIGHUP and waits until
// its log says the reload went through.
func reload(t *testing.T, c *clustertest.Cluster, i int, oldKey, newKey string) {
	t.Helper()
	n := c.Node(i)
	b, err := os.ReadFile(n.Config)
	require.NoError(t, err)
	cfg := strings.Replace(string(b), "keyfile = \""+oldKey+"\"", "keyfile = \""+newKey+"\"", 1)
	require.NotEqual(t, string(b), cfg)
	require.NoError(t, os.WriteFile(n.Config, []byte(cfg), 0o644))
	before := strings.Count(c.Log(i), "configuration reloaded")
	require.NoError(t, syscall.Kill(n.PID(), syscall.SIGHUP))
	testutil.WaitFor(t, deadline, "reload of "+n.Config, func() bool {
		return strings.Count(c.Log(i), "configuration reloaded") > before
	})
}

// TestReloadKeyIsInForce: a new key reloaded on one node is the key its
// datagrams are sealed with at once (the node no longer forms a ring with
// one that has only the old key), cmap reports it, and reloading it on the
// other node brings the ring back.
func TestReloadKeyIsInForce(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Nodes: 2})
	oldKey := filepath.Join(c.Dir, "authkey")
	newKey := filepath.Join(c.Dir, "authkey.new")
	require.NoError(t, os.WriteFile(newKey, []byte("a new key, 32 bytes long, really"), 0o400))
	c.StartAll()
	c.MustRing(deadline, []int{1, 2}, 1, 2)

	reload(t, c, 1, oldKey, newKey)
	c.MustRing(deadline, []int{1}, 1)
	c.MustRing(deadline, []int{2}, 2)
	out, code := c.Ctl(1, "cmap", "get", "totem.keyfile")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, newKey)

	reload(t, c, 2, oldKey, newKey)
	c.MustRing(deadline, []int{1, 2}, 1, 2)
	out, code = c.Ctl(2, "cmap", "get", "totem.keyfile")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, newKey)
}
