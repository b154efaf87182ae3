package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
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

// TestCrmPendingOperationInFlight: an operation a node is still running,
// recorded as pending (rc-code 193) as controld records a promote when it
// delivers the action, is not settled: the scheduler plans nothing more
// for a pending promote (it counts as promoted), so crm wait returned while
// the promote ran and could yet fail. crm_resource --wait looks for such
// records too.
func TestCrmPendingOperationInFlight(t *testing.T) {
	c, err := cib.Parse(strings.NewReader(`<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.7" admin_epoch="0" epoch="1" num_updates="0" have-quorum="1" dc-uuid="1">
<configuration><crm_config><cluster_property_set id="o"><nvpair id="o1" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
<nodes><node id="1" uname="node1"/><node id="2" uname="node2"/></nodes>
<resources><clone id="ms"><meta_attributes id="ms-m"><nvpair id="ms-m1" name="promotable" value="true"/><nvpair id="ms-m2" name="notify" value="true"/></meta_attributes>
<primitive id="st" class="ocf" provider="pacemaker" type="Stateful"><operations><op id="st-m1" name="monitor" interval="10s" role="Promoted"/><op id="st-m2" name="monitor" interval="11s" role="Unpromoted"/></operations></primitive></clone></resources>
<constraints><rsc_location id="l1" rsc="ms" role="Promoted" node="node1" score="100"/></constraints></configuration>
<status><node_state id="1" uname="node1" in_ccm="true" crmd="online" join="member" expected="member"/><node_state id="2" uname="node2" in_ccm="true" crmd="online" join="member" expected="member"/></status></cib>`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1700000000, 0)
	st := wire.Status{Node: 1, Synced: true, Quorate: true, DCID: 1}
	out, err := simulate.Run(io.Discard, c, simulate.Options{Now: now, Simulate: true})
	if err != nil || out.TransitionErr != nil {
		t.Fatalf("simulate: %v %v", err, out.TransitionErr)
	}
	if p, err := crmPending(st, out.CIB, now); err != nil || len(p) != 0 {
		t.Fatalf("promoted on node1: pending %v, %v", p, err)
	}
	marked := 0
	for _, ns := range out.CIB.Status.Nodes {
		for _, r := range ns.Resources {
			for _, op := range r.Ops {
				if op.Task() == "promote" && op.RC() == 0 {
					op.Attrs.Set("rc-code", "193")
					op.Attrs.Set("op-status", "-1")
					op.Attrs.Set("call-id", "-1")
					op.Attrs.Set("transition-magic", "-1:193;"+op.Attrs.Value("transition-key"))
					marked++
				}
			}
		}
	}
	if marked != 1 {
		t.Fatalf("%d promotes recorded, want 1", marked)
	}
	p, err := crmPending(st, out.CIB, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 1 || !strings.Contains(p[0], "st_promote_0 on node1") {
		t.Fatalf("the promote still running on node1: pending %v", p)
	}
	// A node that left will not report its operation.
	out.CIB.Status.NodeByUname("node1").SetMembership(false)
	if p, _ := crmPending(st, out.CIB, now); slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, "in progress") }) {
		t.Fatalf("an offline node's operation counts as in progress: %v", p)
	}
}

// TestCrmPendingDCWithoutQuorum: in a partition without quorum the
// controller's DC is still its lowest member (it applies
// no-quorum-policy), and the scheduler's #is_dc follows dc-uuid. crm wait
// run on another member of the partition must plan as that DC does, not as
// if it were the DC itself: a resource placed by #is_dc was never settled.
func TestCrmPendingDCWithoutQuorum(t *testing.T) {
	c, err := cib.Parse(strings.NewReader(`<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.7" admin_epoch="0" epoch="1" num_updates="0" have-quorum="0" dc-uuid="1">
<configuration><crm_config><cluster_property_set id="o"><nvpair id="o1" name="stonith-enabled" value="false"/><nvpair id="o2" name="no-quorum-policy" value="ignore"/></cluster_property_set></crm_config>
<nodes><node id="1" uname="node1"/><node id="2" uname="node2"/><node id="3" uname="node3"/></nodes>
<resources><primitive id="x" class="ocf" provider="heartbeat" type="Dummy"/></resources>
<constraints><rsc_location id="l1" rsc="x"><rule id="l1-r" score="INFINITY"><expression id="l1-e" attribute="#is_dc" operation="eq" value="true"/></rule></rsc_location></constraints></configuration>
<status><node_state id="1" uname="node1" in_ccm="true" crmd="online" join="member" expected="member"/><node_state id="2" uname="node2" in_ccm="true" crmd="online" join="member" expected="member"/></status></cib>`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1700000000, 0)
	// What the DC (node1) carries out.
	out, err := simulate.Run(io.Discard, c, simulate.Options{Now: now, Simulate: true})
	if err != nil || out.TransitionErr != nil {
		t.Fatalf("simulate: %v %v", err, out.TransitionErr)
	}
	for _, self := range []uint32{1, 2} {
		st := wire.Status{Node: self, Members: []uint32{2, 1}, Synced: true}
		if p, err := crmPending(st, out.CIB, now); err != nil || len(p) != 0 {
			t.Fatalf("on node%d: the DC's plan is carried out, but pending %v, %v", self, p, err)
		}
	}
}

// TestCrmWaitTimeoutExitStatus: a wait that runs out exits 124, as
// crm_resource --wait and timeout(1); other failures exit 1.
func TestCrmWaitTimeoutExitStatus(t *testing.T) {
	timedOut := fmt.Errorf("%w within 1m0s", errNotSettled)
	if got := exitStatus(timedOut); got != 124 {
		t.Fatalf("timed-out wait exits %d, want 124", got)
	}
	if got := exitStatus(errors.New("dial unix: no such file")); got != 1 {
		t.Fatalf("a connection failure exits %d, want 1", got)
	}
}
