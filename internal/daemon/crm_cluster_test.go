package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	crmc "ringmaster/clients/crm"
	"ringmaster/crm/wire"
	"ringmaster/internal/testutil"
	"ringmaster/ipc"
	"ringmaster/totem"
)

// testNode is one ringd running in this process (udpu on 127.0.0.N), for
// tests of the resource manager's wiring that need a real ring and
// executive but not separate processes.
type testNode struct {
	id     int
	dir    string
	socket string
	d      *Daemon
	cancel context.CancelFunc
	done   chan error
	logf   *os.File
}

// testCluster is a set of in-process nodes sharing a port.
type testCluster struct {
	t     *testing.T
	dir   string
	port  int
	n     int
	extra string // appended to [resources]
	quor  string // [quorum]
	nodes map[int]*testNode
	mu    sync.Mutex
}

func newTestCluster(t *testing.T, n int, quorum, resources string) *testCluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "crmd")
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, dir: dir, port: testutil.ReservePort(t), n: n, quor: quorum, extra: resources, nodes: map[int]*testNode{}}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
		if t.Failed() {
			for i := 1; i <= c.n; i++ {
				b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("n%d", i), "ringd.log"))
				lines := strings.Split(string(b), "\n")
				if len(lines) > 80 {
					lines = lines[len(lines)-80:]
				}
				t.Logf("n%d log (tail):\n%s", i, strings.Join(lines, "\n"))
			}
		}
		_ = os.RemoveAll(dir)
	})
	return c
}

func (c *testCluster) nodeDir(i int) string { return filepath.Join(c.dir, fmt.Sprintf("n%d", i)) }

func (c *testCluster) config(i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[totem]\ncluster_name = \"crmtest\"\ntransport = \"udpu\"\nport = %d\ntoken = 200\ncrypto_cipher = \"none\"\n", c.port)
	for j := 1; j <= c.n; j++ {
		fmt.Fprintf(&b, "\n[[node]]\nnodeid = %d\nname = \"n%d\"\nring0_addr = \"127.0.0.%d\"\n", j, j, j)
	}
	fmt.Fprintf(&b, "\n[quorum]\nprovider = \"votequorum\"\n%s\n", c.quor)
	fmt.Fprintf(&b, "\n[ipc]\nsocket = %q\n\n[system]\nstate_dir = %q\n", filepath.Join(c.nodeDir(i), "ringd.sock"), c.nodeDir(i))
	fmt.Fprintf(&b, "\n[metrics]\nlisten = \"\"\n")
	fmt.Fprintf(&b, "\n[resources]\nrun_dir = %q\n%s\n", filepath.Join(c.nodeDir(i), "run"), c.extra)
	return b.String()
}

// start starts node i (again).
func (c *testCluster) start(i int) *testNode {
	c.t.Helper()
	dir := c.nodeDir(i)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.t.Fatal(err)
	}
	cfg := filepath.Join(dir, "corosync.toml")
	if err := os.WriteFile(cfg, []byte(c.config(i)), 0o644); err != nil {
		c.t.Fatal(err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "ringd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(logf), zap.InfoLevel))
	d, err := New(Options{ConfigPath: cfg, Node: fmt.Sprint(i), Version: "test", Log: log})
	if err != nil {
		logf.Close()
		c.t.Fatalf("n%d: %v", i, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &testNode{id: i, dir: dir, socket: filepath.Join(dir, "ringd.sock"), d: d, cancel: cancel, done: make(chan error, 1), logf: logf}
	go func() { n.done <- d.Run(ctx) }()
	c.mu.Lock()
	c.nodes[i] = n
	c.mu.Unlock()
	return n
}

// stop stops node i the way SIGTERM does and waits for Run to return.
func (c *testCluster) stop(i int) error {
	c.mu.Lock()
	n := c.nodes[i]
	delete(c.nodes, i)
	c.mu.Unlock()
	if n == nil {
		return nil
	}
	n.cancel()
	select {
	case err := <-n.done:
		n.logf.Close()
		return err
	case <-time.After(60 * time.Second):
		c.t.Errorf("n%d: Run did not return within 60 s of its cancel", i)
		return nil
	}
}

// client dials node i's resource manager.
func (c *testCluster) client(i int) *crmc.Client {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := crmc.Dial(ctx, filepath.Join(c.nodeDir(i), "ringd.sock"))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// status is node i's controller status (ok false when it does not answer).
func (c *testCluster) status(i int) (wire.Status, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cl, err := crmc.Dial(ctx, filepath.Join(c.nodeDir(i), "ringd.sock"))
	if err != nil {
		return wire.Status{}, false
	}
	defer cl.Close()
	st, err := cl.Status(ctx)
	return st, err == nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitSynced waits until every node in nodes is synced with exactly
// those members and a DC.
func (c *testCluster) waitSynced(nodes ...int) {
	c.t.Helper()
	waitFor(c.t, 30*time.Second, fmt.Sprintf("nodes %v synced with a DC", nodes), func() bool {
		for _, i := range nodes {
			st, ok := c.status(i)
			if !ok || !st.Synced || st.DC == "" || len(st.Members) != len(nodes) {
				return false
			}
		}
		return true
	})
}

// applyCIB replaces the configuration through node i.
func (c *testCluster) applyCIB(i int, x string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.client(i).ReplaceConfig(ctx, []byte(x), nil); err != nil {
		c.t.Fatalf("ReplaceConfig through n%d: %v", i, err)
	}
}

// fencedCIB: fencing enabled with a fence-script device that records every
// action in marker, and d1 (builtin:dummy) on n1; both prefer n1, so n2
// runs nothing.
func fencedCIB(marker string) string {
	return fmt.Sprintf(`<cib admin_epoch="0" epoch="1" num_updates="0" validate-with="pacemaker-3.7">
  <configuration>
    <crm_config><cluster_property_set id="opts">
      <nvpair id="o1" name="stonith-enabled" value="true"/>
      <nvpair id="o2" name="no-quorum-policy" value="stop"/>
    </cluster_property_set></crm_config>
    <nodes/>
    <resources>
      <primitive id="fence" class="builtin" type="fence-script">
        <instance_attributes id="fence-ia">
          <nvpair id="fence-hosts" name="pcmk_host_list" value="n1 n2 n3"/>
          <nvpair id="fence-cmd" name="command" value="echo &quot;$1 $2&quot; &gt;&gt; %s"/>
        </instance_attributes>
      </primitive>
      <primitive id="d1" class="builtin" type="dummy">
        <operations><op id="d1-mon" name="monitor" interval="200ms" timeout="5s"/></operations>
      </primitive>
    </resources>
    <constraints>
      <rsc_location id="l1" rsc="d1" node="n1" score="INFINITY"/>
      <rsc_location id="l2" rsc="fence" node="n1" score="INFINITY"/>
    </constraints>
  </configuration>
  <status/>
</cib>`, marker)
}

// settledOn waits until node i is the idle DC of a synced partition of
// exactly members.
func (c *testCluster) settledOn(i int, members int) {
	c.t.Helper()
	n := 0
	waitFor(c.t, 30*time.Second, fmt.Sprintf("n%d idle DC of %d members", i, members), func() bool {
		st, ok := c.status(i)
		if ok && st.Synced && st.DCID == uint32(i) && len(st.Members) == members && st.Transition == 0 && st.Pending == 0 {
			n++
		} else {
			n = 0
		}
		return n >= 5 // a few polls in a row: nothing left to schedule
	})
}

// TestCleanStopIsNotFenced: a node stopped cleanly is let go by the DC
// (do_shutdown, expected down) before it leaves the ring, also when it
// runs no resource, so the DC does not fence it. Before the fix an idle
// node left at once, and the DC fenced it as unclean.
func TestCleanStopIsNotFenced(t *testing.T) {
	c := newTestCluster(t, 2, "two_node = true", "startup_wait = 1000")
	c.start(1)
	c.start(2)
	c.waitSynced(1, 2)
	marker := filepath.Join(c.dir, "fenced")
	c.applyCIB(1, fencedCIB(marker))
	c.settledOn(1, 2)
	if err := c.stop(2); err != nil {
		t.Fatalf("n2: %v", err)
	}
	c.settledOn(1, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h, err := c.client(1).FenceHistory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(marker)
	if len(h) > 0 || len(b) > 0 {
		t.Fatalf("n2 stopped cleanly but was fenced: history %+v, fence-script ran %q", h, b)
	}
}

// TestReplaceConfigTooLarge: a configuration the ring cannot carry is
// refused at once with "too large". Before the fix the request was
// accepted, the controller's MsgConfig was refused by the ring
// (ErrTooLarge, logged) and the client waited for an answer that never
// came.
func TestReplaceConfigTooLarge(t *testing.T) {
	c := newTestCluster(t, 1, "", "startup_wait = 1000")
	c.start(1)
	c.waitSynced(1)
	big := strings.Repeat("x", totem.MaxMessageSize+16*1024)
	x := `<cib admin_epoch="0" epoch="1" num_updates="0"><configuration><crm_config/><nodes/><resources>` +
		`<primitive id="d1" class="builtin" type="dummy" description="` + big + `"/>` +
		`</resources><constraints/></configuration><status/></cib>`
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.client(1).ReplaceConfig(ctx, []byte(x), nil)
	var ie *ipc.Error
	if err == nil || ctx.Err() != nil || !errors.As(err, &ie) || ie.Code != ipc.CodeTooLarge {
		t.Fatalf("ReplaceConfig of a %d-byte CIB: %v (want an immediate too large)", len(x), err)
	}
	// A normal change still goes through.
	c.applyCIB(1, fencedCIB(filepath.Join(c.dir, "fenced")))
}

// TestCorruptCIBRefusesToStart: a cib.xml that does not parse stops
// ringd at start with an error naming the file and what to do; it is
// neither overwritten nor replaced by an empty CIB (the operator decides:
// move it away and the node takes the cluster's copy when it joins).
func TestCorruptCIBRefusesToStart(t *testing.T) {
	c := newTestCluster(t, 1, "", "")
	path := filepath.Join(c.nodeDir(1), CIBFile)
	if err := os.MkdirAll(c.nodeDir(1), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("<cib><configuration>"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := c.start(1)
	select {
	case err := <-n.done:
		c.mu.Lock()
		delete(c.nodes, 1)
		c.mu.Unlock()
		n.logf.Close()
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "move it away") {
			t.Fatalf("start with a corrupt %s: %v", path, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ringd started with a corrupt cib.xml")
	}
	if b, _ := os.ReadFile(path); string(b) != "<cib><configuration>" {
		t.Fatalf("the corrupt cib.xml was changed: %q", b)
	}
}
