package pengine_test

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ringmaster/crm/cib"
	"ringmaster/crm/pengine"
	"ringmaster/crm/simulate"
)

// The differential test: seeded random CIBs scheduled both by ringmaster and
// by the installed crm_simulate (Pacemaker 2.1.5, Debian's
// pacemaker-cli-utils), compared with check.py's semantics (transition
// summary as a set, executed actions as a multiset, revised placement).
// Fixed cases can be tuned to; random ones cannot, so this is the
// long-lived guard for fidelity.
//
//	go test ./crm/pengine -run Differential -v                    # CI: diffCISeeds seeds
//	RINGMASTER_DIFF_SEEDS=5000 go test ./crm/pengine -run Differential  # many more
//	RINGMASTER_DIFF_SEED=1234 go test ./crm/pengine -run Differential -v  # replay one
//	RINGMASTER_DIFF_KEEP=/tmp/d ...                                 # keep the CIBs and both outputs
//	RINGMASTER_DIFF_MAXFAIL=1000 ...                                # report more than 10 divergences
//
// A seed that once diverged and was fixed is appended to diffRegressionSeeds,
// which always run. The generator stays inside the supported feature set
// (primitives, groups, location/colocation/order constraints, stickiness,
// target-role, migration-threshold, failures, standby, offline and failed
// nodes; an anonymous clone unless RINGMASTER_DIFF_CLONES=0; a promotable
// clone with promotion scores, role-based constraints and failed promoted
// monitors unless RINGMASTER_DIFF_PROMOTABLE=0); anything it
// produced outside that set would be refused by the parser, which the test
// reports as a generator bug.

// diffCISeeds is how many seeds a plain run covers: about 90 ms of
// crm_simulate and ringmaster per seed, about 30 s on two cores (with the
// regression seeds).
const diffCISeeds = 300

// diffRegressionSeeds are seeds beyond diffCISeeds that diverged once
// (each fixed since); seeds within the first diffCISeeds run anyway (43,
// 46, 47, 78, 92 and 142 diverged once too).
var diffRegressionSeeds = []int64{491, 518, 568, 588, 656, 722, 780, 912, 1133, 1136, 1489}

// diffClones adds an anonymous clone to half the generated CIBs; on by
// default, RINGMASTER_DIFF_CLONES=0 turns it off (the seeds then generate
// the primitive/group-only CIBs they always did). Of the first 1,500 seeds
// (with promotable clones too) two still diverge, 1428 and 1498: which of
// two negative optional colocations of a promoted role is rolled back for
// an instance.
var diffClones = os.Getenv("RINGMASTER_DIFF_CLONES") != "0"

// diffPromotable adds a promotable clone (ocf:pacemaker:Stateful, as a
// replicated database or DRBD is run) to half the generated CIBs; on by
// default, RINGMASTER_DIFF_PROMOTABLE=0 turns it off. Its choices come from
// a second random source, so turning it off leaves every other part of a
// seed's CIB unchanged.
var diffPromotable = os.Getenv("RINGMASTER_DIFF_PROMOTABLE") != "0"

// diffNow is the execution date written into every generated CIB, so both
// schedulers see the same clock.
const diffNow = 1700000000

func TestDifferential(t *testing.T) {
	bin, err := exec.LookPath("crm_simulate")
	if err != nil {
		msg := "*** crm_simulate NOT INSTALLED (apt-get install pacemaker-cli-utils): differential test NOT RUN ***"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	var seeds []int64
	if v := os.Getenv("RINGMASTER_DIFF_SEED"); v != "" {
		s, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("RINGMASTER_DIFF_SEED: %v", err)
		}
		seeds = []int64{s}
	} else {
		n := diffCISeeds
		if v := os.Getenv("RINGMASTER_DIFF_SEEDS"); v != "" {
			if n, err = strconv.Atoi(v); err != nil {
				t.Fatalf("RINGMASTER_DIFF_SEEDS: %v", err)
			}
		}
		seeds = append(seeds, diffRegressionSeeds...)
		for i := 0; i < n; i++ {
			seeds = append(seeds, int64(i+1))
		}
	}
	shadow := t.TempDir()
	keep := os.Getenv("RINGMASTER_DIFF_KEEP")
	if keep != "" {
		if err := os.MkdirAll(keep, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	maxFail := 10
	if v := os.Getenv("RINGMASTER_DIFF_MAXFAIL"); v != "" {
		if maxFail, err = strconv.Atoi(v); err != nil {
			t.Fatalf("RINGMASTER_DIFF_MAXFAIL: %v", err)
		}
	}
	failed := 0
	for _, seed := range seeds {
		g := genRandomCIB(seed)
		why := diffOne(t, bin, shadow, keep, seed, g)
		if why == "" {
			continue
		}
		failed++
		t.Errorf("seed %d diverges from crm_simulate: %s\n  replay: RINGMASTER_DIFF_SEED=%d RINGMASTER_DIFF_KEEP=/tmp/diff go test ./crm/pengine -run Differential -v\n  then add %d to diffRegressionSeeds once fixed", seed, why, seed, seed)
		if failed >= maxFail {
			t.Fatalf("stopping after %d divergences", failed)
		}
	}
	t.Logf("differential: %d seeds, %d divergences", len(seeds), failed)
}

// diffOne runs one generated case through both schedulers and returns why
// they differ ("" when they agree).
func diffOne(t *testing.T, bin, shadow, keep string, seed int64, g genCase) string {
	t.Helper()
	dir := shadow
	if keep != "" {
		dir = keep
	}
	xmlPath := filepath.Join(dir, fmt.Sprintf("seed-%d.xml", seed))
	if err := os.WriteFile(xmlPath, []byte(g.xml), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-x", xmlPath, "-S"}
	for _, n := range g.nodeFail {
		args = append(args, "--node-fail", n)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "CIB_shadow_dir="+shadow)
	var want, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &want, &stderr
	if err := cmd.Run(); err != nil && want.Len() == 0 {
		return fmt.Sprintf("crm_simulate failed: %v: %s", err, stderr.String())
	}
	c, err := cib.Parse(strings.NewReader(g.xml))
	if err != nil {
		return fmt.Sprintf("generator produced a CIB ringmaster refuses: %v", err)
	}
	var got bytes.Buffer
	_, err = simulate.Run(&got, c, simulate.Options{Now: time.Unix(diffNow, 0), Simulate: true, NodeFail: g.nodeFail})
	if keep != "" {
		_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d.want", seed)), want.Bytes(), 0o644)
		_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d.got", seed)), got.Bytes(), 0o644)
	}
	if err != nil {
		return fmt.Sprintf("ringmaster failed: %v", err)
	}
	level, why := compareSummaries(parseSummary(got.String()), parseSummary(want.String()))
	if level != "" {
		return fmt.Sprintf("[%s] %s", level, why)
	}
	return ""
}

// genCase is one generated input: the CIB and the crm_simulate injections.
type genCase struct {
	xml      string
	nodeFail []string
}

// genRandomCIB builds a random CIB from a seed. The same seed always gives
// the same CIB.
func genRandomCIB(seed int64) genCase {
	rng := rand.New(rand.NewSource(seed))
	var b strings.Builder
	pick := func(xs ...string) string { return xs[rng.Intn(len(xs))] }
	nNodes := 2 + rng.Intn(4)
	node := func(i int) string { return fmt.Sprintf("node%d", i+1) }
	stonith := rng.Intn(3) == 0
	fmt.Fprintf(&b, `<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.7" epoch="1" num_updates="0" admin_epoch="0" have-quorum="%d" dc-uuid="1" execution-date="%d">
  <configuration>
    <crm_config><cluster_property_set id="opts">
      <nvpair id="opts-stonith" name="stonith-enabled" value="%v"/>
      <nvpair id="opts-nqp" name="no-quorum-policy" value="%s"/>
      <nvpair id="opts-sym" name="symmetric-cluster" value="%v"/>
    </cluster_property_set></crm_config>
    <nodes>
`, btoi(rng.Intn(8) != 0), diffNow, stonith, pick("stop", "ignore", "freeze"), rng.Intn(5) != 0)
	type nstate int
	const (
		up nstate = iota
		down
		unclean
	)
	states := make([]nstate, nNodes)
	for i := range states {
		switch r := rng.Intn(10); {
		case i == 0 || r < 7:
			states[i] = up
		case r < 9:
			states[i] = down
		default:
			states[i] = unclean
		}
		fmt.Fprintf(&b, `      <node id="%d" uname="%s"><instance_attributes id="n%d-a">`, i+1, node(i), i+1)
		fmt.Fprintf(&b, `<nvpair id="n%d-rack" name="rack" value="r%d"/>`, i+1, rng.Intn(2))
		if rng.Intn(8) == 0 {
			fmt.Fprintf(&b, `<nvpair id="n%d-sb" name="standby" value="on"/>`, i+1)
		}
		b.WriteString("</instance_attributes></node>\n")
	}
	b.WriteString("    </nodes>\n    <resources>\n")
	var prims, tops []string
	if stonith {
		b.WriteString(`      <primitive id="fence" class="stonith" type="fence_dummy"/>` + "\n")
		prims = append(prims, "fence")
	}
	prim := func(id string) {
		prims = append(prims, id)
		fmt.Fprintf(&b, `<primitive id="%s" class="ocf" provider="heartbeat" type="Dummy">`, id)
		if rng.Intn(3) == 0 {
			b.WriteString(`<meta_attributes id="` + id + `-meta">`)
			if rng.Intn(2) == 0 {
				fmt.Fprintf(&b, `<nvpair id="%s-ts" name="target-role" value="%s"/>`, id, pick("Stopped", "Started"))
			}
			if rng.Intn(2) == 0 {
				fmt.Fprintf(&b, `<nvpair id="%s-mt" name="migration-threshold" value="%d"/>`, id, 1+rng.Intn(3))
			}
			if rng.Intn(2) == 0 {
				fmt.Fprintf(&b, `<nvpair id="%s-st" name="resource-stickiness" value="%s"/>`, id, pick("0", "50", "200", "INFINITY"))
			}
			b.WriteString(`</meta_attributes>`)
		}
		fmt.Fprintf(&b, `<operations><op id="%s-mon" name="monitor" interval="10s" timeout="20s"/></operations></primitive>`+"\n", id)
	}
	nTops := 1 + rng.Intn(7)
	for i := 0; i < nTops; i++ {
		if rng.Intn(3) == 0 {
			g := fmt.Sprintf("grp%d", i)
			fmt.Fprintf(&b, "      <group id=\"%s\">\n", g)
			for m, k := 0, 2+rng.Intn(2); m < k; m++ {
				prim(fmt.Sprintf("%s-m%d", g, m))
			}
			b.WriteString("      </group>\n")
			tops = append(tops, g)
			continue
		}
		prim(fmt.Sprintf("rsc%d", i))
		tops = append(tops, prims[len(prims)-1])
	}
	// An anonymous clone of a primitive, referenced by constraints like
	// any other resource; its history is recorded under the primitive's id.
	withClone := rng.Intn(2) == 0 && diffClones
	if withClone {
		b.WriteString(`      <clone id="cl"><meta_attributes id="cl-m">`)
		if rng.Intn(2) == 0 {
			fmt.Fprintf(&b, `<nvpair id="cl-max" name="clone-max" value="%d"/>`, 1+rng.Intn(nNodes))
		}
		if rng.Intn(2) == 0 {
			b.WriteString(`<nvpair id="cl-int" name="interleave" value="true"/>`)
		}
		b.WriteString(`</meta_attributes><primitive id="clp" class="ocf" provider="heartbeat" type="Dummy"><operations><op id="clp-mon" name="monitor" interval="10s" timeout="20s"/></operations></primitive></clone>` + "\n")
		tops = append(tops, "cl")
	}
	// A promotable clone, with promoted-max 1 or 2, role-specific monitors
	// and, in the status, promotion scores (master-msp) where the agent
	// runs. mrng is its own random source (see diffPromotable).
	mrng := rand.New(rand.NewSource(seed*7919 + 17))
	mpick := func(xs ...string) string { return xs[mrng.Intn(len(xs))] }
	withMS := diffPromotable && mrng.Intn(2) == 0
	if withMS {
		b.WriteString(`      <clone id="ms"><meta_attributes id="ms-m"><nvpair id="ms-prom" name="promotable" value="true"/>`)
		fmt.Fprintf(&b, `<nvpair id="ms-pmax" name="promoted-max" value="%d"/>`, 1+mrng.Intn(2))
		if mrng.Intn(3) == 0 {
			fmt.Fprintf(&b, `<nvpair id="ms-max" name="clone-max" value="%d"/>`, 1+mrng.Intn(nNodes))
		}
		if mrng.Intn(3) == 0 {
			b.WriteString(`<nvpair id="ms-int" name="interleave" value="true"/>`)
		}
		if mrng.Intn(8) == 0 {
			fmt.Fprintf(&b, `<nvpair id="ms-tr" name="target-role" value="%s"/>`, mpick("Unpromoted", "Stopped", "Promoted"))
		}
		b.WriteString(`</meta_attributes><primitive id="msp" class="ocf" provider="pacemaker" type="Stateful"><operations>` +
			`<op id="msp-mon-p" name="monitor" interval="10s" timeout="20s" role="Promoted"/>` +
			`<op id="msp-mon-u" name="monitor" interval="11s" timeout="20s" role="Unpromoted"/>` +
			`</operations></primitive></clone>` + "\n")
	}
	b.WriteString("    </resources>\n    <constraints>\n")
	if withMS {
		// What real clusters put around a promotable clone: a preferred
		// node for the promoted role, a service (or its IP) colocated with
		// and ordered after the promoted instance, rarely something kept
		// away from it or the promoted role following another resource.
		for i, k := 0, mrng.Intn(4); i < k; i++ {
			other := tops[mrng.Intn(len(tops))]
			sc := mpick("INFINITY", "-INFINITY", "100", "50", "-50")
			switch mrng.Intn(6) {
			case 0:
				fmt.Fprintf(&b, "      <rsc_location id=\"ms-loc%d\" rsc=\"ms\" node=\"%s\" score=\"%s\" role=\"Promoted\"/>\n", i, node(mrng.Intn(nNodes)), sc)
			case 1:
				fmt.Fprintf(&b, "      <rsc_location id=\"ms-rule%d\" rsc=\"ms\"><rule id=\"ms-rule%d-r\" score=\"%s\" role=\"Promoted\"><expression id=\"ms-rule%d-e\" attribute=\"rack\" operation=\"eq\" value=\"r%d\"/></rule></rsc_location>\n", i, i, sc, i, mrng.Intn(2))
			case 2:
				fmt.Fprintf(&b, "      <rsc_colocation id=\"ms-col%d\" rsc=\"%s\" with-rsc=\"ms\" with-rsc-role=\"Promoted\" score=\"%s\"/>\n", i, other, mpick("INFINITY", "INFINITY", "100", "-INFINITY"))
			case 3:
				fmt.Fprintf(&b, "      <rsc_order id=\"ms-ord%d\" first=\"ms\" first-action=\"promote\" then=\"%s\" then-action=\"start\" kind=\"%s\"/>\n", i, other, mpick("Mandatory", "Optional"))
			case 4:
				fmt.Fprintf(&b, "      <rsc_colocation id=\"ms-col%d\" rsc=\"ms\" rsc-role=\"Promoted\" with-rsc=\"%s\" score=\"%s\"/>\n", i, other, sc)
			case 5:
				fmt.Fprintf(&b, "      <rsc_location id=\"ms-loc%d\" rsc=\"ms\" node=\"%s\" score=\"%s\"/>\n", i, node(mrng.Intn(nNodes)), sc)
			}
		}
	}
	score := func() string { return pick("INFINITY", "-INFINITY", "100", "50", "-50", "0") }
	for i, k := 0, rng.Intn(2*len(tops)+1); i < k; i++ {
		a, c := tops[rng.Intn(len(tops))], tops[rng.Intn(len(tops))]
		switch rng.Intn(4) {
		case 0:
			fmt.Fprintf(&b, "      <rsc_location id=\"loc%d\" rsc=\"%s\" node=\"%s\" score=\"%s\"/>\n", i, a, node(rng.Intn(nNodes)), score())
		case 1:
			fmt.Fprintf(&b, "      <rsc_location id=\"rule%d\" rsc=\"%s\"><rule id=\"rule%d-r\" score=\"%s\"><expression id=\"rule%d-e\" attribute=\"rack\" operation=\"%s\" value=\"r%d\"/></rule></rsc_location>\n", i, a, i, score(), i, pick("eq", "ne"), rng.Intn(2))
		case 2:
			if a != c {
				fmt.Fprintf(&b, "      <rsc_colocation id=\"col%d\" rsc=\"%s\" with-rsc=\"%s\" score=\"%s\"/>\n", i, a, c, score())
			}
		case 3:
			if a != c {
				fmt.Fprintf(&b, "      <rsc_order id=\"ord%d\" first=\"%s\" then=\"%s\" kind=\"%s\"/>\n", i, a, c, pick("Mandatory", "Optional"))
			}
		}
	}
	b.WriteString("    </constraints>\n")
	if rng.Intn(2) == 0 {
		fmt.Fprintf(&b, "    <rsc_defaults><meta_attributes id=\"rd\"><nvpair id=\"rd-s\" name=\"resource-stickiness\" value=\"%s\"/></meta_attributes></rsc_defaults>\n", pick("0", "100", "1000"))
	}
	b.WriteString("  </configuration>\n  <status>\n")
	// Where each primitive runs: mostly one node, sometimes none, rarely two.
	monDigest := pengine.Digest(map[string]string{"CRM_meta_timeout": "20000"})
	noDigest := pengine.Digest(map[string]string{})
	call := 10
	// opx records one operation that expected rc exp and returned rc.
	opx := func(p, task string, iv, rc, exp int, n string) {
		key := fmt.Sprintf("%s_%s_%d", p, task, iv)
		id := p + "_last_0"
		dg := noDigest
		if iv > 0 {
			id, dg = key, monDigest
		}
		probe := task == "monitor" && iv == 0
		if rc != exp && !(probe && (rc == 0 || rc == 7 || rc == 8)) {
			id = p + "_last_failure_0"
		}
		fmt.Fprintf(&b, `<lrm_rsc_op id="%s" operation_key="%s" operation="%s" crm-debug-origin="gen" crm_feature_set="3.16.1" transition-key="%d:1:%d:00000000-0000-4000-8000-000000000000" transition-magic="0:%d;%d:1:%d:00000000-0000-4000-8000-000000000000" on_node="%s" call-id="%d" rc-code="%d" op-status="0" interval="%d" last-rc-change="%d" exec-time="10" queue-time="0" op-digest="%s"/>`,
			id, key, task, call, exp, rc, call, exp, n, call, rc, iv, diffNow-100, dg)
		call++
	}
	op := func(p, task string, iv, rc int, n string) {
		exp := 0
		if task == "monitor" && iv == 0 {
			exp = 7
		}
		opx(p, task, iv, rc, exp, n)
	}
	var fails []string
	for n := 0; n < nNodes; n++ {
		switch states[n] {
		case down:
			fmt.Fprintf(&b, "    <node_state id=\"%d\" uname=\"%s\" in_ccm=\"false\" crmd=\"offline\" join=\"down\" expected=\"down\"/>\n", n+1, node(n))
			continue
		case unclean:
			fmt.Fprintf(&b, "    <node_state id=\"%d\" uname=\"%s\" in_ccm=\"false\" crmd=\"offline\" join=\"member\" expected=\"member\">", n+1, node(n))
		default:
			fmt.Fprintf(&b, "    <node_state id=\"%d\" uname=\"%s\" in_ccm=\"true\" crmd=\"online\" join=\"member\" expected=\"member\">", n+1, node(n))
		}
		var failcounts []string
		b.WriteString("<lrm id=\"" + strconv.Itoa(n+1) + "\"><lrm_resources>\n")
		for _, p := range prims {
			r := rng.Intn(10)
			if r == 0 {
				continue // never probed here
			}
			cls := `class="ocf" provider="heartbeat" type="Dummy"`
			if p == "fence" {
				cls = `class="stonith" type="fence_dummy"`
			}
			fmt.Fprintf(&b, `<lrm_resource id="%s" %s>`, p, cls)
			switch {
			case r < 6: // probed, not running
				op(p, "monitor", 0, 7, node(n))
			case r < 8: // running
				op(p, "start", 0, 0, node(n))
				op(p, "monitor", 10000, 0, node(n))
			case r < 9: // running, monitor failed
				op(p, "start", 0, 0, node(n))
				op(p, "monitor", 10000, pick3(rng, 1, 7, 7), node(n))
				failcounts = append(failcounts, fmt.Sprintf(`<nvpair id="status-%d-fc-%s" name="fail-count-%s#monitor_10000" value="%d"/>`, n+1, p, p, 1+rng.Intn(3)))
			default: // start failed
				op(p, "start", 0, 1, node(n))
				failcounts = append(failcounts, fmt.Sprintf(`<nvpair id="status-%d-fc-%s" name="fail-count-%s#start_0" value="INFINITY"/>`, n+1, p, p))
			}
			b.WriteString("</lrm_resource>\n")
		}
		if withClone {
			if r := rng.Intn(4); r > 0 {
				b.WriteString(`<lrm_resource id="clp" class="ocf" provider="heartbeat" type="Dummy">`)
				if r == 1 {
					op("clp", "monitor", 0, 7, node(n))
				} else {
					op("clp", "start", 0, 0, node(n))
					op("clp", "monitor", 10000, 0, node(n))
				}
				b.WriteString("</lrm_resource>\n")
			}
		}
		if withMS {
			// Stateful's history on this node: none, probed, unpromoted,
			// promoted, or promoted with a failed promoted monitor.
			r := mrng.Intn(10)
			running := false
			if r > 0 {
				b.WriteString(`<lrm_resource id="msp" class="ocf" provider="pacemaker" type="Stateful">`)
				switch {
				case r < 3:
					op("msp", "monitor", 0, 7, node(n))
				case r < 6:
					op("msp", "start", 0, 0, node(n))
					opx("msp", "monitor", 11000, 0, 0, node(n))
					running = true
				case r < 9:
					op("msp", "promote", 0, 0, node(n))
					opx("msp", "monitor", 10000, 8, 8, node(n))
					running = true
				default:
					op("msp", "promote", 0, 0, node(n))
					opx("msp", "monitor", 10000, pick3(mrng, 1, 7), 8, node(n))
					failcounts = append(failcounts, fmt.Sprintf(`<nvpair id="status-%d-fc-msp" name="fail-count-msp#monitor_10000" value="1"/>`, n+1))
				}
				b.WriteString("</lrm_resource>\n")
			}
			// The agent sets its promotion score where it runs (and,
			// rarely, a stale one is left where it does not).
			if (running && mrng.Intn(5) != 0) || mrng.Intn(8) == 0 {
				failcounts = append(failcounts, fmt.Sprintf(`<nvpair id="status-%d-master-msp" name="master-msp" value="%s"/>`, n+1, mpick("5", "10", "10", "100", "1000")))
			}
		}
		b.WriteString("</lrm_resources></lrm>")
		if len(failcounts) > 0 && states[n] == up {
			fmt.Fprintf(&b, `<transient_attributes id="%d"><instance_attributes id="status-%d">%s</instance_attributes></transient_attributes>`, n+1, n+1, strings.Join(failcounts, ""))
		}
		b.WriteString("</node_state>\n")
		if states[n] == up && n > 0 && rng.Intn(12) == 0 {
			fails = append(fails, node(n))
		}
	}
	b.WriteString("  </status>\n</cib>\n")
	return genCase{xml: b.String(), nodeFail: fails}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func pick3(rng *rand.Rand, xs ...int) int { return xs[rng.Intn(len(xs))] }
