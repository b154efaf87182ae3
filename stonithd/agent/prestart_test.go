package agent

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ringmaster/internal/testutil"
	"ringmaster/stonithd"
)

// writeFake installs dir/fence_fake: it logs its pid to dir/started when it
// starts, echoes its stdin, and prints its pid and version. Replacing it
// goes through a rename (a new inode), as package managers do.
func writeFake(t *testing.T, dir, version string) {
	t.Helper()
	script := "#!/bin/sh\necho $$ >> " + dir + "/started\nwhile read -r l; do echo \"$l\"; done\necho \"pid=$$ version=" + version + "\"\n"
	tmp := filepath.Join(dir, ".fence_fake.tmp")
	if err := os.WriteFile(tmp, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "fence_fake")); err != nil {
		t.Fatal(err)
	}
}

// started returns the pids dir/fence_fake logged at start, in order.
func started(dir string) []string {
	b, _ := os.ReadFile(filepath.Join(dir, "started"))
	return strings.Fields(string(b))
}

func alive(pid string) bool {
	n, err := strconv.Atoi(pid)
	if err != nil {
		return false
	}
	_, err = os.Stat("/proc/" + strconv.Itoa(n))
	return err == nil
}

// TestPrestartedAgent: KeepWarm starts the agent before any request; a
// request runs on that process (it gets the same stdin a fresh one would)
// and another spare is started behind it; a replaced executable is not
// run from a stale spare; dropping the agent or closing kills the spare.
func TestPrestartedAgent(t *testing.T) {
	dir := t.TempDir()
	writeFake(t, dir, "1")
	r := New(Config{Dir: dir, Prestart: true})
	r.KeepWarm([]string{"fence_fake", stonithd.BuiltinScript, "not_a_fence_agent"})
	testutil.WaitFor(t, 10*time.Second, "a spare of fence_fake to start", func() bool { return len(started(dir)) == 1 })
	first := started(dir)[0]

	cmd := stonithd.Command{Agent: "fence_fake", Args: map[string]string{"action": "off", "port": "n2"}}
	res := r.Exec(ctx(t), cmd)
	if !res.OK() || !strings.Contains(res.Output, "action=off\nport=n2\n") || !strings.Contains(res.Output, "pid="+first+" version=1") {
		t.Fatalf("request on the spare: %+v", res)
	}
	testutil.WaitFor(t, 10*time.Second, "the next spare", func() bool { return len(started(dir)) == 2 })
	second := started(dir)[1]

	// A package upgrade: the waiting spare runs the old file.
	writeFake(t, dir, "2")
	res = r.Exec(ctx(t), cmd)
	if !res.OK() || !strings.Contains(res.Output, "version=2") {
		t.Fatalf("request after the executable changed: %+v", res)
	}
	testutil.WaitFor(t, 10*time.Second, "the stale spare to be killed", func() bool { return !alive(second) })

	testutil.WaitFor(t, 10*time.Second, "a spare of the new version", func() bool { return len(started(dir)) == 4 })
	third := started(dir)[3]
	r.KeepWarm(nil)
	testutil.WaitFor(t, 10*time.Second, "the spare of a dropped agent to be killed", func() bool { return !alive(third) })
	res = r.Exec(ctx(t), cmd)
	if !res.OK() || len(started(dir)) != 5 {
		t.Fatalf("request without a spare: %+v, %d starts", res, len(started(dir)))
	}

	r.KeepWarm([]string{"fence_fake"})
	testutil.WaitFor(t, 10*time.Second, "a spare again", func() bool { return len(started(dir)) == 6 })
	last := started(dir)[5]
	r.Close()
	if alive(last) {
		t.Fatalf("spare %s alive after Close", last)
	}
	r.KeepWarm([]string{"fence_fake"})
	if res := r.Exec(ctx(t), cmd); !res.OK() || len(started(dir)) != 7 {
		t.Fatalf("request after Close: %+v", res)
	}
	if n := len(started(dir)); n != 7 {
		t.Fatalf("%d starts: a closed registry started a spare", n)
	}
}

// TestPrestartOff: without Config.Prestart nothing starts ahead.
func TestPrestartOff(t *testing.T) {
	dir := t.TempDir()
	writeFake(t, dir, "1")
	r := New(Config{Dir: dir})
	defer r.Close()
	r.KeepWarm([]string{"fence_fake"})
	if res := r.Exec(ctx(t), stonithd.Command{Agent: "fence_fake", Args: map[string]string{"action": "monitor"}}); !res.OK() {
		t.Fatalf("monitor: %+v", res)
	}
	if n := len(started(dir)); n != 1 {
		t.Fatalf("%d starts, want only the request's", n)
	}
}

// TestPrestartedFenceDummy: Debian's fence_dummy, started ahead, reboots
// a plug (the Python agent waits in its stdin read).
func TestPrestartedFenceDummy(t *testing.T) {
	requireFenceDummy(t)
	r := New(Config{Node: "n1", Prestart: true})
	defer r.Close()
	r.KeepWarm([]string{"fence_dummy"})
	r.mu.Lock()
	sp := r.spares[filepath.Join(DefaultDir, "fence_dummy")]
	r.mu.Unlock()
	if sp == nil {
		t.Fatal("no spare of fence_dummy")
	}
	status := filepath.Join(t.TempDir(), "status")
	if err := os.WriteFile(status, []byte("on"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := r.Exec(ctx(t), stonithd.Command{Agent: "fence_dummy", Args: map[string]string{"action": "reboot", "nodename": "n2", "status_file": status}})
	if !res.OK() || !strings.Contains(res.Output, "Success: Rebooted") {
		t.Fatalf("reboot: %+v", res)
	}
	if !sp.proc.Exited() {
		t.Fatal("the request did not run on the spare")
	}
}
