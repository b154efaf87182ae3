package exectest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"ringmaster/ipc"
	"ringmaster/totem"
)

// Serve starts a cluster for a test that talks to it as clients do: o's
// nodes, each served on a Unix socket, ordering in the background. It
// waits until every node has synced the first configuration and stops and
// removes everything when the test ends. The sockets (node 1 first) live
// in a short temporary directory, because a socket path may not exceed
// 108 bytes and a test's TempDir often does.
func Serve(tb testing.TB, o Options) (*Cluster, []string) {
	tb.Helper()
	dir, err := os.MkdirTemp("", "exectest")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	c, err := New(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	var socks []string
	for i := 1; i <= o.Nodes; i++ {
		p := filepath.Join(dir, strconv.Itoa(i)+".sock")
		if _, err := c.Node(totem.NodeID(i)).Listen(p, ipc.Options{}); err != nil {
			tb.Fatal(err)
		}
		socks = append(socks, p)
	}
	tb.Cleanup(c.Run())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.WaitSynced(ctx); err != nil {
		tb.Fatal(err)
	}
	return c, socks
}
