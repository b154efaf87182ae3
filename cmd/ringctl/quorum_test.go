package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"ringmaster/confdb"
	"ringmaster/config"
	"ringmaster/internal/daemon"
	"ringmaster/internal/testutil"
	"ringmaster/totem"
	"ringmaster/totem/exec"
	"ringmaster/totem/exec/exectest"
	"ringmaster/votequorum"
)

const quorumTestConfig = `
[totem]
token = 1000
crypto_cipher = "none"
[[node]]
nodeid = 1
name = "n1"
ring0_addr = "127.0.0.1"
[[node]]
nodeid = 2
name = "n2"
ring0_addr = "127.0.0.2"
[[node]]
nodeid = 3
name = "n3"
ring0_addr = "127.0.0.3"
`

// qcluster is three in-process nodes with votequorum and confdb, each
// served on a Unix socket, for running ringctl commands against.
type qcluster struct {
	*exectest.Cluster
	socks  []string
	mu     sync.Mutex
	confdb map[totem.NodeID]*confdb.Service
}

func newQCluster(t *testing.T) *qcluster {
	t.Helper()
	cfg, err := config.Parse("c.toml", []byte(quorumTestConfig))
	if err != nil {
		t.Fatal(err)
	}
	qc := &qcluster{confdb: map[totem.NodeID]*confdb.Service{}}
	c, socks := exectest.Serve(t, exectest.Options{Nodes: 3, Seed: 1, Services: func(id totem.NodeID) []exec.Service {
		vcfg, err := daemon.QuorumConfig(cfg, id)
		if err != nil {
			t.Fatal(err)
		}
		vcfg.StateDir = ""
		cdb := confdb.New(daemon.ConfdbConfig(cfg, id, confdb.Sources{}))
		qc.mu.Lock()
		qc.confdb[id] = cdb
		qc.mu.Unlock()
		return []exec.Service{votequorum.New(vcfg), cdb}
	}})
	qc.Cluster, qc.socks = c, socks
	return qc
}

// ringctl runs one command against node 1 and returns its output and
// error (an exitError for a non-zero exit status).
func (qc *qcluster) ringctl(ctx context.Context, args ...string) (string, error) {
	var out bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"--socket", qc.socks[0]}, args...))
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

func exitCode(err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		return 1
	}
	return 0
}

func TestRingctlQuorum(t *testing.T) {
	qc := newQCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	out, err := qc.ringctl(ctx, "quorum", "--json")
	if err != nil {
		t.Fatalf("quorum --json with 3 of 3: %v\n%s", err, out)
	}
	var js struct {
		Quorate       bool     `json:"quorate"`
		ExpectedVotes int      `json:"expected_votes"`
		TotalVotes    int      `json:"total_votes"`
		Quorum        int      `json:"quorum"`
		Flags         []string `json:"flags"`
		Members       []struct {
			NodeID int    `json:"nodeid"`
			Votes  int    `json:"votes"`
			Name   string `json:"name"`
		} `json:"members"`
	}
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !js.Quorate || js.ExpectedVotes != 3 || js.TotalVotes != 3 || js.Quorum != 2 || len(js.Flags) != 1 || js.Flags[0] != "Quorate" {
		t.Errorf("quorum --json: %+v", js)
	}
	if len(js.Members) != 3 || js.Members[1].NodeID != 2 || js.Members[1].Votes != 1 || js.Members[1].Name != "n2" {
		t.Errorf("members: %+v", js.Members)
	}

	out, err = qc.ringctl(ctx, "quorum")
	if err != nil || !strings.Contains(out, "Quorate:          Yes") || !strings.Contains(out, "Expected votes:   3") ||
		!strings.Contains(out, "         1          1 n1 (local)") {
		t.Errorf("quorum: %v\n%s", err, out)
	}

	out, err = qc.ringctl(ctx, "quorum", "watch", "--count", "1")
	if err != nil || !strings.HasPrefix(out, "ring ") || !strings.Contains(out, "quorate expected=3 total=3 quorum=2 members=1,2,3") {
		t.Errorf("quorum watch: %v\n%s", err, out)
	}

	// Two nodes die: the survivor prints its status and exits 2.
	qc.Crash(2)
	qc.Crash(3)
	out, err = qc.ringctl(ctx, "quorum")
	if exitCode(err) != 2 || !strings.Contains(out, "Quorate:          No") || !strings.Contains(out, "Activity blocked") {
		t.Errorf("quorum with 1 of 3: exit %d (%v)\n%s", exitCode(err), err, out)
	}
	out, err = qc.ringctl(ctx, "quorum", "--json")
	if exitCode(err) != 2 || !strings.Contains(out, `"quorate": false`) {
		t.Errorf("quorum --json with 1 of 3: exit %d\n%s", exitCode(err), out)
	}

	// Refused and accepted changes.
	if _, err := qc.ringctl(ctx, "quorum", "expected", "5"); exitCode(err) != 1 || !strings.Contains(err.Error(), "invalid") {
		t.Errorf("quorum expected 5 with 1 vote: %v", err)
	}
	if _, err := qc.ringctl(ctx, "quorum", "votes", "--node", "9", "1"); exitCode(err) != 1 {
		t.Errorf("quorum votes for an unknown node: %v", err)
	}
	out, err = qc.ringctl(ctx, "quorum", "expected", "1")
	if err != nil || !strings.Contains(out, "quorate expected=1") {
		t.Errorf("quorum expected 1: %v\n%s", err, out)
	}
	if out, err := qc.ringctl(ctx, "quorum"); err != nil {
		t.Errorf("quorum after expected 1: %v\n%s", err, out)
	}
	out, err = qc.ringctl(ctx, "quorum", "votes", "2")
	if err != nil || !strings.Contains(out, "total=2") {
		t.Errorf("quorum votes 2: %v\n%s", err, out)
	}
	// Expected votes never go below the votes present, and ringctl says so.
	out, err = qc.ringctl(ctx, "quorum", "expected", "1")
	if err != nil || !strings.Contains(out, "note: asked for 1, but expected votes is 2") {
		t.Errorf("quorum expected 1 with 2 votes present: %v\n%s", err, out)
	}
	if _, err := qc.ringctl(ctx, "quorum", "cancel-wait-for-all"); err != nil {
		t.Errorf("quorum cancel-wait-for-all: %v", err)
	}
}

func TestRingctlCmap(t *testing.T) {
	qc := newQCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	out, err := qc.ringctl(ctx, "cmap", "get", "runtime.config.totem.token")
	if err != nil || out != "runtime.config.totem.token (u32) = 1650\n" {
		t.Errorf("cmap get: %v: %q", err, out)
	}
	out, err = qc.ringctl(ctx, "cmap", "get", "runtime.config.totem.token", "--json")
	if err != nil || !jsonEq(t, out, `{"key":"runtime.config.totem.token","type":"u32","value":1650}`) {
		t.Errorf("cmap get --json: %v: %s", err, out)
	}
	if _, err := qc.ringctl(ctx, "cmap", "get", "app.none"); exitCode(err) != 1 || !strings.Contains(err.Error(), "no such key: app.none") {
		t.Errorf("cmap get of a missing key: %v", err)
	}
	if _, err := qc.ringctl(ctx, "cmap", "set", "runtime.config.totem.token", "u32", "1"); err == nil || !strings.Contains(err.Error(), "read-only key: runtime.config.totem.token") {
		t.Errorf("cmap set of a read-only key: %v", err)
	}
	if _, err := qc.ringctl(ctx, "cmap", "set", "app.x", "u8", "300"); err == nil {
		t.Error("cmap set u8 300 accepted")
	}

	// track shows a set made from another connection.
	var tracked bytes.Buffer
	done := make(chan error, 1)
	go func() {
		root := newRootCmd()
		root.SetOut(&tracked)
		root.SetArgs([]string{"--socket", qc.socks[0], "cmap", "track", "app.", "--count", "3"})
		done <- root.ExecuteContext(ctx)
	}()
	qc.mu.Lock()
	cdb := qc.confdb[1]
	qc.mu.Unlock()
	testutil.WaitFor(t, 10*time.Second, "cmap track to start tracking", func() bool { return cdb.Store().TrackCount() > 0 })
	for _, args := range [][]string{{"set", "app.x", "u32", "5"}, {"set", "app.x", "str", "five"}, {"delete", "app.x"}} {
		if out, err := qc.ringctl(ctx, append([]string{"cmap"}, args...)...); err != nil {
			t.Fatalf("cmap %v: %v %s", args, err, out)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("cmap track: %v", err)
	}
	want := "create> app.x (u32) = 5\nmodify> app.x (str) = five\ndelete> app.x (str) = five\n"
	if tracked.String() != want {
		t.Errorf("cmap track printed\n%s\nwant\n%s", tracked.String(), want)
	}

	out, err = qc.ringctl(ctx, "cmap", "list", "runtime.members.1.", "--json")
	var list []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 4 || list[0]["key"] != "runtime.members.1.config_version" {
		t.Errorf("cmap list --json: %v\n%s", err, out)
	}
	out, err = qc.ringctl(ctx, "cmap", "list", "quorum.")
	if err != nil || !strings.Contains(out, "quorum.two_node (u8) = 0\n") {
		t.Errorf("cmap list quorum.: %v\n%s", err, out)
	}
	out, err = qc.ringctl(ctx, "cmap")
	if err != nil || !strings.Contains(out, "totem.token (u32) = 1000\n") || !strings.Contains(out, "nodelist.node.2.name (str) = n3\n") {
		t.Errorf("cmap: %v\n%s", err, out)
	}
}

func jsonEq(t *testing.T, got, want string) bool {
	t.Helper()
	var a, b any
	if json.Unmarshal([]byte(got), &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	return bytes.Equal(ab, bb)
}
