package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"ringmaster/confdb"
	"ringmaster/confdb/wire"
	"ringmaster/totem"
	"ringmaster/totem/exec"
	"ringmaster/totem/exec/exectest"
)

// complete runs cobra's hidden __complete command as the shell scripts of
// `ringctl completion` do, and returns the candidates and the directive
// line.
func complete(t *testing.T, args ...string) (cands []string, directive string) {
	t.Helper()
	out, err := runRingctl(t, append([]string{"__complete"}, args...)...)
	if err != nil {
		t.Fatalf("__complete %v: %v\n%s", args, err, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		switch {
		case strings.HasPrefix(l, ":"):
			directive = l
		case strings.HasPrefix(l, "Completion ended"), l == "":
		default:
			cands = append(cands, l)
		}
	}
	return cands, directive
}

// TestCompleteAgents: agent names come from the registry `agent list` uses
// (builtins and the OCF root given by --ocf-root), actions and classes
// from fixed lists.
func TestCompleteAgents(t *testing.T) {
	root := t.TempDir()
	script := filepath.Join(root, "resource.d", "acme", "Thing")
	if err := os.MkdirAll(filepath.Dir(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	flags := []string{"agent", "--ocf-root", root, "--init-dir", t.TempDir()}
	got, dir := complete(t, append(flags, "meta", "")...)
	for _, want := range []string{"builtin:dummy", "builtin:vip", "ocf:acme:Thing"} {
		if !slices.Contains(got, want) {
			t.Errorf("agent meta: %q not offered: %v", want, got)
		}
	}
	if dir != ":4" {
		t.Errorf("directive %q, want :4 (no file completion)", dir)
	}
	got, _ = complete(t, append(flags, "exec", "builtin:d")...)
	if !slices.Equal(got, []string{"builtin:dummy"}) {
		t.Errorf("agent exec builtin:d → %v", got)
	}
	got, _ = complete(t, append(flags, "exec", "builtin:dummy", "st")...)
	if !slices.Equal(got, []string{"start", "stop", "status"}) {
		t.Errorf("agent exec builtin:dummy st → %v", got)
	}
	got, _ = complete(t, "agent", "list", "")
	if !slices.Equal(got, []string{"ocf", "lsb", "builtin"}) {
		t.Errorf("agent list → %v", got)
	}
}

// TestCompleteCmapKeys: keys come from the running node's confdb, one
// dotted component at a time; nothing (and no error) without a ringd.
func TestCompleteCmapKeys(t *testing.T) {
	_, socks := exectest.Serve(t, exectest.Options{Nodes: 1, Services: func(totem.NodeID) []exec.Service {
		return []exec.Service{confdb.New(confdb.Config{Entries: []wire.Entry{
			{Key: "totem.token", Value: wire.U32(1000)},
			{Key: "totem.token_retransmits_before_loss_const", Value: wire.U32(4)},
			{Key: "totem.interface.0.bindnetaddr", Value: wire.String("10.0.0.1")},
			{Key: "quorum.provider", Value: wire.String("votequorum")},
		}})}
	}})
	sock := []string{"--socket", socks[0]}
	got, dir := complete(t, append(sock, "cmap", "get", "tot")...)
	if !slices.Equal(got, []string{"totem."}) || dir != ":6" {
		t.Errorf("cmap get tot → %v %s, want [totem.] :6 (no space, no files)", got, dir)
	}
	got, _ = complete(t, append(sock, "cmap", "get", "totem.")...)
	if !slices.Equal(got, []string{"totem.interface.", "totem.token", "totem.token_retransmits_before_loss_const"}) {
		t.Errorf("cmap get totem. → %v", got)
	}
	got, _ = complete(t, append(sock, "cmap", "track", "q")...)
	if !slices.Equal(got, []string{"quorum."}) {
		t.Errorf("cmap track q → %v", got)
	}
	got, _ = complete(t, append(sock, "cmap", "set", "totem.token", "u")...)
	if !slices.Equal(got, []string{"u8", "u16", "u32", "u64"}) {
		t.Errorf("cmap set KEY u → %v", got)
	}

	got, dir = complete(t, "--socket", filepath.Join(t.TempDir(), "none.sock"), "cmap", "get", "tot")
	if len(got) != 0 || dir != ":6" {
		t.Errorf("without ringd: %v %s, want nothing", got, dir)
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		out, err := runRingctl(t, "completion", sh)
		if err != nil || !strings.Contains(out, "ringctl") {
			t.Errorf("completion %s: %v\n%.200s", sh, err, out)
		}
	}
}
