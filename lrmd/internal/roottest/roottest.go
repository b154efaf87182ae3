// Package roottest holds helpers for tests that need root and network
// namespaces. Such tests skip when not run as root, except in CI (env
// CI=true), where skipping would hide a broken test: there they fail.
//
// Namespaces are named rm-TAG-PID-RANDOM so parallel test binaries and
// leftovers of a crashed run never collide, and are always deleted (after
// killing what runs in them) in t.Cleanup.
package roottest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"ringmaster/internal/testutil"
)

// Require skips t unless it runs as root with the ip tool available; with
// CI=true it fails instead of skipping.
func Require(t testing.TB) {
	t.Helper()
	testutil.RequireRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		if testutil.InCI() {
			t.Fatal("needs the ip tool (Debian package iproute2); CI=true, so this is a failure, not a skip")
		}
		t.Skip("needs the ip tool (Debian package iproute2)")
	}
}

// NS is a network namespace created by a test.
type NS struct {
	Name   string
	Handle netns.NsHandle
}

func suffix(t testing.TB) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// NewNS creates a namespace with lo up and registers its removal.
func NewNS(t testing.TB, tag string) *NS {
	t.Helper()
	name := "rm-" + tag + "-" + strconv.Itoa(os.Getpid()) + "-" + suffix(t)
	Run(t, "ip", "netns", "add", name)
	ns := &NS{Name: name}
	t.Cleanup(func() {
		if ns.Handle.IsOpen() {
			ns.Handle.Close()
		}
		if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
			for _, pid := range strings.Fields(string(out)) {
				if pid == strconv.Itoa(os.Getpid()) {
					// A thread of this test process that entered the
					// namespace (the main thread may be parked there
					// after netnsx.Do); never kill ourselves.
					continue
				}
				_ = exec.Command("kill", "-9", pid).Run()
			}
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Logf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("open netns %s: %v", name, err)
	}
	ns.Handle = h
	ns.Run(t, "ip", "link", "set", "lo", "up")
	return ns
}

// Run runs a command inside the namespace and returns its combined output;
// a failure fails the test.
func (n *NS) Run(t testing.TB, args ...string) string {
	t.Helper()
	return Run(t, append([]string{"ip", "netns", "exec", n.Name}, args...)...)
}

// Try runs a command inside the namespace and returns output and error.
func (n *NS) Try(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...).CombinedOutput()
	return string(out), err
}

// Start starts a long-running command inside the namespace; it is killed
// in t.Cleanup.
func (n *NS) Start(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v in %s: %v", args, n.Name, err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// Run runs a command on the host and returns its combined output; a
// failure fails the test.
func Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Veth connects namespaces a and b with a veth pair named aIf (in a) and
// bIf (in b), assigns the given address/prefix to each end (empty: none)
// and brings both ends up. Interface names are per namespace, so the
// pair is created under unique temporary names and renamed inside.
func Veth(t testing.TB, a *NS, aIf, aAddr string, b *NS, bIf, bAddr string) {
	t.Helper()
	tmpA, tmpB := "rmv"+suffix(t), "rmv"+suffix(t)
	Run(t, "ip", "link", "add", tmpA, "type", "veth", "peer", "name", tmpB)
	Run(t, "ip", "link", "set", tmpA, "netns", a.Name)
	Run(t, "ip", "link", "set", tmpB, "netns", b.Name)
	for _, e := range []struct {
		ns        *NS
		tmp, name string
		addr      string
	}{{a, tmpA, aIf, aAddr}, {b, tmpB, bIf, bAddr}} {
		e.ns.Run(t, "ip", "link", "set", e.tmp, "name", e.name)
		if e.addr != "" {
			e.ns.Run(t, "ip", "addr", "add", e.addr, "dev", e.name)
		}
		e.ns.Run(t, "ip", "link", "set", e.name, "up")
	}
}
