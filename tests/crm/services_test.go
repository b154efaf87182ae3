package crm_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ringmaster/internal/clustertest"
	"ringmaster/internal/testutil"
)

// The services the HA guides build, end to end in network namespaces:
// an LVS director pair and a shared-storage service. Fencing is a
// builtin:fence-script that powers a namespaced node off (kills every
// process in its namespace, which also releases its mounts).

// nsCluster starts a 3-node namespaced cluster (udp, token 200).
func nsCluster(t *testing.T) *clustertest.Cluster {
	t.Helper()
	testutil.RequireRoot(t)
	requireAgents(t)
	c := clustertest.New(t, clustertest.Options{Nodes: 3, Transport: "udp", Token: 200, ExtraTotem: "token_coefficient = 0",
		Netns: true, Resources: "startup_wait = 2000"})
	c.StartAll()
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	return c
}

// poweredOff is the head of a resources.toml with fencing on and one
// device, a builtin:fence-script that powers a namespaced node off.
func poweredOff(c *clustertest.Cluster) string {
	return fmt.Sprintf(`
[cluster]
stonith-enabled = true
no-quorum-policy = "stop"

[rsc_defaults]
resource-stickiness = 100
%s`, poweroffDevice(c))
}

// poweroffDevice is the [[resource]] of that fence device.
func poweroffDevice(c *clustertest.Cluster) string {
	return fmt.Sprintf("\n[[resource]]\nid = \"poweroff\"\nagent = \"builtin:fence-script\"\nparams = { command = %q, pcmk_host_list = \"n1 n2 n3\" }\n", c.PowerOffCommand())
}

// nsRun runs a command in a namespace (fatal on error).
func nsRun(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %s: %v\n%s", ns, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// httpServer serves dir on port in namespace ns until the test ends.
func httpServer(t *testing.T, ns, addr string, port int, dir string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "python3", "-m", "http.server", fmt.Sprint(port), "--bind", addr, "--directory", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
}

// fetcher polls url from namespace ns with one long-lived python process
// (one line per answer: unix-ms, then the body or "error").
type fetcher struct {
	mu    sync.Mutex
	lines []string
	cmd   *exec.Cmd
}

func startFetcher(t *testing.T, ns, url string) *fetcher {
	t.Helper()
	script := `import sys, time, urllib.request
while True:
    try: b = urllib.request.urlopen(sys.argv[1], timeout=0.3).read().decode().strip()
    except Exception: b = "error"
    print(int(time.time()*1000), b, flush=True)
    time.sleep(0.05)
`
	f := &fetcher{cmd: exec.Command("ip", "netns", "exec", ns, "python3", "-c", script, url)}
	out, err := f.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.ReadAll(&lineSink{f: f, r: out}) }()
	t.Cleanup(func() { _ = f.cmd.Process.Kill(); _ = f.cmd.Wait() })
	return f
}

// lineSink splits the fetcher's output into lines as it arrives.
type lineSink struct {
	f    *fetcher
	r    io.Reader
	part string
}

func (s *lineSink) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.part += string(p[:n])
	for {
		i := strings.IndexByte(s.part, '\n')
		if i < 0 {
			break
		}
		s.f.mu.Lock()
		s.f.lines = append(s.f.lines, s.part[:i])
		s.f.mu.Unlock()
		s.part = s.part[i+1:]
	}
	return n, err
}

// answers returns the bodies answered at or after since.
func (f *fetcher) answers(since time.Time) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, l := range f.lines {
		var ms int64
		var body string
		if _, err := fmt.Sscanf(l, "%d %s", &ms, &body); err != nil || ms < since.UnixMilli() {
			continue
		}
		out = append(out, body)
	}
	return out
}

// movedFrom waits until every rsc runs together on one node other than
// from, as node i sees it, and returns that node. (groupOn would return
// at once: a node lost without a clean stop keeps its resources in crm
// status until it is fenced.)
func movedFrom(t *testing.T, c *clustertest.Cluster, from string, i int, rscs ...string) string {
	t.Helper()
	return togetherOn(t, c, i, from, rscs...)
}

func count(bodies []string, want string) int {
	n := 0
	for _, b := range bodies {
		if b == want {
			n++
		}
	}
	return n
}

// TestLVSDirectorPair: group {builtin:vip, builtin:lvs (nftables, NAT with
// masquerade, TCP checks)} on a 3-node cluster in front of two real
// servers. A client keeps asking through the VIP; the director is powered
// off (fenced by fence-script), the group moves, and the client gets
// answers from both real servers again.
func TestLVSDirectorPair(t *testing.T) {
	c := nsCluster(t)
	for i := 1; i <= 3; i++ {
		nsRun(t, c.Node(i).NS, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	}
	var rs []string
	for k := 1; k <= 2; k++ {
		ns, addr := c.AddHost(k)
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "id"), []byte(fmt.Sprintf("rs%d\n", k)), 0o644); err != nil {
			t.Fatal(err)
		}
		httpServer(t, ns, addr, 8080, dir)
		rs = append(rs, addr+":8080")
	}
	clientNS, _ := c.AddHost(9)
	vip := strings.TrimSuffix(c.Node(1).Addr, ".1") + ".100"
	cfg := poweredOff(c) + fmt.Sprintf(`
[[resource]]
id = "vip"
agent = "builtin:vip"
params = { ip = %q, cidr_netmask = 24 }
[[resource.op]]
name = "monitor"
interval = "1s"

[[resource]]
id = "lvs"
agent = "builtin:lvs"
params = { vip = %q, port = 80, scheduler = "rr", method = "nat", backend = "nftables", masquerade = true, realservers = %q, check = "tcp", check_interval = "1s" }
[[resource.op]]
name = "monitor"
interval = "2s"

[[group]]
id = "director"
members = ["vip", "lvs"]
`, vip, vip, strings.Join(rs, ","))
	f := filepath.Join(c.Dir, "lvs.toml")
	if err := os.WriteFile(f, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCtl(t, c, 1, "crm", "apply", "-f", f)
	h := groupOn(t, c, 1, "vip", "lvs")
	fe := startFetcher(t, clientNS, "http://"+vip+"/id")
	start := time.Now()
	testutil.WaitFor(t, deadline, "answers from both real servers through the VIP", func() bool {
		a := fe.answers(start)
		return count(a, "rs1") >= 2 && count(a, "rs2") >= 2
	})

	hi := nodeNum(h)
	killed := time.Now()
	c.Kill(hi)
	c.SetLink(hi, false)
	// Until its link is cut the killed director still forwards (the VIP
	// and the nftables rules stay in its namespace), and its answers
	// would count as the new director's: wait for the group to run
	// elsewhere (after fencing), then for answers after that.
	nh := movedFrom(t, c, h, hi%3+1, "vip", "lvs")
	moved := time.Now()
	testutil.WaitFor(t, deadline, "answers from both real servers through the new director "+nh, func() bool {
		a := fe.answers(moved)
		return count(a, "rs1") >= 2 && count(a, "rs2") >= 2
	})
	a := fe.answers(killed)
	first := 0
	for i, b := range a {
		if b != "error" {
			first = i
			break
		}
	}
	t.Logf("director %s -> %s; the client's first answer after the kill came after %d failed requests (polls every ~50 ms + 300 ms timeout)", h, nh, first)
}

// TestSharedStorageGroup: the service the HA guides build: group
// {ocf:heartbeat:Filesystem (an ext4 image on a loop device), builtin:vip,
// a daemon (ocf:heartbeat:anything serving the filesystem over HTTP)}. The
// data written before the test is served through the VIP; the holder is
// powered off, and the group comes up on another node with the same data.
func TestSharedStorageGroup(t *testing.T) {
	c := nsCluster(t)
	// An ext4 image on a loop device, seeded with the data; where the
	// machine has no loop devices, a tmpfs (the group still moves as one,
	// but the data does not travel).
	device, fstype, path, want := "tmpfs", "tmpfs", "/", ""
	img := filepath.Join(c.Dir, "shared.img")
	if err := exec.Command("truncate", "-s", "16M", img).Run(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput(); err != nil {
		t.Logf("no loop device (%v: %s): the filesystem is a tmpfs", err, out)
	} else {
		loop := strings.TrimSpace(string(out))
		t.Cleanup(func() { _ = exec.Command("losetup", "-d", loop).Run() })
		if out, err := exec.Command("mkfs.ext4", "-q", "-F", loop).CombinedOutput(); err != nil {
			t.Fatalf("mkfs.ext4: %v: %s", err, out)
		}
		seed := t.TempDir()
		if out, err := exec.Command("unshare", "-m", "sh", "-c", fmt.Sprintf("mount %s %s && echo shared-data > %s/data && umount %s", loop, seed, seed, seed)).CombinedOutput(); err != nil {
			t.Fatalf("seeding the filesystem: %v: %s", err, out)
		}
		device, fstype, path, want = loop, "ext4", "/data", "shared-data"
	}
	var fe *fetcher
	served := func(since time.Time) bool {
		for _, b := range fe.answers(since) {
			if b != "error" && (want == "" || b == want) {
				return true
			}
		}
		return false
	}
	mnt := filepath.Join(c.Dir, "mnt")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	clientNS, _ := c.AddHost(9)
	vip := strings.TrimSuffix(c.Node(1).Addr, ".1") + ".100"
	cfg := poweredOff(c) + fmt.Sprintf(`
[[resource]]
id = "fs"
agent = "ocf:heartbeat:Filesystem"
params = { device = %q, directory = %q, fstype = %q }
[[resource.op]]
name = "monitor"
interval = "2s"

[[resource]]
id = "ip"
agent = "builtin:vip"
params = { ip = %q, cidr_netmask = 24 }

[[resource]]
id = "web"
agent = "ocf:heartbeat:anything"
params = { binfile = "/usr/bin/python3", cmdline_options = "-m http.server 8000 --directory %s", workdir = "/" }
[[resource.op]]
name = "monitor"
interval = "2s"

[[group]]
id = "service"
members = ["fs", "ip", "web"]
`, device, mnt, fstype, vip, mnt)
	f := filepath.Join(c.Dir, "storage.toml")
	if err := os.WriteFile(f, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCtl(t, c, 1, "crm", "apply", "-f", f)
	h := groupOn(t, c, 1, "fs", "ip", "web")
	fe = startFetcher(t, clientNS, "http://"+vip+":8000"+path)
	start := time.Now()
	testutil.WaitFor(t, deadline, "the data served through the VIP from "+h, func() bool { return served(start) })

	hi := nodeNum(h)
	killed := time.Now()
	c.Kill(hi)
	c.SetLink(hi, false)
	// Until its link is cut the old holder still serves (its daemon, the
	// mount and the VIP outlive ringd), and its answers would count as
	// the new holder's: wait for the group to run elsewhere (after
	// fencing), then for the data served after that.
	nh := movedFrom(t, c, h, hi%3+1, "fs", "ip", "web")
	moved := time.Now()
	testutil.WaitFor(t, deadline, "the data served again from "+nh, func() bool { return served(moved) })
	// Powered off: nothing of the old holder is left running (SIGKILL
	// takes effect asynchronously: wait for the namespace to empty).
	testutil.WaitFor(t, deadline, "no process left in the fenced node's namespace", func() bool {
		out, _ := exec.Command("ip", "netns", "pids", c.Node(hi).NS).Output()
		return strings.TrimSpace(string(out)) == ""
	})
	t.Logf("service %s -> %s, data served again %v after the kill", h, nh, time.Since(killed).Round(time.Millisecond))
}
