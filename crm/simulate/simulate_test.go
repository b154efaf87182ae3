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

const summaryText = `Current cluster status:
  * Node List:
    * Online: [ n1 n2 ]

  * Full List of Resources:
    * a	(ocf:heartbeat:Dummy):	 Started n1

Transition Summary:
  * Fence (reboot) n3 'peer is no longer part of the cluster'
  * Move       a       ( n1 -> n2 )
  * Stop       b       (       n1 )  due to node availability (blocked)

Executing Cluster Transition:
  * Pseudo action:   g_stop_0
  * Resource action: a               stop on n1
  * Fencing n3 (reboot)
  * Resource action: a               start on n2
  * Cluster action:  do_shutdown on n1

Revised Cluster Status:
  * Node List:
    * Online: [ n1 n2 ]

  * Full List of Resources:
    * Resource Group: g:
      * a	(ocf:heartbeat:Dummy):	 Started n2
`

func TestParseSummaryAndCompare(t *testing.T) {
	s := ParseSummary(summaryText)
	for _, k := range []string{"fence n3 reboot", "move a n1 -> n2 blocked=false", "stop b n1 ->  blocked=true"} {
		if !s.Transition[k] {
			t.Errorf("missing transition item %q in %v", k, s.Transition)
		}
	}
	if got := strings.Join(s.Actions, "|"); got != "a start n2|a stop n1|cluster do_shutdown on n1|fence n3 reboot" {
		t.Errorf("actions: %s", got)
	}
	if s.Final["a"] != "Started n2" {
		t.Errorf("final: %v", s.Final)
	}
	// Padding, reasons and action order do not matter.
	other := strings.NewReplacer("( n1 -> n2 )", "(n1 -> n2)", "  due to node availability", "").Replace(summaryText)
	if level, why := Compare(ParseSummary(other), s); level != "" {
		t.Errorf("reformatted summary differs: %s %s", level, why)
	}
	moved := strings.Replace(summaryText, "Started n2\n", "Started n1\n", 1)
	if level, _ := Compare(ParseSummary(moved), s); level != LevelFinal {
		t.Errorf("changed placement: level %q, want final", level)
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
