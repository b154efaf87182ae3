package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ringmaster/crm/cib"
	"ringmaster/crm/simulate"
	"ringmaster/crm/wire"
)

// TestCrmPendingUntilExecuted: a CIB with work planned is not settled and
// names the work; the same CIB after the simulator has executed its
// transition is (the scheduler converges), so crm wait returns once the
// cluster has done what it planned.
func TestCrmPendingUntilExecuted(t *testing.T) {
	synced := wire.Status{Node: 1, Synced: true, Quorate: true}
	for _, name := range []string{"group", "colocation", "ordering", "standby", "stickiness", "target-role", "no-quorum-stop"} {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(filepath.Join("..", "..", "crm", "pengine", "testdata", name+".xml"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			c, err := cib.Parse(f)
			if err != nil {
				t.Fatal(err)
			}
			st := synced
			st.Quorate = c.Attrs.Value("have-quorum") != "0"
			now := time.Unix(1700000000, 0)
			before, err := crmPending(st, c, now)
			if err != nil {
				t.Fatal(err)
			}
			if len(before) == 0 {
				t.Fatalf("%s plans work (its .out has a transition) but crm wait sees it settled", name)
			}
			out, err := simulate.Run(io.Discard, c, simulate.Options{Now: now, Simulate: true})
			if err != nil || out.TransitionErr != nil {
				t.Fatalf("simulate: %v %v", err, out.TransitionErr)
			}
			after, err := crmPending(st, out.CIB, now)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != 0 {
				t.Fatalf("still pending after the transition ran: %v (before: %v)", after, before)
			}
			unsynced := st
			unsynced.Synced = false
			if p, _ := crmPending(unsynced, out.CIB, now); len(p) != 1 || !strings.Contains(p[0], "syncing") {
				t.Fatalf("a partition that is syncing counts as settled: %v", p)
			}
		})
	}
}
