package stonithd

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"ringmaster/crm/cib"
)

const testCIB = `<cib admin_epoch="0" epoch="1" num_updates="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="opts">
        <nvpair id="o1" name="stonith-enabled" value="true"/>
        <nvpair id="o2" name="stonith-timeout" value="90s"/>
      </cluster_property_set>
    </crm_config>
    <nodes/>
    <resources>
      <primitive id="fence-pdu" class="stonith" type="fence_apc">
        <instance_attributes id="pdu-ia">
          <nvpair id="p1" name="ip" value="10.0.0.9"/>
          <nvpair id="p2" name="pcmk_host_map" value="n1:1;n2:2"/>
          <nvpair id="p3" name="pcmk_reboot_timeout" value="30s"/>
          <nvpair id="p4" name="pcmk_off_retries" value="0"/>
          <nvpair id="p5" name="priority" value="5"/>
        </instance_attributes>
      </primitive>
      <primitive id="fence-script" class="builtin" type="fence-script">
        <instance_attributes id="s-ia">
          <nvpair id="s1" name="command" value="/usr/local/bin/kill-node"/>
          <nvpair id="s2" name="pcmk_host_list" value="n1 n2 n3"/>
        </instance_attributes>
        <meta_attributes id="s-ma">
          <nvpair id="s3" name="target-role" value="Stopped"/>
        </meta_attributes>
      </primitive>
      <primitive id="web" class="ocf" provider="heartbeat" type="Dummy"/>
    </resources>
    <constraints/>
    <fencing-topology>
      <fencing-level id="fl1" target="n1" index="1" devices="fence-pdu"/>
      <fencing-level id="fl2" target-pattern="n[0-9]+" index="2" devices="fence-script,fence-pdu"/>
      <fencing-level id="fl3" target="n1" index="2" devices="fence-script"/>
    </fencing-topology>
  </configuration>
  <status/>
</cib>`

func TestDevicesFromCIB(t *testing.T) {
	c, err := cib.Parse(strings.NewReader(testCIB))
	if err != nil {
		t.Fatal(err)
	}
	asked := map[string]int{}
	ds, errs := DevicesFromCIB(c, func(agent string) *Metadata {
		asked[agent]++
		return nil
	}, DeviceOptions{})
	if len(errs) != 0 || len(ds) != 2 {
		t.Fatalf("devices %v, errors %v", ds, errs)
	}
	if !reflect.DeepEqual(asked, map[string]int{"fence_apc": 1, BuiltinScript: 1}) {
		t.Errorf("meta-data asked for %v", asked)
	}
	pdu, script := ds[0], ds[1]
	if pdu.Agent != "fence_apc" || pdu.Priority != 5 || pdu.HostCheck != HostCheckStatic || pdu.HostArgument != "port" {
		t.Errorf("pdu = %+v", pdu)
	}
	if pdu.Timeout("reboot") != 30*time.Second || pdu.Timeout("off") != 90*time.Second {
		t.Errorf("timeouts reboot %v off %v (want 30s and the cluster's 90s)", pdu.Timeout("reboot"), pdu.Timeout("off"))
	}
	if pdu.Retries("off") != 0 || pdu.Retries("reboot") != DefaultRetries {
		t.Errorf("retries off %d reboot %d", pdu.Retries("off"), pdu.Retries("reboot"))
	}
	if !reflect.DeepEqual(pdu.Params, map[string]string{"ip": "10.0.0.9"}) {
		t.Errorf("agent params %v: pcmk_* and priority must not reach the agent", pdu.Params)
	}
	if got := pdu.AgentArgs("reboot", "n2"); !reflect.DeepEqual(got, map[string]string{"action": "reboot", "ip": "10.0.0.9", "nodename": "n2", "port": "2"}) {
		t.Errorf("AgentArgs = %v", got)
	}
	if got := pdu.AgentArgs("list", ""); !reflect.DeepEqual(got, map[string]string{"action": "list", "ip": "10.0.0.9"}) {
		t.Errorf("AgentArgs(list) = %v", got)
	}
	if script.Agent != BuiltinScript || !script.Disabled || script.CanFence("n1") != CapNo {
		t.Errorf("script = %+v", script)
	}
	if pdu.CanFence("N1") != CapYes || pdu.CanFence("n3") != CapNo {
		t.Error("static host map check")
	}

	topo, err := ParseTopology(strings.NewReader(testCIB))
	if err != nil {
		t.Fatal(err)
	}
	if err := topo.Validate(ds); err != nil {
		t.Fatal(err)
	}
	lv := topo.For("n1", nil)
	if len(lv) != 2 || lv[0].ID != "fl1" || lv[1].ID != "fl2" {
		t.Errorf("levels for n1: %v (index 2: the first listed of fl2 and fl3 wins)", ids(lv))
	}
	if lv := topo.For("n7", nil); len(lv) != 1 || !reflect.DeepEqual(lv[0].Devices, []string{"fence-script", "fence-pdu"}) {
		t.Errorf("levels for n7: %v", ids(lv))
	}
	if lv := topo.For("web1", nil); len(lv) != 0 {
		t.Errorf("levels for web1: %v", ids(lv))
	}
}

func ids(ls []*Level) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.ID)
	}
	return out
}

func TestTopologyRejects(t *testing.T) {
	for _, in := range []string{
		`<fencing-topology><fencing-level id="a" index="0" target="n1" devices="d"/></fencing-topology>`,
		`<fencing-topology><fencing-level id="a" index="10" target="n1" devices="d"/></fencing-topology>`,
		`<fencing-topology><fencing-level id="a" index="1" devices="d"/></fencing-topology>`,
		`<fencing-topology><fencing-level id="a" index="1" target="n1" target-pattern="n.*" devices="d"/></fencing-topology>`,
		`<fencing-topology><fencing-level id="a" index="1" target="n1" devices=" , "/></fencing-topology>`,
		`<fencing-topology><fencing-level id="a" index="1" target-pattern="(" devices="d"/></fencing-topology>`,
		`<fencing-topology><fencing-level id="a" index="1" target="n1" devices="d"/><fencing-level id="b" index="1" target="n1" devices="e"/></fencing-topology>`,
		`<fencing-topology><bogus/></fencing-topology>`,
	} {
		if _, err := ParseTopology(strings.NewReader(in)); !errors.Is(err, ErrBadTopology) {
			t.Errorf("ParseTopology(%s) = %v, want ErrBadTopology", in, err)
		}
	}
	topo, err := ParseTopology(strings.NewReader(`<fencing-topology><fencing-level id="a" index="1" target="n1" devices="ghost"/></fencing-topology>`))
	if err != nil {
		t.Fatal(err)
	}
	if err := topo.Validate(nil); !errors.Is(err, ErrBadTopology) || !strings.Contains(err.Error(), "ghost") {
		t.Errorf("Validate = %v", err)
	}
}

func FuzzParseTopology(f *testing.F) {
	f.Add(testCIB)
	f.Add(`<fencing-topology><fencing-level id="a" index="1" target-attribute="rack" target-value="1" devices="d,e"/></fencing-topology>`)
	f.Fuzz(func(t *testing.T, s string) {
		topo, err := ParseTopology(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, l := range topo.Levels {
			if l.Index < 1 || l.Index > MaxLevelIndex || len(l.Devices) == 0 {
				t.Fatalf("accepted bad level %+v", l)
			}
			_ = topo.For(l.Target, map[string]string{l.TargetAttribute: l.TargetValue})
		}
	})
}

func TestFenceRequestValidation(t *testing.T) {
	f := New(Config{Node: "n1"})
	for _, req := range []Request{{Target: "", Action: ActionReboot}, {Target: " ", Action: ActionOff}, {Target: "n2", Action: "explode"}} {
		if _, err := f.Fence(req, t0); !errors.Is(err, ErrBadRequest) {
			t.Errorf("Fence(%+v) = %v, want ErrBadRequest", req, err)
		}
	}
	if r := f.Ready(); !r.Empty() {
		t.Errorf("bad requests produced %+v", r)
	}
}
