package metrics

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/crm/cib"
	"ringmaster/crm/controld"
	"ringmaster/internal/events"
	"ringmaster/totem"
)

// crmCIB: group g {a, b} runs on n1; f runs on n2 and failed its monitor
// twice (migration-threshold 3 from rsc_defaults, 5 on g's meta); u is
// unmanaged and stopped; n2 is in standby with a transient attribute;
// one location constraint.
const crmCIB = `<cib admin_epoch="0" epoch="7" num_updates="3">
<configuration>
  <crm_config><cluster_property_set id="o"><nvpair id="o1" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="n1"><instance_attributes id="n1-a"><nvpair id="n1-a1" name="site" value="east"/></instance_attributes></node>
    <node id="2" uname="n2"><instance_attributes id="n2-a"><nvpair id="n2-a1" name="standby" value="on"/></instance_attributes></node></nodes>
  <resources>
    <group id="g">
      <meta_attributes id="g-m"><nvpair id="g-m1" name="migration-threshold" value="5"/></meta_attributes>
      <primitive id="a" class="ocf" provider="heartbeat" type="Dummy"/>
      <primitive id="b" class="ocf" provider="heartbeat" type="Dummy"/>
    </group>
    <primitive id="f" class="ocf" provider="heartbeat" type="Dummy"/>
    <primitive id="u" class="ocf" provider="heartbeat" type="Dummy">
      <meta_attributes id="u-m"><nvpair id="u-m1" name="is-managed" value="false"/></meta_attributes>
    </primitive>
  </resources>
  <constraints><rsc_location id="prefer-n1" rsc="g" node="n1" score="INFINITY"/></constraints>
  <rsc_defaults><meta_attributes id="rd"><nvpair id="rd1" name="migration-threshold" value="3"/></meta_attributes></rsc_defaults>
</configuration>
<status>
  <node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member"><lrm id="1"><lrm_resources>
    <lrm_resource id="a" class="ocf" provider="heartbeat" type="Dummy"><lrm_rsc_op id="a_last_0" operation="start" transition-key="1:1:0:x" call-id="1" rc-code="0" op-status="0" interval="0"/></lrm_resource>
    <lrm_resource id="b" class="ocf" provider="heartbeat" type="Dummy"><lrm_rsc_op id="b_last_0" operation="start" transition-key="1:1:0:x" call-id="2" rc-code="0" op-status="0" interval="0"/></lrm_resource>
  </lrm_resources></lrm></node_state>
  <node_state id="2" uname="n2" in_ccm="true" crmd="online" join="member" expected="member">
    <transient_attributes id="2"><instance_attributes id="status-2">
      <nvpair id="s2-1" name="fail-count-f#monitor_10000" value="2"/><nvpair id="s2-2" name="last-failure-f#monitor_10000" value="1700000000"/>
      <nvpair id="s2-3" name="pingd" value="100"/>
    </instance_attributes></transient_attributes>
    <lrm id="2"><lrm_resources>
    <lrm_resource id="f" class="ocf" provider="heartbeat" type="Dummy">
      <lrm_rsc_op id="f_last_0" operation="start" transition-key="1:1:0:x" call-id="6" rc-code="0" op-status="0" interval="0"/>
      <lrm_rsc_op id="f_last_failure_0" operation="monitor" transition-key="1:1:0:x" call-id="7" rc-code="7" op-status="0" interval="10000"/>
    </lrm_resource>
  </lrm_resources></lrm></node_state>
</status>
</cib>`

func TestCRMFamilies(t *testing.T) {
	c, err := cib.Parse(strings.NewReader(crmCIB))
	require.NoError(t, err)
	seen := time.Unix(1700000100, 0)
	snap := Snapshot{Node: 1, CRM: &CRM{Now: time.Unix(1700000200, 0), CIB: c, DC: "n1", ConfigSeen: seen,
		Status: controld.Status{Node: 1, DC: 1, Synced: true, Quorate: true, Transition: 4, Pending: 2,
			Version: controld.Version{Epoch: 7, NumUpdates: 3}, Members: []totem.NodeID{1, 2}}}}
	fams := gather(t, NewCollector(func() Snapshot { return snap }))
	g := func(name string, labels map[string]string) float64 {
		t.Helper()
		return sample(t, fams, name, labels).Gauge.GetValue()
	}
	assert.Equal(t, 1.0, g("ringmaster_crm_is_dc", nil))
	assert.Equal(t, 4.0, g("ringmaster_crm_transition_id", nil))
	assert.Equal(t, 2.0, g("ringmaster_crm_transition_pending_actions", nil))
	assert.Equal(t, 7.0, g("ringmaster_crm_config_version", map[string]string{"part": "epoch"}))
	assert.Equal(t, 1700000100.0, g("ringmaster_crm_config_last_change", nil))
	assert.Equal(t, 0.0, g("ringmaster_crm_stonith_enabled", nil))
	assert.Equal(t, 0.0, g("ringmaster_crm_status_error", nil))

	// Nodes: one line per status.
	assert.Equal(t, 1.0, g("ringmaster_crm_nodes", map[string]string{"node": "n1", "status": "online", "type": "member"}))
	assert.Equal(t, 1.0, g("ringmaster_crm_nodes", map[string]string{"node": "n1", "status": "dc"}))
	assert.Equal(t, 0.0, g("ringmaster_crm_nodes", map[string]string{"node": "n2", "status": "dc"}))
	assert.Equal(t, 1.0, g("ringmaster_crm_nodes", map[string]string{"node": "n2", "status": "standby"}))
	assert.Equal(t, 0.0, g("ringmaster_crm_nodes", map[string]string{"node": "n1", "status": "standby"}))
	assert.Equal(t, 1.0, g("ringmaster_crm_nodes", map[string]string{"node": "n2", "status": "expected_up"}))
	assert.Len(t, fams["ringmaster_crm_nodes"].Metric, 2*len(nodeStatuses))

	// Resources: by node, role, group, one line per status.
	assert.Equal(t, 1.0, g("ringmaster_crm_resources", map[string]string{"resource": "a", "node": "n1", "role": "started", "group": "g",
		"managed": "true", "agent": "ocf:heartbeat:Dummy", "status": "active"}))
	assert.Equal(t, 0.0, g("ringmaster_crm_resources", map[string]string{"resource": "a", "status": "failed"}))
	assert.Equal(t, 1.0, g("ringmaster_crm_resources", map[string]string{"resource": "f", "node": "n2", "status": "failed"}))
	assert.Equal(t, 0.0, g("ringmaster_crm_resources", map[string]string{"resource": "u", "node": "", "role": "stopped", "managed": "false", "status": "active"}))

	// Fail counts and thresholds where a resource has history.
	assert.Equal(t, 2.0, g("ringmaster_crm_fail_count", map[string]string{"node": "n2", "resource": "f"}))
	assert.Equal(t, 3.0, g("ringmaster_crm_migration_threshold", map[string]string{"node": "n2", "resource": "f"}))
	assert.Equal(t, 0.0, g("ringmaster_crm_fail_count", map[string]string{"node": "n1", "resource": "a"}))
	assert.Equal(t, 5.0, g("ringmaster_crm_migration_threshold", map[string]string{"node": "n1", "resource": "a"}), "inherited from the group")

	assert.True(t, math.IsInf(g("ringmaster_crm_location_constraints", map[string]string{"constraint": "prefer-n1", "node": "n1", "resource": "g"}), 1))
	assert.Equal(t, 1.0, g("ringmaster_crm_node_attributes", map[string]string{"node": "n1", "name": "site", "value": "east"}))
	assert.Equal(t, 1.0, g("ringmaster_crm_node_attributes", map[string]string{"node": "n2", "name": "pingd", "value": "100"}))
	for _, m := range fams["ringmaster_crm_node_attributes"].Metric {
		for _, l := range m.Label {
			assert.False(t, l.GetName() == "name" && strings.HasPrefix(l.GetValue(), "fail-count-"), "fail counts are not node attributes")
		}
	}

	// Not the DC, no CIB yet: only the controller families.
	snap.CRM = &CRM{Status: controld.Status{Node: 2, DC: 1, Synced: true}}
	fams = gather(t, NewCollector(func() Snapshot { return snap }))
	assert.Equal(t, 0.0, g("ringmaster_crm_is_dc", nil))
	assert.Nil(t, fams["ringmaster_crm_resources"])
	assert.Nil(t, fams["ringmaster_crm_config_last_change"])
}

func TestActivityCountsEvents(t *testing.T) {
	a := NewActivity()
	for _, e := range []events.Event{
		{Kind: events.CRM, Message: "transition 3 started (configuration changed)", Fields: events.Fields{"actions": 2}},
		{Kind: events.CRM, Message: "transition 3 complete (aborted=false)", Fields: events.Fields{"actions": 0}},
		{Kind: events.CRM, Message: "configuration changed"},
		{Kind: events.Resource, Message: "start a", Fields: events.Fields{"operation": "start", "result": "ok", "ms": int64(250)}},
		{Kind: events.Resource, Message: "monitor a", Fields: events.Fields{"operation": "monitor", "result": "failed", "ms": int64(3)}},
		{Kind: events.Fencing, Message: "fencing succeeded", Fields: events.Fields{"target": "n3", "action": "reboot"}},
		{Kind: events.Fencing, Message: "node fenced", Fields: events.Fields{"target": "n3"}},
	} {
		a.Observe(e)
	}
	fams := gather(t, a)
	c := func(name string, labels map[string]string) float64 {
		t.Helper()
		return sample(t, fams, name, labels).Counter.GetValue()
	}
	assert.Equal(t, 1.0, c("ringmaster_crm_transitions_total", nil))
	assert.Equal(t, 3.0, c("ringmaster_events_total", map[string]string{"kind": "crm"}))
	assert.Equal(t, 0.0, c("ringmaster_events_total", map[string]string{"kind": "membership"}), "every kind is there from the start")
	assert.Equal(t, 1.0, c("ringmaster_crm_operations_total", map[string]string{"operation": "monitor", "result": "failed"}))
	assert.Equal(t, 1.0, c("ringmaster_fencing_total", map[string]string{"action": "reboot", "result": "succeeded"}))
	assert.Len(t, fams["ringmaster_fencing_total"].Metric, 1, "the controller's view of the same fencing is not counted")
	h := sample(t, fams, "ringmaster_crm_operation_duration_seconds", map[string]string{"operation": "start"}).Histogram
	assert.Equal(t, uint64(1), h.GetSampleCount())
	assert.InDelta(t, 0.25, h.GetSampleSum(), 1e-9)
}
