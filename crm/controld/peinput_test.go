package controld

import (
	"bytes"
	"io"
	"testing"
	"time"

	"ringmaster/crm/cib"
	"ringmaster/crm/pengine"
	"ringmaster/crm/simulate"
)

// A saved scheduler input, written and read back as `ringctl crm simulate
// -x` reads it, gives the DC's graph again.
func TestPEInputReplays(t *testing.T) {
	c := dcFor(t, bigCluster(t, 30, 4), 4)
	c.cfg.PEInputSeq = 7
	c.peSeq = 7
	rd := failNode(c, 2, testNow.Add(time.Minute))
	if len(rd.PEInputs) != 1 {
		t.Fatalf("%d pe-inputs", len(rd.PEInputs))
	}
	in := rd.PEInputs[0]
	if in.Seq != 7 || in.Name(5) != "pe-input-2.xml" {
		t.Fatalf("seq %d name %s", in.Seq, in.Name(5))
	}
	var b bytes.Buffer
	if _, err := in.CIB.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	x, err := cib.Parse(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	// simulate takes the time from execution-date.
	if _, err := simulate.Run(io.Discard, x, simulate.Options{Now: time.Unix(1, 0), Simulate: true}); err != nil {
		t.Fatal(err)
	}
	res, err := pengine.Schedule(x, testNow.Add(time.Minute), pengine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := c.dc.tr.g
	if len(res.Graph.Actions) != len(want.Actions) {
		t.Fatalf("replay has %d actions, the DC had %d", len(res.Graph.Actions), len(want.Actions))
	}
	for i, a := range res.Graph.Actions {
		if w := want.Actions[i]; a.Key != w.Key || a.Node != w.Node {
			t.Fatalf("action %d: replay %s on %s, DC %s on %s", i, a.Key, a.Node, w.Key, w.Node)
		}
	}
}

// BenchmarkSchedulerOnly1000x32 is the scheduler's share of
// BenchmarkNodeFailure1000x32: the difference is the controller's.
func BenchmarkSchedulerOnly1000x32(b *testing.B) {
	c := dcFor(b, bigCluster(b, 1000, 32), 32)
	failNode(c, 5, testNow.Add(time.Second))
	in := c.SchedulerInput(testNow.Add(time.Second))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := pengine.Schedule(in, testNow.Add(time.Second), pengine.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
