package agents

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	if got, want := strings.Join(names, " "), "builtin:lvs builtin:lvs-realserver builtin:vip lsb:svc ocf:acme:Thing"; got != want {
		t.Fatalf("agents: %s\nwant:   %s", got, want)
	}
	for _, id := range []string{"builtin:vip", "builtin:lvs", "builtin:lvs-realserver"} {
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
