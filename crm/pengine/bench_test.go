package pengine_test

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
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
	benchSchedule(b, genCluster(b, 1000, 32))
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

// genCloneCluster is genCluster's cluster with clones added: nClones
// anonymous clones of a primitive (one instance per node, running on all
// but the standby node), one promotable clone, and one globally-unique
// clone with uniqueInstances instances (clone-node-max large enough to
// place them all). Each clone's primitive counts as one resource.
func genCloneCluster(tb testing.TB, nRsc, nNodes, nClones, uniqueInstances int) *cib.CIB {
	tb.Helper()
	base := genCluster(tb, nRsc-nClones-2, nNodes)
	var cfg, st strings.Builder
	node := func(i int) string { return fmt.Sprintf("node%02d", i+1) }
	op := func(b *strings.Builder, rsc, task string, iv, rc, call int) {
		id := rsc + "_last_0"
		if iv > 0 {
			id = fmt.Sprintf("%s_%s_%d", rsc, task, iv)
		}
		fmt.Fprintf(b, `<lrm_rsc_op id="%s" operation_key="%s_%s_%d" operation="%s" transition-key="%d:1:0:x" transition-magic="0:%d;%d:1:0:x" call-id="%d" rc-code="%d" op-status="0" interval="%d" last-rc-change="1700000000" op-digest="x"/>`,
			id, rsc, task, iv, task, call, rc, call, call, rc, iv)
	}
	for c := 0; c < nClones; c++ {
		fmt.Fprintf(&cfg, `<clone id="cl%d"><meta_attributes id="cl%d-m"><nvpair id="cl%d-i" name="interleave" value="true"/></meta_attributes><primitive id="clp%d" class="ocf" provider="heartbeat" type="Dummy"><operations><op id="clp%d-mon" name="monitor" interval="10s"/></operations></primitive></clone>`, c, c, c, c, c)
	}
	fmt.Fprintf(&cfg, `<clone id="ms"><meta_attributes id="ms-m"><nvpair id="ms-p" name="promotable" value="true"/><nvpair id="ms-n" name="notify" value="true"/></meta_attributes><primitive id="db" class="ocf" provider="pacemaker" type="Stateful"><operations><op id="db-m1" name="monitor" interval="10s" role="Promoted"/><op id="db-m2" name="monitor" interval="11s" role="Unpromoted"/></operations></primitive></clone>`)
	fmt.Fprintf(&cfg, `<clone id="uq"><meta_attributes id="uq-m"><nvpair id="uq-u" name="globally-unique" value="true"/><nvpair id="uq-max" name="clone-max" value="%d"/><nvpair id="uq-nm" name="clone-node-max" value="%d"/></meta_attributes><primitive id="ip" class="ocf" provider="heartbeat" type="IPaddr2"><operations><op id="ip-mon" name="monitor" interval="10s"/></operations></primitive></clone>`, uniqueInstances, (uniqueInstances+nNodes-2)/(nNodes-1)+1)
	call := 100000
	status := map[int]string{}
	for n := 0; n < nNodes; n++ {
		st.Reset()
		for c := 0; c < nClones; c++ {
			fmt.Fprintf(&st, `<lrm_resource id="clp%d" class="ocf" provider="heartbeat" type="Dummy">`, c)
			if n == 3 {
				op(&st, fmt.Sprintf("clp%d", c), "monitor", 0, 7, call)
			} else {
				op(&st, fmt.Sprintf("clp%d", c), "start", 0, 0, call)
				op(&st, fmt.Sprintf("clp%d", c), "monitor", 10000, 0, call+1)
			}
			call += 2
			st.WriteString("</lrm_resource>")
		}
		st.WriteString(`<lrm_resource id="db" class="ocf" provider="pacemaker" type="Stateful">`)
		op(&st, "db", "monitor", 0, 7, call)
		call++
		st.WriteString("</lrm_resource>")
		for i := n; i < uniqueInstances; i += nNodes {
			if n == 3 {
				continue
			}
			id := fmt.Sprintf("ip:%d", i)
			fmt.Fprintf(&st, `<lrm_resource id="%s" class="ocf" provider="heartbeat" type="IPaddr2">`, id)
			op(&st, id, "start", 0, 0, call)
			op(&st, id, "monitor", 10000, 0, call+1)
			call += 2
			st.WriteString("</lrm_resource>")
		}
		status[n] = st.String()
	}
	var out strings.Builder
	if _, err := base.WriteTo(&out); err != nil {
		tb.Fatal(err)
	}
	doc := strings.Replace(out.String(), "</resources>", cfg.String()+"</resources>", 1)
	for n := 0; n < nNodes; n++ {
		marker := fmt.Sprintf(`uname="%s"`, node(n))
		i := strings.Index(doc, marker)
		j := strings.Index(doc[i:], "<lrm_resources>")
		if i < 0 || j < 0 {
			tb.Fatalf("no status for %s", node(n))
		}
		at := i + j + len("<lrm_resources>")
		doc = doc[:at] + status[n] + doc[at:]
	}
	c, err := cib.Parse(strings.NewReader(doc))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// BenchmarkSchedule1000x32Clones schedules 1,000 resources on 32 nodes, 40
// of them anonymous clones (one instance per node), plus a promotable clone
// with notifications and a 200-instance unique clone.
func BenchmarkSchedule1000x32Clones(b *testing.B) {
	benchSchedule(b, genCloneCluster(b, 1000, 32, 40, 200))
}

// BenchmarkSchedule200CloneInstances schedules a small cluster whose weight
// is one globally-unique clone of 200 instances on 32 nodes.
func BenchmarkSchedule200CloneInstances(b *testing.B) {
	benchSchedule(b, genCloneCluster(b, 12, 32, 1, 200))
}

func benchSchedule(b *testing.B, c *cib.CIB) {
	if d := os.Getenv("RINGMASTER_BENCH_DUMP"); d != "" {
		// Keep the input, to time crm_simulate on the same CIB.
		var w strings.Builder
		if _, err := c.WriteTo(&w); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, b.Name()+".xml"), []byte(w.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
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
