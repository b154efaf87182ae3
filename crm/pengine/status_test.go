package pengine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"ringmaster/crm/cib"
	"ringmaster/crm/pengine"
)

// statusCIB: n1 runs group g {a, b} and the promoted instance of ms; n2
// runs the unpromoted one, and f, whose monitor failed; u is unmanaged
// and stopped; the cloned group cg runs on n1 only; n3 is unclean.
const statusCIB = `<cib admin_epoch="0" epoch="1" num_updates="0">
<configuration>
  <crm_config><cluster_property_set id="o"><nvpair id="o1" name="stonith-enabled" value="true"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/><node id="3" uname="n3"/></nodes>
  <resources>
    <group id="g">
      <primitive id="a" class="ocf" provider="heartbeat" type="Dummy"/>
      <primitive id="b" class="ocf" provider="heartbeat" type="Dummy"/>
    </group>
    <primitive id="f" class="ocf" provider="heartbeat" type="Dummy"/>
    <primitive id="u" class="ocf" provider="heartbeat" type="Dummy">
      <meta_attributes id="u-m"><nvpair id="u-m1" name="is-managed" value="false"/></meta_attributes>
    </primitive>
    <clone id="ms">
      <meta_attributes id="ms-m"><nvpair id="ms-m1" name="promotable" value="true"/><nvpair id="ms-m2" name="clone-max" value="2"/></meta_attributes>
      <primitive id="s" class="ocf" provider="pacemaker" type="Stateful"/>
    </clone>
    <clone id="cg">
      <meta_attributes id="cg-m"><nvpair id="cg-m1" name="clone-max" value="2"/></meta_attributes>
      <group id="h"><primitive id="x" class="ocf" provider="heartbeat" type="Dummy"/></group>
    </clone>
  </resources>
  <constraints/>
</configuration>
<status>
  <node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member"><lrm id="1"><lrm_resources>
    <lrm_resource id="a" class="ocf" provider="heartbeat" type="Dummy"><lrm_rsc_op id="a_last_0" operation="start" transition-key="1:1:0:x" call-id="1" rc-code="0" op-status="0" interval="0"/></lrm_resource>
    <lrm_resource id="b" class="ocf" provider="heartbeat" type="Dummy"><lrm_rsc_op id="b_last_0" operation="start" transition-key="1:1:0:x" call-id="2" rc-code="0" op-status="0" interval="0"/></lrm_resource>
    <lrm_resource id="s" class="ocf" provider="pacemaker" type="Stateful"><lrm_rsc_op id="s_last_0" operation="promote" transition-key="1:1:0:x" call-id="3" rc-code="0" op-status="0" interval="0"/></lrm_resource>
    <lrm_resource id="x" class="ocf" provider="heartbeat" type="Dummy"><lrm_rsc_op id="x_last_0" operation="start" transition-key="1:1:0:x" call-id="4" rc-code="0" op-status="0" interval="0"/></lrm_resource>
  </lrm_resources></lrm></node_state>
  <node_state id="2" uname="n2" in_ccm="true" crmd="online" join="member" expected="member"><lrm id="2"><lrm_resources>
    <lrm_resource id="s" class="ocf" provider="pacemaker" type="Stateful"><lrm_rsc_op id="s_last_0" operation="start" transition-key="1:1:0:x" call-id="5" rc-code="0" op-status="0" interval="0"/></lrm_resource>
    <lrm_resource id="f" class="ocf" provider="heartbeat" type="Dummy">
      <lrm_rsc_op id="f_last_0" operation="start" transition-key="1:1:0:x" call-id="6" rc-code="0" op-status="0" interval="0"/>
      <lrm_rsc_op id="f_last_failure_0" operation="monitor" transition-key="1:1:0:x" call-id="7" rc-code="7" op-status="0" interval="10000"/>
    </lrm_resource>
  </lrm_resources></lrm></node_state>
  <node_state id="3" uname="n3" in_ccm="false" crmd="offline" join="down" expected="member"/>
</status>
</cib>`

// describe renders a primitive's structured state.
func describe(r *pengine.ResourceStatus) string {
	return fmt.Sprintf("%s role=%s failed=%v managed=%v nodes=%v", r.ID, r.Role, r.Failed, r.Managed, r.Nodes)
}

func TestStatusStructuredFields(t *testing.T) {
	c, err := cib.Parse(strings.NewReader(statusCIB))
	if err != nil {
		t.Fatal(err)
	}
	st, err := pengine.Status(c, time.Unix(1767261600, 0), pengine.StatusOptions{ShowPending: true})
	if err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for _, n := range st.Nodes {
		nodes = append(nodes, fmt.Sprintf("%s id=%s online=%v unclean=%v standby=%v", n.Name, n.ID, n.Online, n.Unclean, n.Standby))
	}
	if got, want := strings.Join(nodes, "\n"), "n1 id=1 online=true unclean=false standby=false\nn2 id=2 online=true unclean=false standby=false\nn3 id=3 online=false unclean=true standby=false"; got != want {
		t.Errorf("nodes:\n%s\nwant:\n%s", got, want)
	}
	var got []string
	for _, r := range st.Resources {
		switch {
		case r.IsGroup:
			for _, m := range r.Members {
				got = append(got, r.ID+"/"+describe(m))
			}
		case r.IsClone:
			got = append(got, fmt.Sprintf("%s unique=%v promotable=%v instances=%d", r.ID, r.Unique, r.Promotable, len(r.Instances)))
			for _, inst := range r.Instances {
				if inst.IsGroup {
					for _, m := range inst.Members {
						got = append(got, r.ID+"/"+inst.ID+"/"+describe(m))
					}
					continue
				}
				got = append(got, r.ID+"/"+describe(inst))
			}
		default:
			got = append(got, describe(r))
		}
	}
	want := []string{
		"g/a role=Started failed=false managed=true nodes=[n1]",
		"g/b role=Started failed=false managed=true nodes=[n1]",
		"f role=Started failed=true managed=true nodes=[n2]",
		"u role=Stopped failed=false managed=false nodes=[]",
		"ms unique=false promotable=true instances=2",
		"ms/s:0 role=Promoted failed=false managed=true nodes=[n1]",
		"ms/s:1 role=Unpromoted failed=false managed=true nodes=[n2]",
		"cg unique=false promotable=false instances=2",
		"cg/h:0/x:0 role=Started failed=false managed=true nodes=[n1]",
		"cg/h:1/x:1 role=Stopped failed=false managed=true nodes=[]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("resources:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The display is unchanged: summarised instances, printable ids.
	for _, r := range st.Resources {
		if r.ID == "ms" && (len(r.Members) != 0 || len(r.Roles) != 2) {
			t.Errorf("ms display: members %d roles %+v", len(r.Members), r.Roles)
		}
	}
}
