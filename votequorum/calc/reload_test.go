package calc

import (
	"testing"

	"ringmaster/totem"
)

func listOf(ids ...totem.NodeID) Options {
	var o Options
	for _, id := range ids {
		o.Nodes = append(o.Nodes, NodeVotes{ID: id, Votes: 1})
	}
	return o
}

// TestSetOptionsNodeAddedAndRemoved: a node added to the list counts as
// an absent voter at once (expected votes follow), joins and counts; once
// it is stopped and removed from the list it no longer counts. Every
// member applies the same options at the same point, and the members
// always agree.
func TestSetOptionsNodeAddedAndRemoved(t *testing.T) {
	three, four := listOf(1, 2, 3), listOf(1, 2, 3, 4)
	s := newSim(t, three)
	s.nodes = append(s.nodes, &simNode{id: 4})
	s.start(1, 2, 3)
	s.settle()
	want := func(what string, expected, total uint32, quorate bool, ids ...totem.NodeID) {
		t.Helper()
		for _, id := range ids {
			st := s.node(id).calc.Status()
			if st.ExpectedVotes != expected || st.TotalVotes != total || st.Quorate != quorate {
				t.Fatalf("%s: node %d: expected %d total %d quorate %v, want %d %d %v", what, id, st.ExpectedVotes, st.TotalVotes, st.Quorate, expected, total, quorate)
			}
		}
		s.check()
		if len(s.failures) > 0 {
			t.Fatalf("%s: %v", what, s.failures)
		}
	}
	want("three nodes", 3, 3, true, 1, 2, 3)
	for _, id := range []totem.NodeID{1, 2, 3} {
		if err := s.node(id).calc.SetOptions(four); err != nil {
			t.Fatal(err)
		}
	}
	want("node 4 listed", 4, 3, true, 1, 2, 3)
	s.opt = four
	s.start(4)
	s.settle()
	want("node 4 joined", 4, 4, true, 1, 2, 3, 4)
	s.stop(4)
	s.settle()
	want("node 4 stopped", 4, 3, true, 1, 2, 3)
	for _, id := range []totem.NodeID{1, 2, 3} {
		if err := s.node(id).calc.SetOptions(three); err != nil {
			t.Fatal(err)
		}
	}
	want("node 4 removed", 3, 3, true, 1, 2, 3)
	// Losing one of three is still quorate; losing two is not: node 4
	// no longer counts.
	s.kill(3)
	s.settle()
	want("node 3 lost", 3, 2, true, 1, 2)
	s.kill(2)
	s.settle()
	want("node 2 lost", 3, 1, false, 1)
}

// TestSetOptionsFlags: two_node switched on by reload makes a two-node
// cluster survive the loss of one node; an option combination New
// refuses is refused and changes nothing.
func TestSetOptionsFlags(t *testing.T) {
	two := listOf(1, 2)
	s := newSim(t, two)
	s.start(1, 2)
	s.settle()
	tn := two
	tn.TwoNode = true
	for _, id := range []totem.NodeID{1, 2} {
		if err := s.node(id).calc.SetOptions(tn); err != nil {
			t.Fatal(err)
		}
	}
	s.allowSplit = "two_node"
	s.kill(2)
	s.settle()
	if st := s.node(1).calc.Status(); !st.Quorate {
		t.Fatalf("two_node by reload: %+v", st)
	}
	bad := listOf(1, 2, 3)
	bad.AutoTieBreaker, bad.LastManStanding = ATBLowest, true
	before := s.node(1).calc.Options()
	if err := s.node(1).calc.SetOptions(bad); err == nil {
		t.Fatal("auto_tie_breaker + last_man_standing on 3 votes without wait_for_all accepted")
	}
	if !s.node(1).calc.Options().TwoNode || len(s.node(1).calc.Options().Nodes) != len(before.Nodes) {
		t.Fatal("a refused SetOptions changed the options")
	}
}
