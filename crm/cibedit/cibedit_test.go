package cibedit_test

import (
	"errors"
	"strings"
	"testing"

	"ringmaster/crm/cib"
	"ringmaster/crm/cibedit"
)

func versions(c *cib.CIB) string {
	return c.Attrs.Value("admin_epoch") + "." + c.Attrs.Value("epoch") + "." + c.Attrs.Value("num_updates")
}

func TestEditTable(t *testing.T) {
	base := running(t)
	type step func(*cib.CIB) (*cib.CIB, error)
	tests := []struct {
		name     string
		steps    []step
		err      error
		version  string   // admin_epoch.epoch.num_updates after the steps
		contains []string // in the XML after the steps
		absent   []string
	}{
		{name: "start sets target-role", steps: []step{func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Start(c, "db") }},
			version: "0.6.0", contains: []string{`name="target-role" value="Started"`}},
		{name: "stop group clears member target-role", steps: []step{
			func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Stop(c, "www") },
			func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Stop(c, "web") },
		}, version: "0.7.0", contains: []string{`id="web-meta_attributes-target-role"`}, absent: []string{`id="www-meta_attributes-target-role"`}},
		{name: "unknown resource", steps: []step{func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Start(c, "nope") }}, err: cibedit.ErrNoResource},
		{name: "bad role", steps: []step{func(c *cib.CIB) (*cib.CIB, error) { return cibedit.SetTargetRole(c, "db", "Up") }}, err: cibedit.ErrUsage},
		{name: "move to unknown node", steps: []step{func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Move(c, "db", "node9") }}, err: cibedit.ErrNoNode},
		{name: "move without node bans the current node", steps: []step{func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Move(c, "web", "") }},
			version: "0.6.0", contains: []string{`<rsc_location id="cli-ban-web-on-node1" rsc="web" role="Started" node="node1" score="-INFINITY"/>`}},
		{name: "move without node of a stopped resource", steps: []step{
			func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Refresh(c, "db", "") },
			func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Move(c, "db", "") },
		}, err: cibedit.ErrUsage},
		{name: "move replaces earlier move and the ban on the target", steps: []step{
			func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Ban(c, "db", "node3") },
			func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Move(c, "db", "node1") },
			func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Move(c, "db", "node3") },
		}, version: "0.8.0", contains: []string{`<rsc_location id="cli-prefer-db" rsc="db" role="Started" node="node3" score="INFINITY"/>`},
			absent: []string{`cli-ban-db-on-node3`, `node="node1" score="INFINITY"`}},
		{name: "clear on one node keeps other bans", steps: []step{
			func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Ban(c, "db", "node1") },
			func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Ban(c, "db", "node3") },
			func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Clear(c, "db", "node1") },
		}, version: "0.8.0", contains: []string{`id="cli-ban-db-on-node3"`}, absent: []string{`cli-ban-db-on-node1`}},
		{name: "clear with nothing to clear makes no version", steps: []step{func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Clear(c, "db", "") }}, version: "0.5.0"},
		{name: "cleanup without failures changes nothing", steps: []step{func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Cleanup(c, "db", "") }},
			version: "0.5.0", contains: []string{`lrm_resource id="db"`}},
		{name: "refresh deletes history on every node", steps: []step{func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Refresh(c, "db", "") }},
			version: "0.5.1", absent: []string{`lrm_resource id="db"`}},
		{name: "standby then online", steps: []step{
			func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Standby(c, "node2", true) },
			func(c *cib.CIB) (*cib.CIB, error) { return cibedit.Standby(c, "node2", false) },
		}, version: "0.7.0", contains: []string{`<nvpair id="nodes-2-standby" name="standby" value="off"/>`}},
		{name: "transient attribute is a status change", steps: []step{func(c *cib.CIB) (*cib.CIB, error) {
			return cibedit.SetAttr(c, cibedit.Attr{Name: cibedit.PromotionName("db"), Node: "node1", Lifetime: cibedit.Reboot}, "10")
		}}, version: "0.5.1", contains: []string{`<nvpair id="status-1-master-db" name="master-db" value="10"/>`}},
		{name: "increment", steps: []step{
			func(c *cib.CIB) (*cib.CIB, error) {
				return cibedit.SetAttr(c, cibedit.Attr{Name: "n", Node: "node1", Lifetime: cibedit.Reboot}, "5")
			},
			func(c *cib.CIB) (*cib.CIB, error) {
				return cibedit.SetAttr(c, cibedit.Attr{Name: "n", Node: "node1", Lifetime: cibedit.Reboot}, "value++")
			},
			func(c *cib.CIB) (*cib.CIB, error) {
				return cibedit.SetAttr(c, cibedit.Attr{Name: "n", Node: "node1", Lifetime: cibedit.Reboot}, "value+=10")
			},
		}, version: "0.5.3", contains: []string{`name="n" value="16"`}},
		{name: "utilization", steps: []step{func(c *cib.CIB) (*cib.CIB, error) {
			return cibedit.SetAttr(c, cibedit.Attr{Name: "cpu", Node: "node3", Utilization: true}, "4")
		}}, version: "0.6.0", contains: []string{`<utilization id="nodes-3-utilization">`}},
		{name: "defaults and delete", steps: []step{
			func(c *cib.CIB) (*cib.CIB, error) {
				return cibedit.SetAttr(c, cibedit.Attr{Name: "timeout", Section: "op_defaults"}, "30s")
			},
			func(c *cib.CIB) (*cib.CIB, error) {
				return cibedit.DelAttr(c, cibedit.Attr{Name: "resource-stickiness", Section: "rsc_defaults"})
			},
			func(c *cib.CIB) (*cib.CIB, error) {
				return cibedit.DelAttr(c, cibedit.Attr{Name: "resource-stickiness", Section: "rsc_defaults"})
			},
		}, version: "0.7.0", contains: []string{`<nvpair id="op-options-timeout" name="timeout" value="30s"/>`}, absent: []string{`resource-stickiness`}},
		{name: "bad section", steps: []step{func(c *cib.CIB) (*cib.CIB, error) {
			return cibedit.SetAttr(c, cibedit.Attr{Name: "x", Section: "tickets"}, "1")
		}}, err: cibedit.ErrUsage},
		{name: "replace with an older CIB bumps past the current", steps: []step{func(c *cib.CIB) (*cib.CIB, error) {
			return cibedit.Replace(c, cibedit.Empty())
		}}, version: "0.6.0", contains: []string{`lrm_resource id="db"`}, absent: []string{`<primitive`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			var err error
			for _, s := range tc.steps {
				if c, err = s(c); err != nil {
					break
				}
			}
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v := versions(c); v != tc.version {
				t.Errorf("version %s, want %s", v, tc.version)
			}
			x := xmlText(t, c)
			for _, s := range tc.contains {
				if !strings.Contains(x, s) {
					t.Errorf("missing %s in\n%s", s, x)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(x, s) {
					t.Errorf("unexpected %s", s)
				}
			}
		})
	}
}

func TestGetAttrAndRestore(t *testing.T) {
	base := running(t)
	a := cibedit.Attr{Name: "rack", Node: "node2"}
	if _, err := cibedit.GetAttr(base, a); !errors.Is(err, cibedit.ErrNoAttr) {
		t.Fatalf("GetAttr on unset: %v", err)
	}
	c, err := cibedit.SetAttr(base, a, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := cibedit.GetAttr(c, a); err != nil || v != "r1" {
		t.Fatalf("GetAttr = %q, %v", v, err)
	}
	if v, err := cibedit.GetAttr(base, cibedit.Attr{Name: "stonith-enabled"}); err != nil || v != "false" {
		t.Fatalf("cluster option = %q, %v", v, err)
	}
	// Restart keeps a target-role the resource had, and removes one it did
	// not have.
	p, err := cibedit.Restart(base, "db")
	if err != nil {
		t.Fatal(err)
	}
	back, err := p.Restore(p.Stop)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(xmlText(t, back), "target-role") {
		t.Error("Restore left a target-role")
	}
	started, _ := cibedit.SetTargetRole(base, "db", "Started")
	p, _ = cibedit.Restart(started, "db")
	back, _ = p.Restore(p.Stop)
	if !strings.Contains(xmlText(t, back), `name="target-role" value="Started"`) {
		t.Error("Restore lost the original target-role")
	}
	stopped, _ := cibedit.Stop(base, "db")
	if _, err := cibedit.Restart(stopped, "db"); !errors.Is(err, cibedit.ErrUsage) {
		t.Errorf("restart of a stopped resource: %v", err)
	}
}

func TestSanitizeID(t *testing.T) {
	for in, want := range map[string]string{"status-1-fail-count-db#monitor_10000": "status-1-fail-count-db.monitor_10000", "1abc": "_1abc", "a:b c": "a.b.c", "": "_"} {
		if got := cibedit.SanitizeID(in); got != want {
			t.Errorf("SanitizeID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEnsureNodes(t *testing.T) {
	c := cibedit.Empty()
	got, err := cibedit.EnsureNodes(c, []cibedit.NodeRef{{"1", "n1"}, {"2", "n2"}})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if _, err := got.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<node id="1" uname="n1" type="member"/>`, `<node id="2" uname="n2" type="member"/>`, `epoch="0"`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("EnsureNodes: %q missing from\n%s", want, b.String())
		}
	}
	again, err := cibedit.EnsureNodes(got, []cibedit.NodeRef{{"1", "n1"}, {"9", "n2"}})
	if err != nil || again != got {
		t.Errorf("EnsureNodes with nothing missing: want the same CIB back, got %v, %v", again == got, err)
	}
}
