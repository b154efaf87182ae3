package cib_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ringmaster/crm/cib"
)

const sample = `<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.7" epoch="3" num_updates="1" admin_epoch="0" have-quorum="1" dc-uuid="1">
  <configuration>
    <crm_config>
      <cluster_property_set id="opts">
        <nvpair id="opts-stonith" name="stonith-enabled" value="false"/>
      </cluster_property_set>
    </crm_config>
    <nodes>
      <node id="1" uname="node1">
        <instance_attributes id="node1-attrs">
          <nvpair id="node1-rack" name="rack" value="a"/>
        </instance_attributes>
      </node>
      <node id="2" uname="node2"/>
    </nodes>
    <resources>
      <primitive id="ip" class="ocf" provider="heartbeat" type="IPaddr2">
        <instance_attributes id="ip-params">
          <nvpair id="ip-params-ip" name="ip" value="10.0.0.1"/>
        </instance_attributes>
        <meta_attributes id="ip-meta">
          <nvpair id="ip-meta-stick" name="resource-stickiness" value="100"/>
        </meta_attributes>
        <operations>
          <op id="ip-mon" name="monitor" interval="10s" timeout="20s"/>
        </operations>
      </primitive>
      <group id="grp">
        <primitive id="fs" class="ocf" provider="heartbeat" type="Filesystem"/>
        <primitive id="db" class="lsb" type="mysql"/>
      </group>
    </resources>
    <constraints>
      <rsc_location id="loc" rsc="grp">
        <rule id="loc-rule" score="-INFINITY" boolean-op="or">
          <expression id="loc-e1" attribute="rack" operation="ne" value="a"/>
          <expression id="loc-e2" attribute="#uname" operation="eq" value="node2"/>
        </rule>
      </rsc_location>
      <rsc_colocation id="col" rsc="grp" with-rsc="ip" score="INFINITY"/>
      <rsc_order id="ord" first="ip" then="grp" kind="Mandatory"/>
    </constraints>
    <rsc_defaults>
      <meta_attributes id="rsc-defaults">
        <nvpair id="rsc-defaults-mt" name="migration-threshold" value="3"/>
      </meta_attributes>
    </rsc_defaults>
  </configuration>
  <status>
    <node_state id="1" uname="node1" in_ccm="true" crmd="online" join="member" expected="member">
      <transient_attributes id="1">
        <instance_attributes id="status-1">
          <nvpair id="status-1-fc" name="fail-count-ip#monitor_10000" value="1"/>
        </instance_attributes>
      </transient_attributes>
      <lrm id="1">
        <lrm_resources>
          <lrm_resource id="ip" class="ocf" provider="heartbeat" type="IPaddr2">
            <lrm_rsc_op id="ip_last_0" operation_key="ip_start_0" operation="start" transition-key="1:1:0:x" transition-magic="0:0;1:1:0:x" call-id="4" rc-code="0" op-status="0" interval="0" last-rc-change="1700000000" op-digest="abc"/>
          </lrm_resource>
        </lrm_resources>
      </lrm>
    </node_state>
  </status>
</cib>
`

func parse(t *testing.T, s string) *cib.CIB {
	t.Helper()
	c, err := cib.Parse(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseSample(t *testing.T) {
	c := parse(t, sample)
	conf := c.Config
	if len(conf.Nodes) != 2 || conf.Nodes[0].Uname != "node1" {
		t.Fatalf("nodes: %+v", conf.Nodes)
	}
	if len(conf.Resources) != 2 || !conf.Resources[1].IsGroup() || len(conf.Resources[1].Children) != 2 {
		t.Fatalf("resources: %+v", conf.Resources)
	}
	if got := conf.Resources[0].Agent(); got != "ocf:heartbeat:IPaddr2" {
		t.Errorf("agent %q", got)
	}
	if len(conf.Locations) != 1 || len(conf.Colocations) != 1 || len(conf.Orders) != 1 || len(conf.Constraints) != 3 {
		t.Errorf("constraints: %d %d %d %d", len(conf.Locations), len(conf.Colocations), len(conf.Orders), len(conf.Constraints))
	}
	if r := conf.Locations[0].Rules; len(r) != 1 || len(r[0].Expressions) != 2 {
		t.Errorf("rule: %+v", r)
	}
	ns := c.Status.Nodes[0]
	if ns.Uname() != "node1" || len(ns.Resources) != 1 {
		t.Fatalf("status: %+v", ns)
	}
	op := ns.Resources[0].Ops[0]
	if op.CallID() != 4 || op.RC() != 0 || op.Task() != "start" || op.TargetRC() != 0 {
		t.Errorf("op: call %d rc %d task %s target %d", op.CallID(), op.RC(), op.Task(), op.TargetRC())
	}
}

// TestRoundTrip writes a CIB out (as -O does) and reads it back.
func TestRoundTrip(t *testing.T) {
	c := parse(t, sample)
	var first bytes.Buffer
	if _, err := c.WriteTo(&first); err != nil {
		t.Fatal(err)
	}
	again := parse(t, first.String())
	var second bytes.Buffer
	if _, err := again.WriteTo(&second); err != nil {
		t.Fatal(err)
	}
	if first.String() != second.String() {
		t.Errorf("round trip changed the CIB:\n%s\n---\n%s", first.String(), second.String())
	}
	if !strings.Contains(first.String(), `name="fail-count-ip#monitor_10000"`) {
		t.Error("transient attributes lost")
	}
}

// TestCloneIsDeep checks that changing a clone's status leaves the original
// alone (the simulator edits a copy).
func TestCloneIsDeep(t *testing.T) {
	c := parse(t, sample)
	d := c.Clone()
	d.Status.Nodes[0].SetMembership(false)
	d.Status.Nodes[0].ClearHistory()
	if len(c.Status.Nodes[0].Resources) != 1 || c.Status.Nodes[0].Attrs.Value("crmd") != "online" {
		t.Error("Clone shares status with the original")
	}
}

func TestRecordHistory(t *testing.T) {
	c := parse(t, sample)
	lr := c.Status.Nodes[0].Resources[0]
	lr.Record(cib.OpResult{Task: "monitor", IntervalMS: 10000, RC: 7, TargetRC: 0, CallID: lr.MaxCallID() + 1, LastChange: 1700000001})
	ids := map[string]bool{}
	for _, op := range lr.Ops {
		ids[op.ID()] = true
	}
	if !ids["ip_last_failure_0"] || ids["ip_monitor_10000"] {
		t.Errorf("a failed recurring result is recorded as last_failure only: %v", ids)
	}
	lr.Record(cib.OpResult{Task: "stop", RC: 0, TargetRC: 0, CallID: lr.MaxCallID() + 1})
	if lr.MaxCallID() != 6 {
		t.Errorf("max call id %d", lr.MaxCallID())
	}
	for _, op := range lr.Ops {
		if op.ID() == "ip_last_0" && op.Task() != "stop" {
			t.Errorf("ip_last_0 not replaced: %s", op.Task())
		}
	}
}

// TestUnsupported: constructs the scheduler does not implement are errors
// that name the element and its id, never silently ignored.
func TestUnsupported(t *testing.T) {
	cases := map[string]string{
		"bundle":        `<bundle id="bu"><docker image="x"/></bundle>`,
		"op_expression": `<clone id="cl"><primitive id="p" class="ocf" provider="heartbeat" type="Dummy"/><meta_attributes id="cl-m"><rule id="cl-r"><op_expression id="cl-oe" name="monitor"/></rule></meta_attributes></clone>`,
		"rsc_ticket":    `</resources><constraints><rsc_ticket id="tk" rsc="ip" ticket="t1"/></constraints><resources>`,
		"resource_set":  `</resources><constraints><rsc_order id="o"><resource_set id="set1"><resource_ref id="ip"/></resource_set></rsc_order></constraints><resources>`,
	}
	for elem, frag := range cases {
		t.Run(elem, func(t *testing.T) {
			doc := strings.Replace(sample, `<group id="grp">`, frag+`<group id="grp">`, 1)
			_, err := cib.Parse(strings.NewReader(doc))
			if !errors.Is(err, cib.ErrUnsupported) {
				t.Fatalf("want ErrUnsupported, got %v", err)
			}
			if !strings.Contains(err.Error(), elem) {
				t.Errorf("error %q does not name <%s>", err, elem)
			}
		})
	}
}

// TestClone: clones (and the older <master>) parse with their meta
// attributes and the one resource they clone.
func TestClone(t *testing.T) {
	frag := `<clone id="cl"><meta_attributes id="cl-m"><nvpair id="cl-m-max" name="clone-max" value="2"/></meta_attributes><group id="cg"><primitive id="p" class="ocf" provider="heartbeat" type="Dummy"/></group></clone><master id="ms"><primitive id="q" class="ocf" provider="heartbeat" type="Stateful"/></master>`
	doc := strings.Replace(sample, `<group id="grp">`, frag+`<group id="grp">`, 1)
	c, err := cib.Parse(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	var cl, ms *cib.Resource
	for _, r := range c.Config.Resources {
		switch r.ID {
		case "cl":
			cl = r
		case "ms":
			ms = r
		}
	}
	if cl == nil || !cl.IsClone() || len(cl.Children) != 1 || !cl.Children[0].IsGroup() || len(cl.Meta) != 1 {
		t.Fatalf("clone parsed as %+v", cl)
	}
	if ms == nil || !ms.IsClone() || ms.Kind != "master" || ms.Children[0].ID != "q" {
		t.Fatalf("master parsed as %+v", ms)
	}
	bad := strings.Replace(sample, `<group id="grp">`, `<clone id="two"><primitive id="a" class="ocf" provider="heartbeat" type="Dummy"/><primitive id="b" class="ocf" provider="heartbeat" type="Dummy"/></clone><group id="grp">`, 1)
	if _, err := cib.Parse(strings.NewReader(bad)); !errors.Is(err, cib.ErrInvalid) {
		t.Errorf("a clone of two resources: want ErrInvalid, got %v", err)
	}
}

func TestMalformed(t *testing.T) {
	for _, doc := range []string{"", "<cib>", "<cib><configuration></cib>", "not xml", "<other/>"} {
		if _, err := cib.Parse(strings.NewReader(doc)); err == nil {
			t.Errorf("%q: expected an error", doc)
		}
	}
}

// FuzzParse: whatever the input, Parse returns a CIB or an error and never
// panics; a parsed CIB can be written out again.
func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add(`<cib><configuration><crm_config/><nodes/><resources/><constraints/></configuration><status/></cib>`)
	f.Add(`<cib><configuration><resources><group id="g"/></resources></configuration></cib>`)
	f.Add(`<cib><configuration><constraints><rsc_location id="l" rsc="x"><rule id="r" score="1"><expression id="e"/></rule></rsc_location></constraints></configuration></cib>`)
	f.Add(`<cib><configuration><crm_config><cluster_property_set id="a"><nvpair id-ref="b"/></cluster_property_set></crm_config></configuration></cib>`)
	if files, err := filepath.Glob(filepath.Join("..", "pengine", "testdata", "*.xml")); err == nil {
		for _, p := range files[:min(len(files), 5)] {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(string(b))
			}
		}
	}
	f.Fuzz(func(t *testing.T, doc string) {
		c, err := cib.Parse(strings.NewReader(doc))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if _, err := c.WriteTo(&out); err != nil {
			t.Fatalf("parsed CIB cannot be written: %v", err)
		}
		_ = c.Clone()
	})
}

// TestRuleRefCycle: a rule referring to its own ancestor is an error, not
// an endless recursion.
func TestRuleRefCycle(t *testing.T) {
	doc := strings.Replace(sample, `<expression id="loc-e2" attribute="#uname" operation="eq" value="node2"/>`,
		`<rule id="inner" id-ref="loc-rule"/>`, 1)
	if _, err := cib.Parse(strings.NewReader(doc)); !errors.Is(err, cib.ErrInvalid) {
		t.Fatalf("want ErrInvalid, got %v", err)
	}
}
