// Package ring holds the real-process tests of the Totem ring: several
// ringd processes on 127.0.0.x with udpu, and in network namespaces joined
// by a bridge with udp multicast (root), killed, restarted, cut off and
// exposed to datagram loss. They assert what must happen (one ring, the
// right members, a clean exit), with generous deadlines; how fast it
// happens is measured by BenchmarkFailover, not asserted here.
package ring

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ringmaster/internal/clustertest"
)

// deadline is far above the targets (failover ≤ 1.5 × token): a test that
// needs it is failing the target, which the benchmark reports.
const deadline = 20 * time.Second

// scenario runs the lifecycle every transport must survive: form, kill -9,
// re-form, restart, rejoin, graceful leave.
func scenario(t *testing.T, c *clustertest.Cluster) {
	c.StartAll()
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)

	c.Kill(3)
	c.MustRing(deadline, []int{1, 2}, 1, 2)

	c.Start(3)
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)

	require.NoError(t, c.Stop(2), "SIGTERM must exit 0")
	c.MustRing(deadline, []int{1, 3}, 1, 3)
	c.Start(2)
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
}

func TestUDPULoopback(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Nodes: 3, Transport: "udpu", Token: 300, ExtraTotem: "token_coefficient = 0"})
	scenario(t, c)
}

func TestUDPMulticastNetns(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Nodes: 3, Transport: "udp", Token: 300, ExtraTotem: "token_coefficient = 0", Netns: true})
	scenario(t, c)
}

// TestLinkCut: a node whose cable is pulled is excluded, forms a ring of
// its own, and merges back when the cable returns.
func TestLinkCut(t *testing.T) {
	for _, tr := range []string{"udp", "udpu"} {
		t.Run(tr, func(t *testing.T) {
			c := clustertest.New(t, clustertest.Options{Nodes: 3, Transport: tr, Token: 300, ExtraTotem: "token_coefficient = 0", Netns: true})
			c.StartAll()
			c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
			c.SetLink(2, false)
			c.MustRing(deadline, []int{1, 3}, 1, 3)
			c.MustRing(deadline, []int{2}, 2)
			c.SetLink(2, true)
			c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
		})
	}
}
