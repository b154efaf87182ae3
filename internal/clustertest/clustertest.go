// Package clustertest runs real ringd processes for tests and measurements:
// it builds the binary once, writes corosync.toml files, starts, kills,
// stops and restarts nodes, and waits on what `ringctl status` reports. With
// Options.Netns each node runs in its own network namespace on a shared
// bridge (root only), which also allows cutting links and injecting loss
// with nftables.
package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"ringmaster/clients"
	"ringmaster/internal/testutil"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Binaries builds ringd, ringctl and pload once per test process and
// returns the directory holding them.
func Binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "ringmaster-bin")
		if buildErr != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("go", "build", "-o", buildDir+"/", "./cmd/ringd", "./cmd/ringctl", "./cmd/pload")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

// Options shape a test cluster.
type Options struct {
	Nodes     int
	Transport string // "udpu" (default) or "udp"
	Token     int    // ms (default 300)
	// ExtraTotem and Quorum are appended to [totem] and [quorum].
	ExtraTotem string
	Quorum     string
	// Logging is appended to [logging] (e.g. `format = "json"`).
	Logging string
	// Resources is appended to [resources] (each node's run_dir is its
	// own directory's run/ unless Resources sets one).
	Resources string
	// Netns runs each node in its own network namespace joined by a
	// bridge (needs root); otherwise nodes use 127.0.0.1..N.
	Netns bool
	// Links is the number of redundant links (ring0_addr, ring1_addr,
	// …; 0 means 1). In namespaces each link is its own bridge and
	// subnet (10.S.K.i, SetBridge cuts one); on the host link K uses
	// 127.0.K.i.
	Links int
	// LinkTotem is appended to every [[totem.interface]] block written
	// for links above 0 (e.g. "link_priority = 2").
	LinkTotem string
	Debug     bool
}

// Cluster is a set of ringd processes.
type Cluster struct {
	t     testing.TB
	Opt   Options
	Dir   string
	Bin   string
	Port  int
	Mcast string // group of transport udp, the same for every node
	Nodes []*Node
	net   *netns
}

// Node is one ringd.
type Node struct {
	ID     int
	Dir    string
	Config string
	Socket string
	Addr   string
	// LinkAddrs are the node's addresses on every link (LinkAddrs[0] =
	// Addr).
	LinkAddrs []string
	NS        string // network namespace ("" on the host)
	// Metrics is the node's [metrics] listen address (HTTP: /metrics
	// and the status page): its own ring address, the cluster's port.
	Metrics string

	mu     sync.Mutex
	exited bool // the current process has exited
	cmd    *exec.Cmd
	log    *os.File
	done   chan error
}

// New writes the configuration of a cluster (nothing is started).
func New(t testing.TB, o Options) *Cluster {
	t.Helper()
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Transport == "" {
		o.Transport = "udpu"
	}
	if o.Token == 0 {
		o.Token = 300
	}
	c := &Cluster{t: t, Opt: o, Bin: Binaries(t), Port: testutil.ReservePort(t),
		Mcast: fmt.Sprintf("239.192.%d.%d", rand.IntN(250)+1, rand.IntN(250)+1)}
	var err error
	c.Dir, err = os.MkdirTemp("", "ringmaster-cluster")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if o.Links == 0 {
		o.Links = 1
		c.Opt.Links = 1
	}
	if o.Netns {
		c.net = newNetns(t, o.Nodes, o.Links)
	}
	key := filepath.Join(c.Dir, "authkey")
	if err := os.WriteFile(key, []byte(fmt.Sprintf("%032d", rand.Int64())), 0o400); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= o.Nodes; i++ {
		n := &Node{ID: i, Dir: filepath.Join(c.Dir, fmt.Sprintf("n%d", i))}
		n.Config = filepath.Join(n.Dir, "corosync.toml")
		n.Socket = filepath.Join(n.Dir, "ringd.sock")
		n.Addr = fmt.Sprintf("127.0.0.%d", i)
		if c.net != nil {
			n.Addr = c.net.addr(i)
			n.NS = c.net.ns(i)
		}
		for k := range o.Links {
			a := fmt.Sprintf("127.0.%d.%d", k, i)
			if c.net != nil {
				a = c.net.linkAddr(k, i)
			}
			n.LinkAddrs = append(n.LinkAddrs, a)
		}
		n.Metrics = fmt.Sprintf("%s:%d", n.Addr, c.Port)
		if err := os.MkdirAll(n.Dir, 0o755); err != nil {
			t.Fatal(err)
		}
		c.Nodes = append(c.Nodes, n)
	}
	for _, n := range c.Nodes {
		if err := os.WriteFile(n.Config, []byte(c.config(n, key)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *Cluster) config(n *Node, key string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[totem]\ncluster_name = \"test\"\ntransport = %q\nport = %d\ntoken = %d\n", c.Opt.Transport, c.Port, c.Opt.Token)
	if c.Opt.Transport == "udp" {
		fmt.Fprintf(&b, "mcast_addr = %q\n", c.Mcast)
	}
	fmt.Fprintf(&b, "crypto_cipher = \"aes256\"\nkeyfile = %q\n%s\n", key, c.Opt.ExtraTotem)
	for k := 1; k < c.Opt.Links && c.Opt.LinkTotem != ""; k++ {
		fmt.Fprintf(&b, "\n[[totem.interface]]\nlinknumber = %d\n%s\n", k, c.Opt.LinkTotem)
	}
	for _, m := range c.Nodes {
		fmt.Fprintf(&b, "\n[[node]]\nnodeid = %d\nname = \"n%d\"\nring0_addr = %q\n", m.ID, m.ID, m.Addr)
		for k := 1; k < len(m.LinkAddrs); k++ {
			fmt.Fprintf(&b, "ring%d_addr = %q\n", k, m.LinkAddrs[k])
		}
	}
	fmt.Fprintf(&b, "\n[quorum]\nprovider = \"votequorum\"\n%s\n", c.Opt.Quorum)
	fmt.Fprintf(&b, "\n[logging]\nto_stderr = true\ndebug = %v\n%s\n", c.Opt.Debug, c.Opt.Logging)
	fmt.Fprintf(&b, "\n[ipc]\nsocket = %q\n\n[system]\nstate_dir = %q\n", n.Socket, n.Dir)
	fmt.Fprintf(&b, "\n[metrics]\nlisten = %q\n", n.Metrics)
	fmt.Fprintf(&b, "\n[resources]\n")
	if !strings.Contains(c.Opt.Resources, "run_dir") {
		fmt.Fprintf(&b, "run_dir = %q\n", filepath.Join(n.Dir, "run"))
	}
	fmt.Fprintf(&b, "%s\n", c.Opt.Resources)
	return b.String()
}

// Node returns node i (1-based).
func (c *Cluster) Node(i int) *Node { return c.Nodes[i-1] }

// Start starts node i (again).
func (c *Cluster) Start(i int) {
	c.t.Helper()
	n := c.Node(i)
	n.mu.Lock()
	defer n.mu.Unlock()
	args := []string{c.Bin + "/ringd", "-c", n.Config, "--node", fmt.Sprint(n.ID)}
	if n.NS != "" {
		args = append([]string{"ip", "netns", "exec", n.NS}, args...)
	}
	logf, err := os.OpenFile(filepath.Join(n.Dir, "ringd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	n.cmd, n.log, n.done, n.exited = cmd, logf, make(chan error, 1), false
	done := n.done
	go func() {
		err := cmd.Wait()
		n.mu.Lock()
		if n.cmd == cmd {
			n.exited = true
		}
		n.mu.Unlock()
		done <- err
		logf.Close()
	}()
}

// StartAll starts every node.
func (c *Cluster) StartAll() {
	for _, n := range c.Nodes {
		c.Start(n.ID)
	}
}

// Kill sends SIGKILL to node i and waits for it to die.
func (c *Cluster) Kill(i int) { c.signal(i, syscall.SIGKILL) }

// Stop sends SIGTERM to node i and returns its exit error (nil = status 0).
func (c *Cluster) Stop(i int) error { return c.signal(i, syscall.SIGTERM) }

func (c *Cluster) signal(i int, s syscall.Signal) error { return c.Node(i).signal(s) }

// signal sends s to the node's ringd and waits for it to exit.
func (n *Node) signal(s syscall.Signal) error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(s)
	select {
	case err := <-done:
		return err
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		return fmt.Errorf("node %d did not exit within 15 s of %v", n.ID, s)
	}
}

// PID is the process ID of the node's ringd (0 when it is not running).
// In a namespace too: `ip netns exec` execs ringd in its own place.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Running reports whether node i's ringd runs: started and neither
// stopped by the test nor dead by itself (or by fencing).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil && !n.exited
}

// Log returns node i's log so far.
func (c *Cluster) Log(i int) string {
	b, _ := os.ReadFile(filepath.Join(c.Node(i).Dir, "ringd.log"))
	return string(b)
}

// Status asks node i for its status (nil when it does not answer).
func (c *Cluster) Status(i int) *clients.Status {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn, err := clients.Dial(ctx, c.Node(i).Socket)
	if err != nil {
		return nil
	}
	defer conn.Close()
	st, err := conn.Status(ctx)
	if err != nil {
		return nil
	}
	return st
}

// MustStatus asks node i for its status until it answers, for up to
// statusPatience (a loaded machine can hold one answer past Status's
// second); the test fails, naming the node, when it never does.
func (c *Cluster) MustStatus(t testing.TB, i int) *clients.Status {
	t.Helper()
	var st *clients.Status
	testutil.WaitFor(t, statusPatience, fmt.Sprintf("node %d to answer a status request", i), func() bool {
		st = c.Status(i)
		return st != nil
	})
	return st
}

// statusPatience bounds MustStatus.
const statusPatience = 20 * time.Second

// Members is the sorted member list node i reports (nil if it does not
// answer or is not operational).
func (c *Cluster) Members(i int) []int {
	st := c.Status(i)
	if st == nil || st.State != "operational" {
		return nil
	}
	var m []int
	for _, x := range st.Members {
		m = append(m, int(x.NodeID))
	}
	slices.Sort(m)
	return m
}

// WaitRing waits until every node in nodes reports exactly want as members
// and the same ring ID; it returns how long that took.
func (c *Cluster) WaitRing(timeout time.Duration, want []int, nodes ...int) (time.Duration, error) {
	start := time.Now()
	want = slices.Sorted(slices.Values(want))
	for {
		ok := true
		var ring *clients.RingID
		for _, i := range nodes {
			st := c.Status(i)
			if st == nil || st.State != "operational" {
				ok = false
				break
			}
			var m []int
			for _, x := range st.Members {
				m = append(m, int(x.NodeID))
			}
			slices.Sort(m)
			if !slices.Equal(m, want) || (ring != nil && *ring != st.RingID) {
				ok = false
				break
			}
			r := st.RingID
			ring = &r
		}
		if ok {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			var got bytes.Buffer
			for _, i := range nodes {
				fmt.Fprintf(&got, " n%d=%v", i, c.Members(i))
			}
			return 0, fmt.Errorf("nodes %v did not agree on ring %v within %v; they report%s", nodes, want, timeout, got.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// MustRing is WaitRing that fails the test, printing the nodes' logs.
func (c *Cluster) MustRing(timeout time.Duration, want []int, nodes ...int) time.Duration {
	c.t.Helper()
	d, err := c.WaitRing(timeout, want, nodes...)
	if err != nil {
		for _, i := range nodes {
			c.t.Logf("--- log of n%d (tail)\n%s", i, tail(c.Log(i), 40))
		}
		c.t.Fatal(err)
	}
	return d
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Close kills every node and removes the cluster's files and namespaces.
func (c *Cluster) Close() {
	for _, n := range c.Nodes {
		c.Kill(n.ID)
	}
	if c.net != nil {
		c.net.close()
	}
	if c.t.Failed() {
		c.t.Logf("cluster files kept for inspection in %s", c.Dir)
		return
	}
	os.RemoveAll(c.Dir)
}

// Ctl runs ringctl against node i and returns its output and exit code.
func (c *Cluster) Ctl(i int, args ...string) (string, int) {
	cmd := exec.Command(c.Bin+"/ringctl", append([]string{"--socket", c.Node(i).Socket}, args...)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return string(out), code
}
