package cib

import (
	"bytes"
	"strings"
	"testing"
)

func TestStatusCodecRoundTrip(t *testing.T) {
	st := &Status{}
	ns := st.EnsureNode("2", "node2")
	ns.SetMembership(true)
	ns.SetTransientAttr("fail-count-r#start_0", "value++")
	lr := ns.EnsureResource("r", "ocf", "Dummy", "heartbeat")
	lr.Record(OpResult{Task: "start", CallID: 3, LastChange: 7, Digest: "d"})
	var b bytes.Buffer
	if err := WriteStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	got, err := ParseStatus(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var b2 bytes.Buffer
	if err := WriteStatus(&b2, got); err != nil {
		t.Fatal(err)
	}
	if b.String() != b2.String() {
		t.Fatalf("round trip differs:\n%s\n%s", b.String(), b2.String())
	}
	if v, _ := got.Nodes[0].TransientAttr("fail-count-r#start_0"); v != "1" || got.Nodes[0].Resource("r").MaxCallID() != 3 {
		t.Fatalf("lost content: %s", b2.String())
	}
	if _, err := ParseStatus(strings.NewReader("<cib/>")); err == nil {
		t.Fatal("a <cib> parsed as a status")
	}
	if _, err := ParseStatus(strings.NewReader("<status><node_state/></status>")); err == nil {
		t.Fatal("a node_state without id parsed")
	}
}
