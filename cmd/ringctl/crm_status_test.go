package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"ringmaster/crm/cib"
	"ringmaster/crm/wire"
	"ringmaster/stonithd"
)

// statusFixture is a 4-node cluster as the controller records it: n1 runs
// the fencing device, the group web {vip, app} and the promoted instance
// of ms; n2 runs db, whose recurring monitor failed (its state file was
// removed), the unpromoted instance of ms and pend, whose start is still in
// flight; multi runs on both; idle is disabled; n3 went away while
// expected up (unclean), n4 left cleanly.
const statusFixture = `<cib admin_epoch="0" epoch="7" num_updates="42" validate-with="pacemaker-3.7" cib-last-written="Thu Jan  1 10:00:00 2026" update-origin="n1" update-client="ringctl" update-user="root">
  <configuration>
    <crm_config>
      <cluster_property_set id="opts">
        <nvpair id="o1" name="stonith-enabled" value="true"/>
      </cluster_property_set>
    </crm_config>
    <nodes>
      <node id="1" uname="n1"/>
      <node id="2" uname="n2"/>
      <node id="3" uname="n3"/>
      <node id="4" uname="n4"/>
    </nodes>
    <resources>
      <primitive id="fence" class="stonith" type="fence_dummy"/>
      <group id="web">
        <primitive id="vip" class="builtin" type="vip">
          <instance_attributes id="vip-ia"><nvpair id="vip-ip" name="ip" value="192.0.2.10"/></instance_attributes>
        </primitive>
        <primitive id="app" class="ocf" provider="heartbeat" type="Dummy"/>
      </group>
      <primitive id="idle" class="builtin" type="dummy">
        <meta_attributes id="idle-meta"><nvpair id="idle-tr" name="target-role" value="Stopped"/></meta_attributes>
      </primitive>
      <primitive id="db" class="builtin" type="dummy"/>
      <primitive id="pend" class="builtin" type="dummy"/>
      <primitive id="multi" class="builtin" type="dummy"/>
      <clone id="ms">
        <meta_attributes id="ms-meta">
          <nvpair id="ms-p" name="promotable" value="true"/>
          <nvpair id="ms-pm" name="promoted-max" value="1"/>
        </meta_attributes>
        <primitive id="stateful" class="ocf" provider="pacemaker" type="Stateful"/>
      </clone>
    </resources>
    <constraints/>
  </configuration>
  <status>
    <node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
      <lrm id="1">
        <lrm_resources>
          <lrm_resource id="fence" class="stonith" type="fence_dummy">
            <lrm_rsc_op id="fence_last_0" operation_key="fence_start_0" operation="start" transition-key="1:1:0:x" transition-magic="0:0;1:1:0:x" call-id="2" rc-code="0" op-status="0" interval="0" last-rc-change="1767261600"/>
          </lrm_resource>
          <lrm_resource id="vip" class="builtin" type="vip">
            <lrm_rsc_op id="vip_last_0" operation_key="vip_start_0" operation="start" transition-key="2:1:0:x" transition-magic="0:0;2:1:0:x" call-id="3" rc-code="0" op-status="0" interval="0" last-rc-change="1767261600"/>
          </lrm_resource>
          <lrm_resource id="app" class="ocf" provider="heartbeat" type="Dummy">
            <lrm_rsc_op id="app_last_0" operation_key="app_start_0" operation="start" transition-key="3:1:0:x" transition-magic="0:0;3:1:0:x" call-id="4" rc-code="0" op-status="0" interval="0" last-rc-change="1767261600"/>
          </lrm_resource>
          <lrm_resource id="multi" class="builtin" type="dummy">
            <lrm_rsc_op id="multi_last_0" operation_key="multi_start_0" operation="start" transition-key="11:1:0:x" transition-magic="0:0;11:1:0:x" call-id="6" rc-code="0" op-status="0" interval="0" last-rc-change="1767261600"/>
          </lrm_resource>
          <lrm_resource id="db" class="builtin" type="dummy">
            <lrm_rsc_op id="db_last_0" operation_key="db_monitor_0" operation="monitor" transition-key="4:1:7:x" transition-magic="0:7;4:1:7:x" call-id="5" rc-code="7" op-status="0" interval="0" last-rc-change="1767261600"/>
          </lrm_resource>
          <lrm_resource id="stateful" class="ocf" provider="pacemaker" type="Stateful">
            <lrm_rsc_op id="stateful_last_0" operation_key="stateful_promote_0" operation="promote" transition-key="5:1:0:x" transition-magic="0:0;5:1:0:x" call-id="7" rc-code="0" op-status="0" interval="0" last-rc-change="1767261600"/>
          </lrm_resource>
        </lrm_resources>
      </lrm>
    </node_state>
    <node_state id="2" uname="n2" in_ccm="true" crmd="online" join="member" expected="member">
      <lrm id="2">
        <lrm_resources>
          <lrm_resource id="db" class="builtin" type="dummy">
            <lrm_rsc_op id="db_last_0" operation_key="db_start_0" operation="start" transition-key="6:1:0:x" transition-magic="0:0;6:1:0:x" call-id="8" rc-code="0" op-status="0" interval="0" last-rc-change="1767261600"/>
            <lrm_rsc_op id="db_last_failure_0" operation_key="db_monitor_10000" operation="monitor" transition-key="7:1:0:x" transition-magic="0:7;7:1:0:x" call-id="9" rc-code="7" op-status="0" interval="10000" last-rc-change="1767265200" exit-reason="state file gone" exec-time="3" queue-time="0"/>
          </lrm_resource>
          <lrm_resource id="pend" class="builtin" type="dummy">
            <lrm_rsc_op id="pend_last_0" operation_key="pend_start_0" operation="start" transition-key="9:1:0:x" transition-magic="-1:193;9:1:0:x" call-id="-1" rc-code="193" op-status="-1" interval="0" last-rc-change="1767261600"/>
          </lrm_resource>
          <lrm_resource id="multi" class="builtin" type="dummy">
            <lrm_rsc_op id="multi_last_0" operation_key="multi_start_0" operation="start" transition-key="10:1:0:x" transition-magic="0:0;10:1:0:x" call-id="11" rc-code="0" op-status="0" interval="0" last-rc-change="1767261600"/>
          </lrm_resource>
          <lrm_resource id="stateful" class="ocf" provider="pacemaker" type="Stateful">
            <lrm_rsc_op id="stateful_last_0" operation_key="stateful_start_0" operation="start" transition-key="8:1:0:x" transition-magic="0:0;8:1:0:x" call-id="10" rc-code="0" op-status="0" interval="0" last-rc-change="1767261600"/>
          </lrm_resource>
        </lrm_resources>
      </lrm>
    </node_state>
    <node_state id="3" uname="n3" in_ccm="false" crmd="offline" join="down" expected="member"/>
    <node_state id="4" uname="n4" in_ccm="false" crmd="offline" join="down" expected="down"/>
  </status>
</cib>`

var statusNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func statusCIB(t *testing.T) *cib.CIB {
	t.Helper()
	c, err := cib.Parse(strings.NewReader(statusFixture))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func statusHistory() []stonithd.Entry {
	return []stonithd.Entry{
		{ID: "n1-1-1", Target: "n3", Action: "reboot", Result: stonithd.ResultFailed, Time: statusNow.Add(-time.Hour),
			Origin: "n1", Executioner: "n1", Client: "controld", Reason: "no device can fence n3"},
		{ID: "n2-1-1", Target: "n4", Action: "reboot", Device: "fence", Result: stonithd.ResultSuccess, Time: statusNow.Add(-time.Minute),
			Origin: "n1", Executioner: "n2", Client: "controld"},
	}
}

func statusWire() wire.Status {
	return wire.Status{Node: 1, Name: "n1", Members: []uint32{1, 2}, Synced: true, Quorate: true,
		DC: "n1", DCID: 1, Version: wire.Version{Epoch: 7, NumUpdates: 42}, Enabled: true}
}

// statusJSON renders the JSON and decodes it generically, as a script
// would.
func statusJSON(t *testing.T, st wire.Status, c *cib.CIB, h []stonithd.Entry) map[string]any {
	t.Helper()
	var b bytes.Buffer
	if err := writeCRMStatus(&b, st, c, h, statusNow, true); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "\n"); n != 1 {
		t.Errorf("JSON spans %d lines, want one document on one line (crm status --watch --json)", n)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	return doc
}

func TestCRMStatusJSON(t *testing.T) {
	doc := statusJSON(t, statusWire(), statusCIB(t), statusHistory())
	for k, want := range map[string]any{"dc": "n1", "dc_id": 1.0, "quorate": true, "version": "0.7.42",
		"local_node": "n1", "synced": true, "enabled": true, "maintenance_mode": false} {
		if got := doc[k]; !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", k, got, want)
		}
	}
	if got := doc["members"]; !reflect.DeepEqual(got, []any{1.0, 2.0}) {
		t.Errorf("members = %#v", got)
	}

	nodes := map[string]map[string]any{}
	for _, n := range doc["nodes"].([]any) {
		m := n.(map[string]any)
		nodes[m["name"].(string)] = m
	}
	for name, want := range map[string][2]any{"n1": {1.0, "online"}, "n2": {2.0, "online"}, "n3": {3.0, "unclean"}, "n4": {4.0, "offline"}} {
		n := nodes[name]
		if n == nil || n["id"] != want[0] || n["state"] != want[1] {
			t.Errorf("node %s = %v, want id %v state %v", name, n, want[0], want[1])
		}
	}
	if len(nodes) != 4 {
		t.Errorf("nodes: %v", doc["nodes"])
	}

	// Every primitive, keyed by instance for clone instances.
	rscs := map[string]map[string]any{}
	var order []string
	for _, r := range doc["resources"].([]any) {
		m := r.(map[string]any)
		key := m["id"].(string)
		if inst, ok := m["instance"].(string); ok {
			key = inst
		}
		rscs[key] = m
		order = append(order, key)
	}
	if want := "fence vip app idle db pend multi stateful:0 stateful:1 stateful:2 stateful:3"; strings.Join(order, " ") != want {
		t.Errorf("resources in order %v, want %s", order, want)
	}
	type want struct {
		id, agent, state string
		node             any // string, or nil for JSON null
		group, clone     any // string, or nil for absent
		managed, failed  bool
	}
	for key, w := range map[string]want{
		"fence":      {"fence", "stonith:fence_dummy", "started", "n1", nil, nil, true, false},
		"vip":        {"vip", "builtin:vip", "started", "n1", "web", nil, true, false},
		"app":        {"app", "ocf:heartbeat:Dummy", "started", "n1", "web", nil, true, false},
		"idle":       {"idle", "builtin:dummy", "stopped", nil, nil, nil, true, false},
		"db":         {"db", "builtin:dummy", "failed", "n2", nil, nil, true, true},
		"pend":       {"pend", "builtin:dummy", "stopped", nil, nil, nil, true, false},
		"multi":      {"multi", "builtin:dummy", "started", "n1", nil, nil, true, false},
		"stateful:0": {"stateful", "ocf:pacemaker:Stateful", "promoted", "n1", nil, "ms", true, false},
		"stateful:1": {"stateful", "ocf:pacemaker:Stateful", "unpromoted", "n2", nil, "ms", true, false},
		"stateful:2": {"stateful", "ocf:pacemaker:Stateful", "stopped", nil, nil, "ms", true, false},
		"stateful:3": {"stateful", "ocf:pacemaker:Stateful", "stopped", nil, nil, "ms", true, false},
	} {
		r := rscs[key]
		if r == nil {
			t.Errorf("resource %s missing", key)
			continue
		}
		node, hasNode := r["node"]
		if r["id"] != w.id || r["agent"] != w.agent || r["state"] != w.state || !hasNode || node != w.node ||
			r["group"] != w.group || r["clone"] != w.clone || r["managed"] != w.managed || r["failed"] != w.failed {
			t.Errorf("resource %s = %v\nwant %+v", key, r, w)
		}
	}
	if got := rscs["multi"]["nodes"]; !reflect.DeepEqual(got, []any{"n1", "n2"}) {
		t.Errorf("multi nodes = %#v, want [n1 n2]", got)
	}
	if _, ok := rscs["vip"]["nodes"]; ok {
		t.Errorf("vip has a nodes list though it runs on one node: %v", rscs["vip"])
	}
	if rscs["pend"]["pending"] != "Starting" || rscs["stateful:0"]["role"] != "Promoted" {
		t.Errorf("pending/role: %v %v", rscs["pend"], rscs["stateful:0"])
	}

	fa := doc["failed_actions"].([]any)
	if len(fa) != 1 {
		t.Fatalf("failed_actions = %v, want db's monitor only (probes that found nothing are no failures)", fa)
	}
	f := fa[0].(map[string]any)
	for k, want := range map[string]any{"id": "db_monitor_10000", "resource": "db", "operation": "monitor", "interval_ms": 10000.0,
		"node": "n2", "rc": 7.0, "rc_text": "not running", "expected_rc": 0.0, "status": "complete",
		"exit_reason": "state file gone", "call_id": 9.0, "last_rc_change": "2026-01-01T11:00:00Z"} {
		if f[k] != want {
			t.Errorf("failed action %s = %#v, want %#v", k, f[k], want)
		}
	}

	fh := doc["fencing_history"].([]any)
	if len(fh) != 2 {
		t.Fatalf("fencing_history = %v", fh)
	}
	for i, want := range [][3]string{{"n3", "reboot", "failed"}, {"n4", "reboot", "success"}} {
		e := fh[i].(map[string]any)
		if e["target"] != want[0] || e["action"] != want[1] || e["result"] != want[2] {
			t.Errorf("fencing_history[%d] = %v, want %v", i, e, want)
		}
	}
}

func TestCRMStatusJSONWithoutDC(t *testing.T) {
	st := statusWire()
	st.DC, st.DCID, st.Quorate, st.Members = "", 0, false, nil
	doc := statusJSON(t, st, statusCIB(t), nil)
	if v, ok := doc["dc"]; !ok || v != nil {
		t.Errorf("dc = %#v (present %v), want null", v, ok)
	}
	if doc["quorate"] != false {
		t.Errorf("quorate = %#v", doc["quorate"])
	}
	for _, k := range []string{"members", "fencing_history"} {
		if l, ok := doc[k].([]any); !ok || len(l) != 0 {
			t.Errorf("%s = %#v, want []", k, doc[k])
		}
	}

	// No CIB (resource management disabled): empty lists, the controller's
	// version.
	st.Enabled = false
	doc = statusJSON(t, st, nil, nil)
	for _, k := range []string{"nodes", "resources", "failed_actions"} {
		if l, ok := doc[k].([]any); !ok || len(l) != 0 {
			t.Errorf("without a CIB, %s = %#v, want []", k, doc[k])
		}
	}
	if doc["version"] != "0.7.42" || doc["enabled"] != false {
		t.Errorf("without a CIB: version %v enabled %v", doc["version"], doc["enabled"])
	}
}

func TestCRMStatusText(t *testing.T) {
	var b bytes.Buffer
	if err := writeCRMStatus(&b, statusWire(), statusCIB(t), statusHistory(), statusNow, false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Cluster Summary:\n",
		"  * Current DC: n1 (1) - partition with quorum\n",
		"  * Last change:  Thu Jan  1 10:00:00 2026 by root via ringctl on n1, version 0.7.42\n",
		"  * 4 nodes configured\n",
		"  * 11 resource instances configured (1 DISABLED)\n",
		"\nNode List:\n  * Node n3: UNCLEAN (offline)\n  * Online: [ n1 n2 ]\n  * OFFLINE: [ n4 ]\n",
		"\nFull List of Resources:\n  * fence\t(stonith:fence_dummy):\t Started n1\n",
		"  * Resource Group: web:\n    * vip\t(builtin:vip):\t Started n1\n    * app\t(ocf:heartbeat:Dummy):\t Started n1\n",
		"  * idle\t(builtin:dummy):\t Stopped (disabled)\n",
		"  * db\t(builtin:dummy):\t FAILED n2\n",
		"  * pend\t(builtin:dummy):\t Starting n2\n",
		"  * multi\t(builtin:dummy):\t Started [ n1 n2 ]\n",
		"  * Clone Set: ms [stateful] (promotable):\n    * Promoted: [ n1 ]\n    * Unpromoted: [ n2 ]\n    * Stopped: [ n3 n4 ]\n",
		"\nFailed Resource Actions:\n  * db_monitor_10000 on n2 'not running' (7): call=9, status='complete', exitreason='state file gone', last-rc-change='2026-01-01 11:00:00Z', queued=0ms, exec=3ms\n",
		// Newest first.
		"\nFencing History:\n" +
			"  * reboot of n4 successful: delegate=n2, client=controld, origin=n1, completed='2026-01-01 11:59:00Z'\n" +
			"  * reboot of n3 failed (no device can fence n3): delegate=n1, client=controld, origin=n1, last-failed='2026-01-01 11:00:00Z'\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q\n--- output:\n%s", want, out)
		}
	}

	// The DC line's other forms; sections without content are left out.
	st := statusWire()
	st.Quorate = false
	b.Reset()
	_ = writeCRMStatus(&b, st, statusCIB(t), nil, statusNow, false)
	if !strings.Contains(b.String(), "  * Current DC: n1 (1) - partition WITHOUT quorum\n") || strings.Contains(b.String(), "Fencing History") {
		t.Errorf("without quorum:\n%s", b.String())
	}
	st.DC = ""
	b.Reset()
	_ = writeCRMStatus(&b, st, statusCIB(t), nil, statusNow, false)
	if !strings.Contains(b.String(), "  * Current DC: NONE\n") {
		t.Errorf("without DC:\n%s", b.String())
	}
}

func TestCRMStatusFailedOpClassification(t *testing.T) {
	op := func(task string, interval, rc, status, target int) *cib.LRMOp {
		return &cib.LRMOp{Attrs: cib.Attrs{{Name: "operation", Value: task}, {Name: "interval", Value: strconv.Itoa(interval)},
			{Name: "rc-code", Value: strconv.Itoa(rc)}, {Name: "op-status", Value: strconv.Itoa(status)}, {Name: "call-id", Value: "3"},
			{Name: "transition-key", Value: "1:1:" + strconv.Itoa(target) + ":x"}}}
	}
	for _, tc := range []struct {
		name   string
		op     *cib.LRMOp
		failed bool
	}{
		{"start ok", op("start", 0, 0, 0, 0), false},
		{"start error", op("start", 0, 1, 0, 0), true},
		{"start timed out", op("start", 0, 1, 2, 0), true},
		{"probe: not running", op("monitor", 0, 7, 0, 7), false},
		{"probe: found running", op("monitor", 0, 0, 0, 7), false},
		{"probe: found promoted", op("monitor", 0, 8, 0, 7), false},
		{"probe: not installed", op("monitor", 0, 5, 0, 7), true},
		{"monitor not running", op("monitor", 10000, 7, 0, 0), true},
		{"monitor degraded", op("monitor", 10000, 190, 0, 0), false},
		{"promoted monitor", op("monitor", 5000, 8, 0, 8), false},
		{"promoted monitor found unpromoted", op("monitor", 5000, 0, 0, 8), true},
		{"pending", op("start", 0, 193, -1, 0), false},
		{"cancelled", op("monitor", 10000, 1, 1, 0), false},
	} {
		if _, failed := parseFailedOp("r", "n1", tc.op); failed != tc.failed {
			t.Errorf("%s: failed = %v, want %v", tc.name, failed, tc.failed)
		}
	}
}
