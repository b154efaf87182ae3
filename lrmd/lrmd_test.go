package lrmd_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"ringmaster/internal/testutil"
	"ringmaster/lrmd"
	"ringmaster/lrmd/agents/lsb"
	"ringmaster/lrmd/agents/ocf"
)

// testMeta is meta-data shared by the test agents: "must" is required.
const testMeta = `<?xml version="1.0"?>
<resource-agent name="T" version="0.1">
<version>1.1</version>
<shortdesc lang="en">test agent</shortdesc>
<parameters>
<parameter name="must" required="1"><shortdesc lang="en">a required one</shortdesc><content type="string"/></parameter>
<parameter name="dir"><shortdesc lang="en">work dir</shortdesc><content type="string"/></parameter>
</parameters>
<actions><action name="start" timeout="20s"/></actions>
</resource-agent>`

// writeAgent installs an OCF agent root/resource.d/test/NAME whose action
// handling is body (sh, with $1 the action and "meta-data" answered).
func writeAgent(t *testing.T, root, name, body string) {
	t.Helper()
	dir := filepath.Join(root, "resource.d", "test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nif [ \"$1\" = meta-data ]; then cat <<'XML'\n" + testMeta + "\nXML\nexit 0; fi\n" + body + "\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func newManager(t *testing.T, classes ...lrmd.Class) *lrmd.Manager {
	t.Helper()
	m, err := lrmd.NewManager(lrmd.Config{Registry: lrmd.NewRegistry(classes...), Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func readPids(t *testing.T, p string) []int {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, n)
	}
	return pids
}

func TestTimeoutKillsWholeProcessGroup(t *testing.T) {
	root, work := t.TempDir(), t.TempDir()
	// The agent forks a sleeping child, records both PIDs, then waits.
	writeAgent(t, root, "Forker", `sleep 300 & echo "$$ $!" > "$OCF_RESKEY_dir/pids"; wait`)
	m := newManager(t, ocf.New(root))
	r := m.Exec(context.Background(), lrmd.Op{Resource: "f", Agent: "ocf:test:Forker", Action: "start",
		Params: map[string]string{"must": "x", "dir": work}, Timeout: 500 * time.Millisecond})
	if r.Status != lrmd.StatusTimedOut || r.RC != lrmd.RCErrGeneric {
		t.Fatalf("result %s (status %v), want timed out", r.Summary(), r.Status)
	}
	pids := readPids(t, filepath.Join(work, "pids"))
	if len(pids) != 2 {
		t.Fatalf("pids file: %v", pids)
	}
	testutil.WaitFor(t, 5*time.Second, "agent and its forked child to be gone", func() bool { return !alive(pids[0]) && !alive(pids[1]) })
	if fc := m.FailCount("f"); fc.Count != 1 || fc.Node != "n1" {
		t.Fatalf("fail count after a timed-out start: %+v", fc)
	}
}

func TestNormalExitLeavesDaemonsAndDoesNotHang(t *testing.T) {
	work := t.TempDir()
	// A start action that leaves a daemon holding stdout must not hang
	// the operation, and the daemon must survive.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := lrmd.RunProcess(ctx, lrmd.ProcSpec{Path: "/bin/sh", Args: []string{"-c", `sleep 300 & echo $! > ` + work + `/pid; echo started`}})
	if res.Err != nil || res.ExitCode != 0 || strings.TrimSpace(string(res.Stdout)) != "started" {
		t.Fatalf("got %+v", res)
	}
	pid := readPids(t, filepath.Join(work, "pid"))[0]
	if !alive(pid) {
		t.Fatal("daemon started by the agent was killed after a normal exit")
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

func TestOutputIsBounded(t *testing.T) {
	res := lrmd.RunProcess(context.Background(), lrmd.ProcSpec{Path: "/bin/sh", Args: []string{"-c", `head -c 100000 /dev/zero; head -c 10 /dev/zero >&2`}, MaxOutput: 1000})
	if len(res.Stdout) != 1000 || !res.Truncated || len(res.Stderr) != 10 || res.ExitCode != 0 {
		t.Fatalf("stdout %d bytes, stderr %d, truncated %v, exit %d", len(res.Stdout), len(res.Stderr), res.Truncated, res.ExitCode)
	}
}

func TestOCFEnvironment(t *testing.T) {
	root, work := t.TempDir(), t.TempDir()
	writeAgent(t, root, "Env", `env > "$OCF_RESKEY_dir/env"; exit 0`)
	m := newManager(t, ocf.New(root))
	r := m.Exec(context.Background(), lrmd.Op{Resource: "rsc1", Agent: "ocf:test:Env", Action: "start",
		Params: map[string]string{"must": "x y", "dir": work}, Meta: map[string]string{"target-role": "Started"}, Timeout: 7 * time.Second})
	if !r.OK() {
		t.Fatalf("start: %s", r.Summary())
	}
	b, _ := os.ReadFile(filepath.Join(work, "env"))
	env := string(b)
	for _, want := range []string{
		"OCF_ROOT=" + root, "OCF_RESOURCE_INSTANCE=rsc1", "OCF_RESOURCE_TYPE=Env", "OCF_RESOURCE_PROVIDER=test",
		"OCF_RESKEY_must=x y", "OCF_RESKEY_CRM_meta_timeout=7000", "OCF_RESKEY_CRM_meta_interval=0",
		"OCF_RESKEY_CRM_meta_target_role=Started", "OCF_RA_VERSION_MAJOR=1",
	} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("agent environment lacks %q:\n%s", want, env)
		}
	}
}

func TestOCFExitCodes(t *testing.T) {
	root := t.TempDir()
	writeAgent(t, root, "Code", `exit "$OCF_RESKEY_dir"`)
	m := newManager(t, ocf.New(root))
	for code, want := range map[int]lrmd.RC{0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8, 9: 9, 190: 190, 42: lrmd.RCErrGeneric} {
		r := m.Exec(context.Background(), lrmd.Op{Resource: "c", Agent: "ocf:test:Code", Action: "monitor", Params: map[string]string{"must": "x", "dir": strconv.Itoa(code)}})
		if r.RC != want || r.Status != lrmd.StatusDone {
			t.Errorf("exit %d: got %s, want rc %d", code, r.Summary(), want)
		}
	}
	if r := m.Exec(context.Background(), lrmd.Op{Resource: "c", Agent: "ocf:test:Missing", Action: "start"}); r.RC != lrmd.RCErrInstalled || r.Status != lrmd.StatusNotInstalled {
		t.Errorf("missing agent: %s", r.Summary())
	}
	if r := m.Exec(context.Background(), lrmd.Op{Resource: "c", Agent: "nope:X", Action: "start"}); r.RC != lrmd.RCErrInstalled {
		t.Errorf("unknown class: %s", r.Summary())
	}
}

func TestMissingRequiredParameterDoesNotRunAgent(t *testing.T) {
	root, work := t.TempDir(), t.TempDir()
	writeAgent(t, root, "Marker", `touch "`+work+`/ran"; exit 0`)
	m := newManager(t, ocf.New(root))
	r := m.Exec(context.Background(), lrmd.Op{Resource: "m", Agent: "ocf:test:Marker", Action: "start"})
	if r.RC != lrmd.RCErrConfigured || r.Status != lrmd.StatusInvalid || !strings.Contains(r.Reason, `"must"`) {
		t.Fatalf("got %s, want rc 6 naming the parameter", r.Summary())
	}
	if exists(filepath.Join(work, "ran")) {
		t.Fatal("the agent ran although a required parameter was missing")
	}
	if err := m.StartRecurring(lrmd.Op{Resource: "m", Agent: "ocf:test:Marker", Action: "monitor", Interval: time.Second}); !strings.Contains(fmtErr(err), "must") {
		t.Fatalf("StartRecurring without the parameter: %v", err)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestQueueRunsOneOpPerResourceInOrder(t *testing.T) {
	root, work := t.TempDir(), t.TempDir()
	gate := filepath.Join(work, "gate")
	// Each op logs begin/end around a pause; op "0" waits for the gate.
	writeAgent(t, root, "Q", `echo "begin $OCF_RESKEY_must" >> "$OCF_RESKEY_dir/log"
if [ "$OCF_RESKEY_must" = 0 ]; then touch "$OCF_RESKEY_dir/running"; while [ ! -e "`+gate+`" ]; do sleep 0.01; done; fi
sleep 0.02
echo "end $OCF_RESKEY_must" >> "$OCF_RESKEY_dir/log"`)
	m := newManager(t, ocf.New(root))
	op := func(rsc string, n int, dir string) lrmd.Op {
		return lrmd.Op{Resource: rsc, Agent: "ocf:test:Q", Action: "start", Params: map[string]string{"must": strconv.Itoa(n), "dir": dir}}
	}
	var wg sync.WaitGroup
	results := make([]lrmd.Result, 6)
	wg.Add(1)
	go func() { defer wg.Done(); results[0] = m.Exec(context.Background(), op("a", 0, work)) }()
	testutil.WaitFor(t, 5*time.Second, "op 0 to run", func() bool { return exists(filepath.Join(work, "running")) })
	for i := 1; i <= 5; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = m.Exec(context.Background(), op("a", i, work)) }()
		testutil.WaitFor(t, 5*time.Second, "op to be queued", func() bool { return m.Pending("a") == i })
	}
	// Another resource is not held up by the blocked one.
	other := t.TempDir()
	if r := m.Exec(context.Background(), op("b", 9, other)); !r.OK() {
		t.Fatalf("resource b: %s", r.Summary())
	}
	// A queued op whose caller gives up is removed without running.
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan lrmd.Result)
	go func() { cancelled <- m.Exec(ctx, op("a", 7, work)) }()
	testutil.WaitFor(t, 5*time.Second, "op 7 to be queued", func() bool { return m.Pending("a") == 6 })
	cancel()
	if r := <-cancelled; r.Status != lrmd.StatusCancelled {
		t.Fatalf("cancelled queued op: %s", r.Summary())
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, r := range results {
		if !r.OK() {
			t.Fatalf("op %d: %s", i, r.Summary())
		}
	}
	b, _ := os.ReadFile(filepath.Join(work, "log"))
	var want []string
	for i := 0; i <= 5; i++ {
		want = append(want, "begin "+strconv.Itoa(i), "end "+strconv.Itoa(i))
	}
	if got := strings.Fields(strings.ReplaceAll(string(b), " ", "_")); strings.Join(got, ",") != strings.ReplaceAll(strings.Join(want, ","), " ", "_") {
		t.Fatalf("execution log:\n%s\nwant strictly serial begin/end 0..5", b)
	}
}

func TestRecurringMonitorReportsFailureOnce(t *testing.T) {
	root, work := t.TempDir(), t.TempDir()
	state := filepath.Join(work, "state")
	if err := os.WriteFile(state, []byte("up"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeAgent(t, root, "Mon", `echo x >> "$OCF_RESKEY_dir/runs"; [ "$(cat "$OCF_RESKEY_dir/state")" = up ] && exit 0; exit 7`)
	m := newManager(t, ocf.New(root))
	runs := func() int { b, _ := os.ReadFile(filepath.Join(work, "runs")); return strings.Count(string(b), "x") }
	op := lrmd.Op{Resource: "mon", Agent: "ocf:test:Mon", Action: "monitor", Interval: 20 * time.Millisecond, Params: map[string]string{"must": "1", "dir": work}}
	if err := m.StartRecurring(op); err != nil {
		t.Fatal(err)
	}
	next := func() lrmd.Event {
		select {
		case e := <-m.Events():
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no event within 10s")
		}
		return lrmd.Event{}
	}
	if e := next(); e.Failed || e.Result.RC != lrmd.RCOK || e.Op.Key() != "mon_monitor_20" {
		t.Fatalf("first event: %+v", e)
	}
	// Several more successful runs produce no event.
	n := runs()
	testutil.WaitFor(t, 10*time.Second, "3 more monitor runs", func() bool { return runs() >= n+3 })
	if err := os.WriteFile(state, []byte("down"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := next()
	if !e.Failed || e.Result.RC != lrmd.RCNotRunning || e.FailCount != 1 || e.Node != "n1" {
		t.Fatalf("failure event: %+v", e)
	}
	n = runs()
	testutil.WaitFor(t, 10*time.Second, "5 more failing monitor runs", func() bool { return runs() >= n+5 })
	if err := m.Cancel("mon", "monitor", 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := m.Cancel("mon", "monitor", 20*time.Millisecond); !errors.Is(err, lrmd.ErrNotFound) {
		t.Fatalf("second cancel: %v", err)
	}
	m.Close()
	for e := range m.Events() {
		t.Errorf("unexpected event after the failure was reported: rc %d failed %v", e.Result.RC, e.Failed)
	}
	if fc := m.FailCount("mon"); fc.Count != 1 || fc.LastOp != "monitor 20ms" {
		t.Fatalf("fail count %+v, want 1", fc)
	}
	m.ClearFailCount("mon")
	if fc := m.FailCount("mon"); fc.Count != 0 {
		t.Fatalf("fail count after clear: %+v", fc)
	}
}

func TestDebianDummyAgent(t *testing.T) {
	const dummy = "/usr/lib/ocf/resource.d/heartbeat/Dummy"
	if !exists(dummy) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing: install Debian package resource-agents", dummy)
		}
		t.Skipf("%s missing (Debian package resource-agents)", dummy)
	}
	m := newManager(t, ocf.New(""))
	state := filepath.Join(t.TempDir(), "dummy.state")
	do := func(action string) lrmd.Result {
		return m.Exec(context.Background(), lrmd.Op{Resource: "d", Agent: "ocf:heartbeat:Dummy", Action: action, Params: map[string]string{"state": state}})
	}
	for _, step := range []struct {
		action string
		want   lrmd.RC
	}{{"monitor", 7}, {"start", 0}, {"monitor", 0}, {"start", 0}, {"stop", 0}, {"monitor", 7}, {"stop", 0}, {"validate-all", 0}} {
		if r := do(step.action); r.RC != step.want || r.Status != lrmd.StatusDone {
			t.Fatalf("Dummy %s: %s, want rc %d\nstderr: %s", step.action, r.Summary(), step.want, r.Stderr)
		}
	}
	md, err := m.Registry().MetaData(context.Background(), lrmd.AgentID{Class: "ocf", Provider: "heartbeat", Type: "Dummy"})
	if err != nil || md.Param("state") == nil || md.Name != "Dummy" {
		t.Fatalf("Dummy meta-data: %v %+v", err, md)
	}
}

func TestLSBStatusMapping(t *testing.T) {
	dir := t.TempDir()
	code := filepath.Join(dir, "code")
	script := `#!/bin/sh
### BEGIN INIT INFO
# Provides:          svc
# Short-Description: test service
# Description:       a test service
#                    on two lines
### END INIT INFO
case "$1" in
  status) exit $(cat ` + code + `) ;;
  start|stop) exit 0 ;;
  restart) exit 42 ;;
  *) exit 3 ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "svc"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	m := newManager(t, lsb.New(dir))
	for lsbCode, want := range map[int]lrmd.RC{0: lrmd.RCOK, 1: lrmd.RCNotRunning, 2: lrmd.RCNotRunning, 3: lrmd.RCNotRunning, 4: lrmd.RCErrGeneric, 150: lrmd.RCErrInstalled, 151: lrmd.RCErrPerm} {
		if err := os.WriteFile(code, []byte(strconv.Itoa(lsbCode)), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, action := range []string{"monitor", "status"} {
			if r := m.Exec(context.Background(), lrmd.Op{Resource: "svc", Agent: "lsb:svc", Action: action}); r.RC != want {
				t.Errorf("LSB %s exit %d: got %s, want rc %d", action, lsbCode, r.Summary(), want)
			}
		}
	}
	if r := m.Exec(context.Background(), lrmd.Op{Resource: "svc", Agent: "lsb:svc", Action: "start"}); !r.OK() {
		t.Errorf("start: %s", r.Summary())
	}
	if r := m.Exec(context.Background(), lrmd.Op{Resource: "svc", Agent: "lsb:svc", Action: "restart"}); r.RC != lrmd.RCErrGeneric {
		t.Errorf("restart exit 42: %s", r.Summary())
	}
	md, err := m.Registry().MetaData(context.Background(), lrmd.AgentID{Class: "lsb", Type: "svc"})
	if err != nil || md.ShortDesc() != "test service" || !strings.Contains(md.LongDesc(), "on two lines") {
		t.Fatalf("LSB meta-data: %v %+v", err, md)
	}
	ids, err := m.Registry().List(context.Background(), "lsb")
	if err != nil || len(ids) != 1 || ids[0].String() != "lsb:svc" {
		t.Fatalf("list: %v %v", ids, err)
	}
}

// TestStartedProcess: a process started ahead of its input runs up to its
// read of stdin, then gets the input Run gives it; its environment is the
// spec's, its output bounded like RunProcess's.
func TestStartedProcess(t *testing.T) {
	work := t.TempDir()
	p, err := lrmd.StartProcess(lrmd.ProcSpec{Path: "/bin/sh", Env: []string{"X=1"},
		Args: []string{"-c", `touch ` + work + `/up; read a; read b; echo "$a $b X=$X"; echo err >&2; exit 3`}})
	if err != nil {
		t.Fatal(err)
	}
	// It starts before any input exists.
	testutil.WaitFor(t, 10*time.Second, "the started process to run up to its read", func() bool {
		_, err := os.Stat(filepath.Join(work, "up"))
		return err == nil
	})
	if p.Exited() {
		t.Fatal("a process waiting for stdin reports Exited")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := p.Run(ctx, []byte("action=off\nport=n2\n"))
	if res.Err != nil || res.ExitCode != 3 || strings.TrimSpace(string(res.Stdout)) != "action=off port=n2 X=1" || strings.TrimSpace(string(res.Stderr)) != "err" {
		t.Fatalf("got %+v (stdout %q)", res, res.Stdout)
	}
	if !p.Exited() {
		t.Fatal("Exited is false after Run returned")
	}
}

// TestStartedProcessTimeoutKillsGroup: Run's ctx ending kills the whole
// process group, as RunProcess does; Kill ends a process never used.
func TestStartedProcessTimeoutKillsGroup(t *testing.T) {
	work := t.TempDir()
	p, err := lrmd.StartProcess(lrmd.ProcSpec{Path: "/bin/sh",
		Args: []string{"-c", `read a; sleep 300 & echo $! > ` + work + `/pid.tmp; mv ` + work + `/pid.tmp ` + work + `/pid; wait`}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the child runs (or after a deadline: Run then
		// returns before the pid exists and readPids fails the test).
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(filepath.Join(work, "pid")); err == nil {
				break
			}
		}
		cancel()
	}()
	res := p.Run(ctx, []byte("go\n"))
	if !errors.Is(res.Err, context.Canceled) {
		t.Fatalf("Run after cancel: %+v", res)
	}
	pid := readPids(t, filepath.Join(work, "pid"))[0]
	testutil.WaitFor(t, 5*time.Second, "the agent's child to be killed with its group", func() bool { return !alive(pid) })

	q, err := lrmd.StartProcess(lrmd.ProcSpec{Path: "/bin/sh", Args: []string{"-c", `read a`}})
	if err != nil {
		t.Fatal(err)
	}
	q.Kill()
	if !q.Exited() {
		t.Fatal("Exited is false after Kill")
	}
}

// TestStartedProcessNeverRunsWithoutRequest: when the daemon dies (its
// pipe ends close with no request written) the agent must not run with an
// empty stdin (fencing.py would reboot by default): the guard kills it
// before the agent's stdin can reach end of file.
func TestStartedProcessNeverRunsWithoutRequest(t *testing.T) {
	work := t.TempDir()
	p, err := lrmd.StartProcess(lrmd.ProcSpec{Path: "/bin/sh",
		Args: []string{"-c", `touch ` + work + `/up; read -r l; echo ran > ` + work + `/ran`}})
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the agent to wait on its stdin", func() bool {
		_, err := os.Stat(filepath.Join(work, "up"))
		return err == nil
	})
	p.DropEnds()
	testutil.WaitFor(t, 10*time.Second, "the guard to kill the agent", p.Exited)
	if _, err := os.Stat(filepath.Join(work, "ran")); err == nil {
		t.Fatal("the agent ran on an empty stdin after its daemon died")
	}
}
