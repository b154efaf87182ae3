package bench

import (
	"context"
	"testing"
	"time"

	"ringmaster/cpg"
	"ringmaster/totem"
	"ringmaster/totem/exec"
	"ringmaster/totem/exec/exectest"
)

// cluster starts an in-process cluster of n nodes with cpg and a socket
// each. These tests check the engine's bookkeeping, not speed.
func cluster(t *testing.T, n int) (*exectest.Cluster, []string) {
	t.Helper()
	return exectest.Serve(t, exectest.Options{Nodes: n, Seed: 1, Services: func(totem.NodeID) []exec.Service {
		return []exec.Service{cpg.New()}
	}})
}

func TestRunCounts(t *testing.T) {
	_, socks := cluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var progressed bool
	res, err := Run(ctx, RunConfig{
		Socket: socks[0], Sizes: []int{64, 40000}, Duration: 600 * time.Millisecond, Senders: 2,
		Progress: func(Progress) { progressed = true },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 2 || !progressed {
		t.Fatalf("%+v", res)
	}
	for _, r := range res.Results {
		if !r.OrderOK || r.Delivered == 0 || r.Delivered != r.Sent || r.MsgsPerSec <= 0 || r.Latency.P50 <= 0 || r.Latency.Max < r.Latency.P999 {
			t.Fatalf("%+v", r)
		}
	}
	// Rate-limited, safe.
	res, err = Run(ctx, RunConfig{Socket: socks[0], Sizes: []int{100}, Duration: 300 * time.Millisecond, Rate: 500, Guarantee: totem.Safe})
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Results[0]; !r.OrderOK || r.Sent < 100 || r.Sent > 200 {
		t.Fatalf("rate 500/s for 0.3 s: %+v", r)
	}
	if _, err := Run(ctx, RunConfig{Socket: socks[0], Sizes: []int{10}}); err == nil {
		t.Fatal("a size below the header must be refused")
	}
}

func TestVerifyThreeNodes(t *testing.T) {
	_, socks := cluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Verify(ctx, VerifyConfig{Sockets: socks, Size: 200, Duration: 800 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || res.Nodes != 3 || res.Sent == 0 || len(res.Delivered) != 3 {
		t.Fatalf("%+v", res)
	}
	for _, d := range res.Delivered {
		if d != res.Sent {
			t.Fatalf("%+v", res)
		}
	}
}

// TestVerifyNodeDies: a node crashing mid-run is checked per
// configuration: the survivors agree, the dead one delivered a prefix.
func TestVerifyNodeDies(t *testing.T) {
	c, socks := cluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		_ = c.Wait(ctx, func() bool {
			st := c.Node(1).Status()
			return st.Ring.Seq > 0 && c.Node(3).Queued() > 0
		})
		c.Crash(3)
	}()
	res, err := Verify(ctx, VerifyConfig{Sockets: socks, Size: 100, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || len(res.Departed) != 1 || res.Departed[0] != 2 {
		t.Fatalf("%+v", res)
	}
}

// TestAnalyseFindsFaults feeds made-up logs to the checker.
func TestAnalyseFindsFaults(t *testing.T) {
	m := func(s, q uint64) uint64 { return s<<48 | q }
	conf := uint64(confMark | 5)
	mk := func(logs ...[]uint64) []*conn {
		var cs []*conn
		for _, l := range logs {
			cs = append(cs, &conn{log: l})
		}
		return cs
	}
	for name, tc := range map[string]struct {
		logs     [][]uint64
		sent     []uint64
		departed []bool
		order    bool
		lost     uint64
		dups     uint64
	}{
		"good":          {[][]uint64{{conf, m(0, 0), m(1, 0)}, {conf, m(0, 0), m(1, 0), conf}}, []uint64{1, 1}, []bool{false, false}, true, 0, 0},
		"reordered":     {[][]uint64{{m(0, 0), m(1, 0)}, {m(1, 0), m(0, 0)}}, []uint64{1, 1}, []bool{false, false}, false, 0, 0},
		"lost":          {[][]uint64{{m(0, 0), m(0, 2)}, {m(0, 0), m(0, 2)}}, []uint64{3, 0}, []bool{false, false}, true, 2, 0},
		"never came":    {[][]uint64{{m(0, 0)}, {m(0, 0)}}, []uint64{2, 0}, []bool{false, false}, true, 2, 0},
		"duplicate":     {[][]uint64{{m(0, 0), m(0, 0)}, {m(0, 0), m(0, 0)}}, []uint64{1, 0}, []bool{false, false}, true, 0, 2},
		"dead prefix":   {[][]uint64{{m(0, 0), m(1, 0), m(1, 1)}, {m(0, 0), m(1, 0)}, {m(0, 0), m(2, 0)}}, []uint64{1, 2, 5}, []bool{false, false, true}, false, 1, 0},
		"dead own tail": {[][]uint64{{m(0, 0), m(1, 0)}, {m(0, 0), m(1, 0)}, {m(0, 0), m(2, 0)}}, []uint64{1, 1, 5}, []bool{false, false, true}, true, 0, 0},
	} {
		res := &VerifyResult{OrderOK: true}
		analyse(res, mk(tc.logs...), tc.sent, tc.departed)
		if res.OrderOK != tc.order || res.Lost != tc.lost || res.Duplicates != tc.dups {
			t.Errorf("%s: %+v", name, res)
		}
	}
}
