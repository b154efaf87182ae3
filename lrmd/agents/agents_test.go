package agents

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ringmaster/lrmd"
)

func TestRegistryListsEveryClass(t *testing.T) {
	root, initd := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "resource.d", "acme"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(root, "resource.d", "acme", "Thing"), filepath.Join(initd, "svc")} {
		if err := os.WriteFile(f, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Not agents: a dot file and a non-executable file.
	_ = os.WriteFile(filepath.Join(root, "resource.d", "acme", ".ocf-shellfuncs"), []byte("x"), 0o755)
	_ = os.WriteFile(filepath.Join(initd, "README"), []byte("x"), 0o644)
	reg, err := NewRegistry(Config{OCFRoot: root, InitDir: initd, RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	ids, err := reg.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, id := range ids {
		names = append(names, id.String())
	}
	if got, want := strings.Join(names, " "), "builtin:dummy builtin:lvs builtin:lvs-realserver builtin:vip lsb:svc ocf:acme:Thing"; got != want {
		t.Fatalf("agents: %s\nwant:   %s", got, want)
	}
	for _, id := range []string{"builtin:vip", "builtin:lvs", "builtin:lvs-realserver", "builtin:dummy"} {
		aid, _ := lrmd.ParseAgent(id)
		md, err := reg.MetaData(context.Background(), aid)
		if err != nil || len(md.Parameters) == 0 || md.ShortDesc() == "" {
			t.Errorf("%s meta-data: %v %+v", id, err, md)
		}
	}
	lvsMD, _ := reg.MetaData(context.Background(), lrmd.AgentID{Class: "builtin", Type: "lvs"})
	for _, p := range []string{"vip", "port", "protocol", "fwmark", "scheduler", "method", "persistence", "realservers", "backend",
		"check", "check_path", "check_status", "check_body", "check_script", "check_interval", "check_timeout", "rise", "fall", "quiesce", "sorry_server"} {
		if lvsMD.Param(p) == nil {
			t.Errorf("builtin:lvs lacks parameter %s", p)
		}
	}
	if sched := lvsMD.Param("scheduler"); sched == nil || len(sched.Content.Options) != 14 {
		t.Errorf("builtin:lvs scheduler options: %+v", sched)
	}
}

// TestManagerRunsDummy runs builtin:dummy through the registry the daemon
// uses, with the state file in the configured run directory.
func TestManagerRunsDummy(t *testing.T) {
	run := t.TempDir()
	reg, err := NewRegistry(Config{OCFRoot: t.TempDir(), InitDir: t.TempDir(), RunDir: run})
	if err != nil {
		t.Fatal(err)
	}
	m, err := lrmd.NewManager(lrmd.Config{Registry: reg, Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	defer m.Close()
	ctx := context.Background()
	do := func(action string, params map[string]string) lrmd.Result {
		return m.Exec(ctx, lrmd.Op{Resource: "d1", Agent: "builtin:dummy", Action: action, Params: params, Timeout: 20 * time.Second})
	}
	state := filepath.Join(run, "dummy-d1.state")
	for _, step := range []struct {
		action string
		want   lrmd.RC
	}{{"monitor", 7}, {"start", 0}, {"monitor", 0}, {"stop", 0}, {"monitor", 7}, {"stop", 0}} {
		if r := do(step.action, nil); r.RC != step.want || r.Status != lrmd.StatusDone {
			t.Fatalf("dummy %s: %s, want rc %d", step.action, r.Summary(), step.want)
		}
		if step.action == "start" && !fileExists(state) {
			t.Fatalf("start did not write %s", state)
		}
	}
	// The builtin class is strict: an unknown parameter or a bad value is
	// rc 6 before the agent runs.
	if r := do("start", map[string]string{"fail_start": "maybe"}); r.RC != lrmd.RCErrConfigured || r.Status != lrmd.StatusInvalid {
		t.Fatalf("bad fail_start: %s", r.Summary())
	}
	if r := do("start", map[string]string{"fail_start": "yes"}); r.RC != lrmd.RCErrGeneric || !(lrmd.Op{Action: "start"}).Failed(r) {
		t.Fatalf("fail_start: %s", r.Summary())
	}
	if fc := m.FailCount("d1"); fc.Count != 1 {
		t.Fatalf("fail count after a failed start: %+v", fc)
	}
	// A start that outlives its timeout is reported as timed out.
	r := m.Exec(ctx, lrmd.Op{Resource: "d1", Agent: "builtin:dummy", Action: "start", Params: map[string]string{"op_sleep": "1h"}, Timeout: 50 * time.Millisecond})
	if r.Status != lrmd.StatusTimedOut {
		t.Fatalf("start with op_sleep beyond its timeout: %s", r.Summary())
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
