package cibedit_test

import (
	"bytes"
	"strings"
	"testing"

	"ringmaster/crm/cib"
	"ringmaster/crm/simulate"
)

// TestBuiltinClass: primitives of class builtin (ringmaster's built-in
// agents) are ordinary primitives to the CIB parser and the scheduler, in
// a group with an OCF agent, and an edit moves them like any other.
func TestBuiltinClass(t *testing.T) {
	const x = `<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.7" epoch="1" num_updates="0" admin_epoch="0" have-quorum="1" execution-date="1700000000">
  <configuration>
    <crm_config><cluster_property_set id="o"><nvpair id="o-s" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
    <nodes><node id="1" uname="node1"/><node id="2" uname="node2"/></nodes>
    <resources>
      <group id="g">
        <primitive id="vip" class="builtin" type="vip">
          <instance_attributes id="vip-ia"><nvpair id="vip-ip" name="ip" value="192.0.2.10"/></instance_attributes>
          <operations><op id="vip-mon" name="monitor" interval="5s"/></operations>
        </primitive>
        <primitive id="app" class="ocf" provider="heartbeat" type="Dummy"/>
      </group>
    </resources>
    <constraints><rsc_location id="g-pref" rsc="g" node="node1" score="10"/></constraints>
  </configuration>
  <status>
    <node_state id="1" uname="node1" in_ccm="true" crmd="online" join="member" expected="member"/>
    <node_state id="2" uname="node2" in_ccm="true" crmd="online" join="member" expected="member"/>
  </status>
</cib>`
	c, err := cib.Parse(strings.NewReader(x))
	if err != nil {
		t.Fatal(err)
	}
	vip := c.Config.Resources[0].Children[0]
	if vip.Class != "builtin" || vip.Type != "vip" || vip.Agent() != "builtin:vip" {
		t.Fatalf("parsed %+v", vip)
	}
	var out bytes.Buffer
	o := sim(t, c, simulate.Options{Simulate: true}, &out)
	for _, want := range []string{"vip	(builtin:vip):	 Started node1", "Resource action: vip             start on node1", "Resource action: vip             monitor=5000 on node1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("simulate output lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(xmlText(t, o), `<lrm_resource id="vip" class="builtin" type="vip">`) {
		t.Errorf("history of vip not recorded with class builtin")
	}
}
