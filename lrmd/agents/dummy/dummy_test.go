package dummy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"ringmaster/lrmd"
)

// exec runs action through the builtin class, as the Manager does (meta-data
// defaults filled in, strict validation left to the Manager).
func exec(t *testing.T, ctx context.Context, a *Agent, rsc, action string, params map[string]string) lrmd.Result {
	t.Helper()
	if err := a.MetaData().Validate(params, true); err != nil {
		t.Fatalf("params %v: %v", params, err)
	}
	b := lrmd.NewBuiltins(a)
	return b.Exec(ctx, lrmd.Request{Agent: lrmd.AgentID{Class: "builtin", Type: "dummy"}, Resource: rsc, Action: action, Params: params})
}

func TestStartMonitorStopCycle(t *testing.T) {
	run := t.TempDir()
	a := New(filepath.Join(run, "sub")) // start creates the directory
	state := filepath.Join(run, "sub", "dummy-d.state")
	ctx := context.Background()
	for _, step := range []struct {
		action string
		want   lrmd.RC
		exists bool
	}{
		{"monitor", lrmd.RCNotRunning, false}, // probe of a never-started resource
		{"stop", lrmd.RCOK, false},            // stopping a stopped resource
		{"start", lrmd.RCOK, true},
		{"monitor", lrmd.RCOK, true},
		{"start", lrmd.RCOK, true}, // idempotent
		{"reload", lrmd.RCOK, true},
		{"validate-all", lrmd.RCOK, true},
		{"stop", lrmd.RCOK, false},
		{"monitor", lrmd.RCNotRunning, false},
		{"stop", lrmd.RCOK, false},
	} {
		r := exec(t, ctx, a, "d", step.action, map[string]string{"fake": "hello"})
		if r.RC != step.want || r.Status != lrmd.StatusDone {
			t.Fatalf("%s: %s, want rc %d", step.action, r.Summary(), step.want)
		}
		_, err := os.Stat(state)
		if (err == nil) != step.exists {
			t.Fatalf("after %s: state file %s exists=%v, want %v", step.action, state, err == nil, step.exists)
		}
		if step.exists {
			if b, _ := os.ReadFile(state); string(b) != "hello\n" {
				t.Fatalf("state file holds %q, want the fake value", b)
			}
		}
	}
}

func TestExplicitStateAndDeletedStateFile(t *testing.T) {
	a := New(t.TempDir())
	state := filepath.Join(t.TempDir(), "x", "my.state")
	p := map[string]string{"state": state}
	ctx := context.Background()
	if r := exec(t, ctx, a, "d", "start", p); !r.OK() {
		t.Fatalf("start: %s", r.Summary())
	}
	if b, err := os.ReadFile(state); err != nil || string(b) != "dummy\n" {
		t.Fatalf("state file: %q %v (want the default fake value)", b, err)
	}
	if r := exec(t, ctx, a, "d", "monitor", p); !r.OK() {
		t.Fatalf("monitor: %s", r.Summary())
	}
	// What end-to-end tests do to inject a monitor failure.
	if err := os.Remove(state); err != nil {
		t.Fatal(err)
	}
	if r := exec(t, ctx, a, "d", "monitor", p); r.RC != lrmd.RCNotRunning {
		t.Fatalf("monitor after the state file was removed: %s, want not running", r.Summary())
	}
}

func TestFailStart(t *testing.T) {
	run := t.TempDir()
	a := New(run)
	ctx := context.Background()
	if r := exec(t, ctx, a, "d", "start", map[string]string{"fail_start": "true"}); r.RC != lrmd.RCErrGeneric || r.Status != lrmd.StatusDone {
		t.Fatalf("start with fail_start: %s, want rc 1", r.Summary())
	}
	if r := exec(t, ctx, a, "d", "monitor", nil); r.RC != lrmd.RCNotRunning {
		t.Fatalf("monitor after failed start: %s", r.Summary())
	}
}

func TestBadConfig(t *testing.T) {
	a := New(t.TempDir())
	ctx := context.Background()
	if r := exec(t, ctx, a, "d", "start", map[string]string{"state": "relative.state"}); r.RC != lrmd.RCErrConfigured {
		t.Fatalf("relative state path: %s, want rc 6", r.Summary())
	}
	if r := exec(t, ctx, a, "", "start", nil); r.RC != lrmd.RCErrConfigured {
		t.Fatalf("no resource name: %s, want rc 6", r.Summary())
	}
}

func TestPermissionDeniedIsRCPerm(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	ro := t.TempDir()
	if err := os.Chmod(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(ro, 0o700) })
	a := New(filepath.Join(ro, "run"))
	if r := exec(t, context.Background(), a, "d", "start", nil); r.RC != lrmd.RCErrPerm {
		t.Fatalf("start in an unwritable run dir: %s, want rc 4", r.Summary())
	}
}

func TestOpSleepHonoursContext(t *testing.T) {
	a := New(t.TempDir())
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan lrmd.Result, 1)
	go func() { done <- exec(t, ctx, a, "d", "start", map[string]string{"op_sleep": "1h"}) }()
	cancel(lrmd.ErrTimedOut)
	select {
	case r := <-done:
		if r.Status != lrmd.StatusTimedOut || r.OK() {
			t.Fatalf("start cancelled during op_sleep: %s, want timed out", r.Summary())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("start ignored its context during op_sleep")
	}
	if r := exec(t, context.Background(), a, "d", "monitor", nil); r.RC != lrmd.RCNotRunning {
		t.Fatalf("an interrupted start must not leave the state file: %s", r.Summary())
	}
}

func TestOpSleepParsing(t *testing.T) {
	a := New("/run/x")
	for in, want := range map[string]time.Duration{"0": 0, "2": 2 * time.Second, "150ms": 150 * time.Millisecond, "": 0} {
		c, err := a.parseConfig(lrmd.Request{Resource: "d", Params: map[string]string{"op_sleep": in}})
		if err != nil || c.opSleep != want {
			t.Errorf("op_sleep=%q: %v %v, want %v", in, c.opSleep, err, want)
		}
	}
	if _, err := a.parseConfig(lrmd.Request{Resource: "d", Params: map[string]string{"op_sleep": "soon"}}); !errors.Is(err, ErrConfig) {
		t.Errorf("op_sleep=soon: %v, want ErrConfig", err)
	}
	c, _ := a.parseConfig(lrmd.Request{Resource: "web:1"})
	if c.state != "/run/x/dummy-web:1.state" {
		t.Errorf("default state path %q", c.state)
	}
}

func TestMetaData(t *testing.T) {
	a := New("")
	x, err := a.MetaData().XML()
	if err != nil {
		t.Fatal(err)
	}
	md, err := lrmd.ParseMetaData(x)
	if err != nil {
		t.Fatal(err)
	}
	if md.Name != "dummy" || md.ShortDesc() == "" {
		t.Fatalf("meta-data: %+v", md)
	}
	for _, p := range []string{"state", "fake", "op_sleep", "fail_start"} {
		if md.Param(p) == nil {
			t.Errorf("no parameter %s", p)
		}
	}
	var actions []string
	for _, ac := range md.Actions {
		actions = append(actions, ac.Name)
	}
	for _, want := range []string{"start", "stop", "monitor", "reload", "validate-all", "meta-data"} {
		found := false
		for _, ac := range actions {
			found = found || ac == want
		}
		if !found {
			t.Errorf("action %s missing from %v", want, actions)
		}
	}
	// The declared defaults pass the agent's own strict validation.
	if err := md.Validate(md.WithDefaults(nil), true); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	if err := md.Validate(map[string]string{"op_sleep": "x", "fail_start": "maybe", "nope": "1"}, true); err == nil {
		t.Error("bad values validated")
	}
	r := lrmd.NewBuiltins(a).Exec(context.Background(), lrmd.Request{Agent: lrmd.AgentID{Class: "builtin", Type: "dummy"}, Action: "meta-data"})
	if !r.OK() || len(r.Stdout) == 0 {
		t.Fatalf("meta-data action: %s", r.Summary())
	}
}
