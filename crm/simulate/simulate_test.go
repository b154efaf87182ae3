package simulate

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"ringmaster/crm/cib"
	"ringmaster/crm/graph"
)

func TestParseSpec(t *testing.T) {
	cases := []struct {
		in   string
		want opSpec
	}{
		{"web_monitor_10000@node1=7", opSpec{rsc: "web", task: "monitor", intervalMS: 10000, node: "node1", rc: 7}},
		{"my_db_start_0@n2=1", opSpec{rsc: "my_db", task: "start", node: "n2", rc: 1}},
		{"vm_migrate_to_0@n1=0", opSpec{rsc: "vm", task: "migrate_to", node: "n1"}},
	}
	for _, c := range cases {
		got, err := parseSpec(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		got.key = ""
		if got != c.want {
			t.Errorf("%s: got %+v want %+v", c.in, got, c.want)
		}
	}
	for _, bad := range []string{"web@node1=7", "web_monitor_x@node1=1", "web_monitor_0@node1", "", "_start_0@n=1"} {
		if _, err := parseSpec(bad); !errors.Is(err, ErrBadSpec) {
			t.Errorf("%q: want ErrBadSpec, got %v", bad, err)
		}
	}
}

func load(t *testing.T, path string) *cib.CIB {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := cib.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestOpFail: a failed action aborts the transition, its result and fail
// count are recorded, and the revised status shows the failure.
func TestOpFail(t *testing.T) {
	c := load(t, "../pengine/testdata/stickiness.xml")
	var before bytes.Buffer
	if _, err := c.WriteTo(&before); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := Run(&out, c, Options{Now: time.Unix(1700000000, 0), Simulate: true, OpFail: []string{"move_start_0@node2=1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res.TransitionErr, graph.ErrAborted) {
		t.Errorf("transition error %v, want ErrAborted", res.TransitionErr)
	}
	text := out.String()
	for _, want := range []string{
		"Pretending action ",
		"  * Injecting attribute fail-count-move#start_0=value++ into /node_state 'node2'",
		"    * move	(ocf:heartbeat:Dummy):	 FAILED node2",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	// The input CIB is left alone; the outcome carries the modified copy.
	var input, after bytes.Buffer
	if _, err := c.WriteTo(&input); err != nil {
		t.Fatal(err)
	}
	if _, err := res.CIB.WriteTo(&after); err != nil {
		t.Fatal(err)
	}
	if input.String() != before.String() {
		t.Error("Run modified its input CIB")
	}
	if before.String() == after.String() {
		t.Error("resulting CIB does not record the simulated actions")
	}
}

func TestUnknownNodeInjection(t *testing.T) {
	c := load(t, "../pengine/testdata/stickiness.xml")
	_, err := Run(&bytes.Buffer{}, c, Options{Now: time.Unix(1700000000, 0), Simulate: true, OpInject: []string{"nosuch_start_0@node1=0"}})
	if !errors.Is(err, ErrBadSpec) {
		t.Fatalf("want ErrBadSpec, got %v", err)
	}
}
