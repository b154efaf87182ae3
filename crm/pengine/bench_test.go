package pengine_test

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"ringmaster/crm/cib"
	"ringmaster/crm/pengine"
)

// genCluster builds a CIB with nRsc resources on nNodes nodes: a third of
// them in groups of three, the rest primitives, with location, colocation
// and order constraints, and a status section where most resources run
// and have been probed everywhere. One node is in standby, so resources
// must move; a few resources have failed. The generator is seeded, so
// every run schedules the same input.
func genCluster(tb testing.TB, nRsc, nNodes int) *cib.CIB {
	tb.Helper()
	rng := rand.New(rand.NewSource(1))
	var b strings.Builder
	node := func(i int) string { return fmt.Sprintf("node%02d", i+1) }
	b.WriteString(`<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.7" epoch="1" num_updates="0" admin_epoch="0" have-quorum="1" dc-uuid="1">
  <configuration>
    <crm_config><cluster_property_set id="opts"><nvpair id="opts-stonith" name="stonith-enabled" value="true"/></cluster_property_set></crm_config>
    <nodes>
`)
	for i := 0; i < nNodes; i++ {
		if i == 3 {
			fmt.Fprintf(&b, "      <node id=\"%d\" uname=\"%s\"><instance_attributes id=\"n%d-a\"><nvpair id=\"n%d-sb\" name=\"standby\" value=\"on\"/></instance_attributes></node>\n", i+1, node(i), i, i)
			continue
		}
		fmt.Fprintf(&b, "      <node id=\"%d\" uname=\"%s\"><instance_attributes id=\"n%d-a\"><nvpair id=\"n%d-rack\" name=\"rack\" value=\"r%d\"/></instance_attributes></node>\n", i+1, node(i), i, i, i%4)
	}
	b.WriteString("    </nodes>\n    <resources>\n")
	b.WriteString(`      <primitive id="fence" class="stonith" type="fence_dummy"/>` + "\n")
	var prims []string
	prim := func(id string) {
		prims = append(prims, id)
		fmt.Fprintf(&b, `<primitive id="%s" class="ocf" provider="heartbeat" type="Dummy"><instance_attributes id="%s-ia"><nvpair id="%s-ip" name="ip" value="10.0.%d.%d"/></instance_attributes><operations><op id="%s-mon" name="monitor" interval="10s"/></operations></primitive>`+"\n",
			id, id, id, len(prims)/250, len(prims)%250, id)
	}
	var tops []string
	for i := 0; len(prims) < nRsc; i++ {
		if i%3 == 0 && len(prims)+3 <= nRsc {
			g := fmt.Sprintf("grp%d", i)
			fmt.Fprintf(&b, "      <group id=\"%s\">\n", g)
			for m := 0; m < 3; m++ {
				prim(fmt.Sprintf("%s-m%d", g, m))
			}
			b.WriteString("      </group>\n")
			tops = append(tops, g)
			continue
		}
		prim(fmt.Sprintf("rsc%d", i))
		tops = append(tops, prims[len(prims)-1])
	}
	b.WriteString("    </resources>\n    <constraints>\n")
	for i, t := range tops {
		switch i % 5 {
		case 0:
			fmt.Fprintf(&b, "      <rsc_location id=\"loc%d\" rsc=\"%s\" node=\"%s\" score=\"%d\"/>\n", i, t, node(rng.Intn(nNodes)), 10*rng.Intn(20))
		case 1:
			fmt.Fprintf(&b, "      <rsc_location id=\"rule%d\" rsc=\"%s\"><rule id=\"rule%d-r\" score=\"-INFINITY\"><expression id=\"rule%d-e\" attribute=\"rack\" operation=\"eq\" value=\"r%d\"/></rule></rsc_location>\n", i, t, i, i, rng.Intn(4))
		case 2:
			fmt.Fprintf(&b, "      <rsc_colocation id=\"col%d\" rsc=\"%s\" with-rsc=\"%s\" score=\"%s\"/>\n", i, t, tops[i-1], []string{"INFINITY", "500", "-INFINITY"}[rng.Intn(3)])
		case 3:
			fmt.Fprintf(&b, "      <rsc_order id=\"ord%d\" first=\"%s\" then=\"%s\"/>\n", i, tops[i-2], t)
		}
	}
	b.WriteString("    </constraints>\n    <rsc_defaults><meta_attributes id=\"rd\"><nvpair id=\"rd-s\" name=\"resource-stickiness\" value=\"100\"/></meta_attributes></rsc_defaults>\n  </configuration>\n  <status>\n")
	// Where each primitive runs (or -1).
	where := make([]int, len(prims))
	for i := range prims {
		where[i] = -1
		if rng.Intn(10) < 8 {
			where[i] = rng.Intn(nNodes)
		}
	}
	call := 1
	for n := 0; n < nNodes; n++ {
		fmt.Fprintf(&b, "    <node_state id=\"%d\" uname=\"%s\" in_ccm=\"true\" crmd=\"online\" join=\"member\" expected=\"member\"><lrm id=\"%d\"><lrm_resources>\n", n+1, node(n), n+1)
		for i, p := range prims {
			fmt.Fprintf(&b, "<lrm_resource id=\"%s\" class=\"ocf\" provider=\"heartbeat\" type=\"Dummy\">", p)
			if where[i] == n {
				failed := rng.Intn(50) == 0
				rc := 0
				if failed {
					rc = 1
				}
				fmt.Fprintf(&b, `<lrm_rsc_op id="%s_last_0" operation_key="%s_start_0" operation="start" transition-key="%d:1:0:x" transition-magic="0:0;%d:1:0:x" call-id="%d" rc-code="0" op-status="0" interval="0" last-rc-change="1700000000" op-digest="x"/>`, p, p, call, call, call)
				call++
				fmt.Fprintf(&b, `<lrm_rsc_op id="%s_monitor_10000" operation_key="%s_monitor_10000" operation="monitor" transition-key="%d:1:0:x" transition-magic="0:%d;%d:1:0:x" call-id="%d" rc-code="%d" op-status="0" interval="10000" last-rc-change="1700000000" op-digest="x"/>`, p, p, call, rc, call, call, rc)
				call++
			} else {
				fmt.Fprintf(&b, `<lrm_rsc_op id="%s_last_0" operation_key="%s_monitor_0" operation="monitor" transition-key="%d:1:7:x" transition-magic="0:7;%d:1:7:x" call-id="%d" rc-code="7" op-status="0" interval="0" last-rc-change="1700000000" op-digest="x"/>`, p, p, call, call, call)
				call++
			}
			b.WriteString("</lrm_resource>\n")
		}
		b.WriteString("</lrm_resources></lrm></node_state>\n")
	}
	b.WriteString("  </status>\n</cib>\n")
	c, err := cib.Parse(strings.NewReader(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// BenchmarkSchedule1000x32 schedules 1,000 resources on 32 nodes.
func BenchmarkSchedule1000x32(b *testing.B) {
	c := genCluster(b, 1000, 32)
	now := time.Unix(1700000000, 0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := pengine.Schedule(c, now, pengine.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Graph.Actions) == 0 {
			b.Fatal("empty transition")
		}
	}
}

// TestScheduleLargeIsDeterministic schedules the benchmark's cluster twice
// and checks that the outputs are identical and the input untouched.
func TestScheduleLargeIsDeterministic(t *testing.T) {
	if testing.Short() {
		t.Skip("large input")
	}
	c := genCluster(t, 300, 16)
	var before strings.Builder
	if _, err := c.WriteTo(&before); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1700000000, 0)
	r1, err := pengine.Schedule(c, now, pengine.Options{ShowScores: true})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := pengine.Schedule(c, now, pengine.Options{ShowScores: true})
	if err != nil {
		t.Fatal(err)
	}
	var g1, g2 strings.Builder
	if err := r1.Graph.WriteXML(&g1); err != nil {
		t.Fatal(err)
	}
	if err := r2.Graph.WriteXML(&g2); err != nil {
		t.Fatal(err)
	}
	if g1.String() != g2.String() {
		t.Error("two runs produced different graphs")
	}
	if strings.Join(pengine.ScoresSorted(r1.Scores), "\n") != strings.Join(pengine.ScoresSorted(r2.Scores), "\n") {
		t.Error("two runs produced different scores")
	}
	var after strings.Builder
	if _, err := c.WriteTo(&after); err != nil {
		t.Fatal(err)
	}
	if before.String() != after.String() {
		t.Error("Schedule modified its input CIB")
	}
}
