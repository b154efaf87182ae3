package clustertest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// netns is the network of a namespaced cluster: a hub namespace holding a
// bridge, and one namespace per node with a veth into the bridge. Names
// carry the test process's PID so parallel runs never collide, and every
// namespace is deleted on Close.
type netns struct {
	t      testing.TB
	prefix string
	n      int
	links  int // bridges: br0 for link 0, brK for link K
	subnet int
	hosts  []string
}

func newNetns(t testing.TB, n, links int) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("namespaced cluster tests need root; CI runs as root")
		}
		t.Skip("namespaced cluster tests need root")
	}
	nw := &netns{t: t, prefix: fmt.Sprintf("rm%d%s", os.Getpid(), randSuffix()), n: n, links: max(links, 1), subnet: 100 + os.Getpid()%100}
	hub := nw.prefix + "h"
	nw.run("ip", "netns", "add", hub)
	nw.run("ip", "-n", hub, "link", "set", "lo", "up")
	nw.run("ip", "-n", hub, "link", "add", "br0", "type", "bridge")
	// Multicast snooping off: the bridge floods groups to every port, so
	// joins are not needed on the bridge itself.
	nw.run("ip", "-n", hub, "link", "set", "br0", "type", "bridge", "mcast_snooping", "0")
	nw.run("ip", "-n", hub, "link", "set", "br0", "up")
	for i := 1; i <= n; i++ {
		ns := nw.ns(i)
		nw.run("ip", "netns", "add", ns)
		nw.run("ip", "-n", ns, "link", "set", "lo", "up")
		nw.run("ip", "link", "add", nw.veth(i), "netns", ns, "type", "veth", "peer", "name", nw.hubVeth(i), "netns", hub)
		nw.run("ip", "-n", hub, "link", "set", nw.hubVeth(i), "master", "br0")
		nw.run("ip", "-n", hub, "link", "set", nw.hubVeth(i), "up")
		nw.run("ip", "-n", ns, "addr", "add", nw.addr(i)+"/24", "dev", nw.veth(i))
		nw.run("ip", "-n", ns, "link", "set", nw.veth(i), "up")
		nw.run("ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", nw.veth(i))
	}
	for k := 1; k < nw.links; k++ {
		nw.addLink(k)
	}
	return nw
}

// addLink adds bridge brK for link k and a veth from every node into it,
// with the node's address on the link (10.S.K.i/24). Multicast for the
// link leaves through it because ringd names the interface
// (IP_MULTICAST_IF); only link 0 holds the multicast route.
func (nw *netns) addLink(k int) {
	hub := nw.prefix + "h"
	br := fmt.Sprintf("br%d", k)
	nw.run("ip", "-n", hub, "link", "add", br, "type", "bridge")
	nw.run("ip", "-n", hub, "link", "set", br, "type", "bridge", "mcast_snooping", "0")
	nw.run("ip", "-n", hub, "link", "set", br, "up")
	for i := 1; i <= nw.n; i++ {
		ns, dev, port := nw.ns(i), fmt.Sprintf("lk%d", k), nw.linkPort(k, i)
		nw.run("ip", "link", "add", dev, "netns", ns, "type", "veth", "peer", "name", port, "netns", hub)
		nw.run("ip", "-n", hub, "link", "set", port, "master", br)
		nw.run("ip", "-n", hub, "link", "set", port, "up")
		nw.run("ip", "-n", ns, "addr", "add", nw.linkAddr(k, i)+"/24", "dev", dev)
		nw.run("ip", "-n", ns, "link", "set", dev, "up")
	}
}

// linkPort is the hub's end of node i's veth on link k.
func (nw *netns) linkPort(k, i int) string {
	if k == 0 {
		return nw.hubVeth(i)
	}
	return fmt.Sprintf("p%dk%d", i, k)
}

// linkAddr is node i's address on link k.
func (nw *netns) linkAddr(k, i int) string {
	if k == 0 {
		return nw.addr(i)
	}
	return fmt.Sprintf("10.%d.%d.%d", nw.subnet, k, i)
}

// SetBridge cuts (up false) or restores link k for every node at once, as
// a failed switch would: the hub's end of every node's veth on that
// link's bridge goes down or up.
func (c *Cluster) SetBridge(k int, up bool) {
	c.t.Helper()
	if c.net == nil || k < 0 || k >= c.net.links {
		c.t.Fatalf("SetBridge(%d) needs a namespaced cluster with that link", k)
	}
	state := "down"
	if up {
		state = "up"
	}
	for i := 1; i <= c.net.n; i++ {
		c.net.run("ip", "-n", c.net.prefix+"h", "link", "set", c.net.linkPort(k, i), state)
	}
}

func randSuffix() string {
	b := make([]byte, 2)
	f, _ := os.Open("/dev/urandom")
	_, _ = f.Read(b)
	f.Close()
	return fmt.Sprintf("%02x%02x", b[0], b[1])
}

func (nw *netns) ns(i int) string      { return fmt.Sprintf("%sn%d", nw.prefix, i) }
func (nw *netns) veth(i int) string    { return fmt.Sprintf("eth%d", i) }
func (nw *netns) hubVeth(i int) string { return fmt.Sprintf("p%d", i) }
func (nw *netns) addr(i int) string    { return fmt.Sprintf("10.%d.0.%d", nw.subnet, i) }

func (nw *netns) run(args ...string) {
	nw.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		nw.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (nw *netns) close() {
	for _, h := range nw.hosts {
		killNS(h)
		_ = exec.Command("ip", "netns", "del", h).Run()
	}
	for i := 1; i <= nw.n; i++ {
		killNS(nw.ns(i))
		_ = exec.Command("ip", "netns", "del", nw.ns(i)).Run()
	}
	_ = exec.Command("ip", "netns", "del", nw.prefix+"h").Run()
}

// SetLink brings node i's link to the bridge down or up (a cut cable).
func (c *Cluster) SetLink(i int, up bool) {
	c.t.Helper()
	if c.net == nil {
		c.t.Fatal("SetLink needs a namespaced cluster")
	}
	state := "down"
	if up {
		state = "up"
	}
	c.net.run("ip", "-n", c.net.prefix+"h", "link", "set", c.net.hubVeth(i), state)
}

// SetLoss drops percent % of the ring's UDP datagrams arriving at node i
// with an nftables `numgen random` rule in its namespace (this kernel has
// no netem). 0 removes the rule.
func (c *Cluster) SetLoss(i, percent int) {
	c.t.Helper()
	if c.net == nil {
		c.t.Fatal("SetLoss needs a namespaced cluster")
	}
	ns := c.net.ns(i)
	_ = exec.Command("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "rmloss").Run()
	if percent <= 0 {
		return
	}
	rules := fmt.Sprintf(`table inet rmloss {
	chain in {
		type filter hook input priority 0; policy accept;
		udp dport %d numgen random mod 100 < %d drop
	}
}
`, c.Port, percent)
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("nft loss rule in %s: %v\n%s", ns, err, out)
	}
}

// killNS kills every process in namespace ns.
func killNS(ns string) {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	for _, p := range strings.Fields(string(out)) {
		_ = exec.Command("kill", "-9", p).Run()
	}
}

// AddHost adds namespace number k (1..50) on the cluster's bridge that runs
// no ringd: a client or a real server. Its address is 10.S.0.(200+k) in the
// nodes' subnet. It is deleted, with its processes, on Close.
func (c *Cluster) AddHost(k int) (ns, addr string) {
	c.t.Helper()
	nw := c.net
	if nw == nil {
		c.t.Fatal("AddHost needs a namespaced cluster")
	}
	ns = fmt.Sprintf("%sx%d", nw.prefix, k)
	addr = fmt.Sprintf("10.%d.0.%d", nw.subnet, 200+k)
	hub := nw.prefix + "h"
	nw.run("ip", "netns", "add", ns)
	nw.hosts = append(nw.hosts, ns)
	nw.run("ip", "-n", ns, "link", "set", "lo", "up")
	nw.run("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", fmt.Sprintf("x%d", k), "netns", hub)
	nw.run("ip", "-n", hub, "link", "set", fmt.Sprintf("x%d", k), "master", "br0")
	nw.run("ip", "-n", hub, "link", "set", fmt.Sprintf("x%d", k), "up")
	nw.run("ip", "-n", ns, "addr", "add", addr+"/24", "dev", "eth0")
	nw.run("ip", "-n", ns, "link", "set", "eth0", "up")
	return ns, addr
}

// PowerOffCommand is a shell command for builtin:fence-script that "powers
// off" a namespaced node: it kills every process in the node's namespace
// (ringd, the agents' daemons), which also releases the node's mounts.
// The node is named by the script's FENCE_TARGET (nI).
func (c *Cluster) PowerOffCommand() string {
	if c.net == nil {
		c.t.Fatal("PowerOffCommand needs a namespaced cluster")
	}
	return fmt.Sprintf(`case "$FENCE_ACTION" in off|reboot) ip netns pids %s"$FENCE_TARGET" | xargs -r kill -9;; esac; exit 0`, c.net.prefix)
}
