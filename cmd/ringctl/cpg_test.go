package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	cpgc "ringmaster/clients/cpg"
	"ringmaster/cpg"
	"ringmaster/totem"
	"ringmaster/totem/exec"
	"ringmaster/totem/exec/exectest"
)

// TestCPGGroups runs `ringctl cpg groups` against a two-node in-process
// cluster with members on both nodes.
func TestCPGGroups(t *testing.T) {
	c, socks := exectest.Serve(t, exectest.Options{Nodes: 2, Services: func(totem.NodeID) []exec.Service {
		return []exec.Service{cpg.New()}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	join := func(sock, group string, pid uint32) *cpgc.Client {
		cl, err := cpgc.DialOptions(ctx, sock, cpgc.Options{PID: pid})
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.Join(ctx, group); err != nil {
			t.Fatal(err)
		}
		return cl
	}
	a := join(socks[0], "crmd", 11)
	defer a.Close()
	b := join(socks[1], "crmd", 22)
	defer b.Close()
	d := join(socks[1], "attrd", 33)
	defer d.Close()
	if err := c.Wait(ctx, func() bool {
		gs, err := a.Groups(ctx)
		return err == nil && len(gs) == 2 && len(gs[1].Members) == 2
	}); err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) string {
		var out bytes.Buffer
		root := newRootCmd()
		root.SetOut(&out)
		root.SetArgs(append([]string{"--socket", socks[0]}, args...))
		if err := root.ExecuteContext(ctx); err != nil {
			t.Fatalf("ringctl %v: %v", args, err)
		}
		return out.String()
	}
	var got cpgGroupsOut
	if err := json.Unmarshal([]byte(run("cpg", "groups", "--json")), &got); err != nil {
		t.Fatal(err)
	}
	want := `{"groups":[{"name":"attrd","members":[{"nodeid":2,"pid":33}]},{"name":"crmd","members":[{"nodeid":1,"pid":11},{"nodeid":2,"pid":22}]}]}`
	if b, _ := json.Marshal(got); string(b) != want {
		t.Fatalf("json:\n%s\nwant\n%s", b, want)
	}
	text := run("cpg", "groups")
	for _, line := range []string{"Group Name", "attrd", "crmd", "11          1", "22          2"} {
		if !strings.Contains(text, line) {
			t.Fatalf("text output lacks %q:\n%s", line, text)
		}
	}
}
