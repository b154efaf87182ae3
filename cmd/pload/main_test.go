package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"ringmaster/bench"
	"ringmaster/cpg"
	"ringmaster/totem"
	"ringmaster/totem/exec"
	"ringmaster/totem/exec/exectest"
)

// TestMain lets the test binary stand in for pload as the echo process
// of pload floor (which starts its own executable as `echo SOCKET`).
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "echo" {
		if err := bench.ServeEcho(os.Args[2]); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// sockets starts an in-process 3-node cluster with cpg and returns a
// socket per node.
func sockets(t *testing.T) []string {
	t.Helper()
	_, socks := exectest.Serve(t, exectest.Options{Nodes: 3, Services: func(totem.NodeID) []exec.Service { return []exec.Service{cpg.New()} }})
	return socks
}

func pload(t *testing.T, args ...string) ([]byte, error) {
	var out bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.Bytes(), err
}

func TestVerifyJSON(t *testing.T) {
	s := sockets(t)
	out, err := pload(t, "verify", "--socket", s[0], "--socket", s[1], "--socket", s[2], "--size", "100", "--duration", "300ms", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var v struct {
		Nodes      int      `json:"nodes"`
		Sent       uint64   `json:"sent"`
		Delivered  []uint64 `json:"delivered"`
		OrderOK    bool     `json:"order_ok"`
		Lost       *uint64  `json:"lost"`
		Duplicates *uint64  `json:"duplicates"`
		MsgsPerSec float64  `json:"msgs_per_sec"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if v.Nodes != 3 || v.Sent == 0 || len(v.Delivered) != 3 || v.Delivered[2] != v.Sent || !v.OrderOK || v.Lost == nil || *v.Lost != 0 || v.Duplicates == nil || v.MsgsPerSec <= 0 {
		t.Fatalf("%s", out)
	}
}

func TestRunJSON(t *testing.T) {
	s := sockets(t)
	out, err := pload(t, "run", "--socket", s[1], "--sizes", "64, 1600", "--duration", "200ms", "--guarantee", "safe", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var v struct {
		Results []struct {
			Size       int            `json:"size"`
			MsgsPerSec float64        `json:"msgs_per_sec"`
			MBPerSec   *float64       `json:"mb_per_sec"`
			Latency    map[string]any `json:"latency_us"`
			Delivered  uint64         `json:"delivered"`
			OrderOK    bool           `json:"order_ok"`
		} `json:"results"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(v.Results) != 2 || v.Results[1].Size != 1600 {
		t.Fatalf("%s", out)
	}
	for _, r := range v.Results {
		for _, k := range []string{"p50", "p90", "p99", "p999", "max"} {
			if _, ok := r.Latency[k]; !ok {
				t.Fatalf("latency_us lacks %s: %s", k, out)
			}
		}
		if !r.OrderOK || r.Delivered == 0 || r.MsgsPerSec <= 0 || r.MBPerSec == nil {
			t.Fatalf("%s", out)
		}
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"run", "--socket", "/nonexistent", "--sizes", "64,x"},
		{"run", "--socket", "/nonexistent", "--guarantee", "maybe"},
		{"verify", "--socket", "/nonexistent/ringd.sock", "--duration", "10ms"},
	} {
		if _, err := pload(t, args...); err == nil {
			t.Fatalf("%v: no error", args)
		}
	}
}

// TestNothingPrintedBeforeConnecting: a ringd that cannot be reached gives
// the error alone, not a table header with no rows.
func TestNothingPrintedBeforeConnecting(t *testing.T) {
	out, err := pload(t, "run", "--socket", "/nonexistent/ringd.sock", "--sizes", "64", "--duration", "10ms")
	if err == nil {
		t.Fatal("no error for a socket that does not exist")
	}
	if len(out) != 0 {
		t.Errorf("printed before connecting: %q", out)
	}
}

func TestFloorJSON(t *testing.T) {
	out, err := pload(t, "floor", "--rate", "500", "--duration", "200ms", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var f floorResult
	if err := json.Unmarshal(out, &f); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if f.Rate != 500 || f.UDP.P50 <= 0 || f.UDP.P99 < f.UDP.P50 || f.Process.P50 <= 0 || f.Process.P99 < f.Process.P50 {
		t.Fatalf("%s", out)
	}
}
