package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"ringmaster/config"
	"ringmaster/crm/controld"
)

// fakeExec stands in for the executive around an lrmRunner: post runs
// under lock (the executive's lock), and the results the controller would
// get are recorded.
type fakeExec struct {
	lock    sync.Mutex // the executive's lock
	mu      sync.Mutex
	results []controld.OpResult
	// entered gets a value each time post is called (before the lock).
	entered chan struct{}
}

func (f *fakeExec) post(fn func(time.Time)) {
	select {
	case f.entered <- struct{}{}:
	default:
	}
	f.lock.Lock()
	defer f.lock.Unlock()
	fn(time.Now())
}

func (f *fakeExec) opDone(_ time.Time, r controld.OpResult) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.results = append(f.results, r)
}

func (f *fakeExec) got() []controld.OpResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]controld.OpResult(nil), f.results...)
}

// testAgent is an OCF agent (provider "test") for lrmRunner tests: its
// monitor appends a line to $OCF_RESKEY_log and answers 0 when the file
// $OCF_RESKEY_state exists, 7 otherwise. With hold set, its meta-data
// waits while the file hold exists (meta-data gets no parameters).
func testAgent(t *testing.T, root, name, hold string) {
	t.Helper()
	dir := filepath.Join(root, "resource.d", "test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	wait := ""
	if hold != "" {
		wait = fmt.Sprintf("while [ -e %q ]; do sleep 0.02; done", hold)
	}
	script := fmt.Sprintf(`#!/bin/sh
case "$1" in
meta-data)
	%s
	cat <<'EOF'
<?xml version="1.0"?>
<resource-agent name="%s" version="1">
<version>1.0</version>
<parameters>
<parameter name="state"><content type="string"/></parameter>
<parameter name="log"><content type="string"/></parameter>
</parameters>
<actions><action name="start"/><action name="stop"/><action name="monitor"/><action name="meta-data"/></actions>
</resource-agent>
EOF
	exit 0;;
monitor)
	[ -n "$OCF_RESKEY_log" ] && echo m >> "$OCF_RESKEY_log"
	[ -e "$OCF_RESKEY_state" ] && exit 0
	exit 7;;
start|stop) exit 0;;
esac
exit 3
`, wait, name)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// newTestLRM builds an lrmRunner as ringd does, on fakeExec, with OCF
// agents under ocfRoot.
func newTestLRM(t *testing.T, ocfRoot string) (*lrmRunner, *fakeExec) {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.System.StateDir = dir
	cfg.Resources.RunDir = filepath.Join(dir, "run")
	cfg.Resources.OCFRoot = ocfRoot
	cfg.IPC.Socket = filepath.Join(dir, "ringd.sock")
	d := &Daemon{log: zap.NewNop(), node: 1, cfg: cfg}
	fe := &fakeExec{entered: make(chan struct{}, 1)}
	l, err := newLRMRunner(d, &cfg.Resources, "n1", fe.post, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.opDone = fe.opDone
	t.Cleanup(l.close)
	return l, fe
}

func lines(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "\n")
}

// TestRecurringReplacedKeepsOldEventsOut: a recurring monitor started
// again with a new ID (same resource, action and interval) while results
// of the old one wait in lrmd's event queue: those must not be reported
// under the new ID. Before the fix the event loop looked the key up when
// it read an event, so the old monitor's "running" came back as the new
// monitor's first result although the resource had stopped meanwhile.
func TestRecurringReplacedKeepsOldEventsOut(t *testing.T) {
	root := t.TempDir()
	testAgent(t, root, "probe", "")
	l, fe := newTestLRM(t, root)
	state, log := filepath.Join(root, "state"), filepath.Join(root, "log")
	mon := func(id uint64) controld.Op {
		return controld.Op{ID: id, Kind: controld.OpExecute, Rsc: "r", Class: "ocf", Provider: "test", Type: "probe",
			Task: "monitor", IntervalMS: 20, Timeout: 5 * time.Second, Params: map[string]string{"state": state, "log": log}}
	}
	fe.lock.Lock()
	locked := true
	defer func() {
		if locked {
			fe.lock.Unlock()
		}
	}()
	l.run(mon(1))
	// The old monitor's first result (7) is read and waits for the lock.
	select {
	case <-fe.entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the first monitor result never came")
	}
	// The resource runs: the old monitor finds 0 (queued in lrmd: the
	// event loop is blocked); two more runs make sure it was queued.
	if err := os.WriteFile(state, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	n := lines(log)
	waitFor(t, 20*time.Second, "the old monitor to see the resource running", func() bool { return lines(log) >= n+2 })
	// It stops again, and the controller starts the monitor anew (ID 2).
	if err := os.Remove(state); err != nil {
		t.Fatal(err)
	}
	l.run(mon(2))
	fe.lock.Unlock()
	locked = false
	waitFor(t, 20*time.Second, "the new monitor's first result", func() bool {
		for _, r := range fe.got() {
			if r.ID == 2 && r.RC == 7 {
				return true
			}
		}
		return false
	})
	for _, r := range fe.got() {
		if r.ID == 2 && r.RC == 0 {
			t.Fatalf("the replaced monitor's result (rc 0) was reported as the new monitor's: %+v", fe.got())
		}
	}
}

// TestRunDoesNotWaitForMetaData: run is called under the executive's
// lock, so it must not wait for an agent. Before the fix it called
// lrmd's StartRecurring there, which fetches the agent's meta-data
// first: an agent whose meta-data hangs held the executive (ring
// deliveries, every IPC request) for lrmd's 5 s meta-data timeout, long
// enough to lose the ring's token.
func TestRunDoesNotWaitForMetaData(t *testing.T) {
	root := t.TempDir()
	hold := filepath.Join(root, "hold")
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testAgent(t, root, "slowmd", hold)
	l, fe := newTestLRM(t, root)
	ret := make(chan struct{})
	go func() {
		fe.lock.Lock()
		defer fe.lock.Unlock()
		l.run(controld.Op{ID: 1, Kind: controld.OpExecute, Rsc: "s", Class: "ocf", Provider: "test", Type: "slowmd",
			Task: "monitor", IntervalMS: 1000, Timeout: 5 * time.Second})
		close(ret)
	}()
	// The meta-data is held until run returned (lrmd gives up on it
	// after 5 s; this waits less).
	select {
	case <-ret:
	case <-time.After(3 * time.Second):
		t.Error("run waited for the agent's meta-data under the executive's lock")
	}
	_ = os.Remove(hold)
	<-ret
	waitFor(t, 20*time.Second, "the monitor's first result", func() bool { return len(fe.got()) > 0 })
	if r := fe.got()[0]; r.ID != 1 || r.RC != 7 {
		t.Fatalf("first result %+v, want ID 1 rc 7", r)
	}
}
