package clustertest

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Helpers for tests that change a running cluster's configuration
// (`ringctl config reload`).

// KeyFile is the cluster's key file as New wrote it.
func (c *Cluster) KeyFile() string { return filepath.Join(c.Dir, "authkey") }

// WriteConfigs rewrites every node's corosync.toml from the options and
// the node list as they are now, with keyfile as totem.keyfile (extra
// [totem] lines such as previous_keyfiles go in Opt.ExtraTotem).
func (c *Cluster) WriteConfigs(keyfile string) {
	c.t.Helper()
	for _, n := range c.Nodes {
		if err := os.WriteFile(n.Config, []byte(c.config(n, keyfile)), 0o644); err != nil {
			c.t.Fatal(err)
		}
	}
}

// AddNode appends a node (not started) to the node list and returns its
// number; the other nodes' files are not rewritten (WriteConfigs does it).
// Loopback clusters only.
func (c *Cluster) AddNode() int {
	c.t.Helper()
	if c.net != nil {
		c.t.Fatal("AddNode: not with network namespaces")
	}
	i := len(c.Nodes) + 1
	n := &Node{ID: i, Dir: filepath.Join(c.Dir, fmt.Sprintf("n%d", i))}
	n.Config = filepath.Join(n.Dir, "corosync.toml")
	n.Socket = filepath.Join(n.Dir, "ringd.sock")
	n.Addr = fmt.Sprintf("127.0.0.%d", i)
	for k := range c.Opt.Links {
		n.LinkAddrs = append(n.LinkAddrs, fmt.Sprintf("127.0.%d.%d", k, i))
	}
	n.Metrics = fmt.Sprintf("%s:%d", n.Addr, c.Port)
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		c.t.Fatal(err)
	}
	c.Nodes = append(c.Nodes, n)
	return i
}

// RemoveLastNode drops the last node from the node list (WriteConfigs
// then leaves it out) and returns it; it may still run: Stop it with
// StopRemoved. It is killed when the test ends.
func (c *Cluster) RemoveLastNode() *Node {
	n := c.Nodes[len(c.Nodes)-1]
	c.Nodes = c.Nodes[:len(c.Nodes)-1]
	c.t.Cleanup(func() { _ = n.signal(syscall.SIGKILL) })
	return n
}

// StopRemoved stops a node RemoveLastNode returned (SIGTERM) and returns
// its exit error.
func (c *Cluster) StopRemoved(n *Node) error { return n.signal(syscall.SIGTERM) }
