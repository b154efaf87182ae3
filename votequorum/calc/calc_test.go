package calc

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/totem"
	"ringmaster/votequorum/wire"
)

// TestCalcTable drives the calculator through a short script per case
// (see runScript for the commands) and checks what one node shows at the
// end: one row per option and per rule of votequorum(5).
func TestCalcTable(t *testing.T) {
	type want struct {
		quorate                 bool
		expected, total, quorum uint32
		flags                   string
		waiting                 bool
	}
	cases := []struct {
		name   string
		script string
		node   totem.NodeID
		want   want
	}{
		{"single node cluster is quorate alone", "config nodes=1\nstart 1", 1, want{true, 1, 1, 1, "Quorate", false}},
		{"3 of 3", "config nodes=3\nstart all", 1, want{true, 3, 3, 2, "Quorate", false}},
		{"2 of 3", "config nodes=3\nstart all\nkill 3", 1, want{true, 3, 2, 2, "Quorate", false}},
		{"1 of 3", "config nodes=3\nstart all\nkill 2,3", 1, want{false, 3, 1, 2, "", false}},
		{"2 of 4 is not a majority", "config nodes=4\nstart all\nkill 3,4", 1, want{false, 4, 2, 3, "", false}},
		{"expected_votes overrides the node list", "config nodes=3 expected=5\nstart all", 1, want{true, 5, 3, 3, "Quorate", false}},
		{"expected_votes below the votes present is raised", "config nodes=3 expected=2\nstart all", 1, want{true, 3, 3, 2, "Quorate", false}},
		{"quorum_votes weigh", "config nodes=3 votes=3:3\nstart all\nkill 1,2", 3, want{true, 5, 3, 3, "Quorate", false}},
		{"zero-vote node never counts", "config nodes=3 votes=3:0\nstart all\nkill 2", 1, want{false, 2, 1, 2, "", false}},
		{"two_node: survivor stays quorate", "config nodes=2 two_node\nstart all\nkill 2", 1, want{true, 2, 1, 1, "Quorate TwoNode WaitForAll", false}},
		{"two_node: fresh node waits for its peer", "config nodes=2 two_node\nstart 1", 1, want{false, 2, 1, 1, "TwoNode WaitForAll", true}},
		{"two_node without wait_for_all", "config nodes=2 two_node wait_for_all=false\nstart 1", 1, want{true, 2, 1, 1, "Quorate TwoNode", false}},
		{"wait_for_all: 2 of 3 at start waits", "config nodes=3 wait_for_all\nstart 1,2", 1, want{false, 3, 2, 2, "WaitForAll", true}},
		{"wait_for_all: lifted once all were seen", "config nodes=3 wait_for_all\nstart all\nkill 3", 1, want{true, 3, 2, 2, "Quorate WaitForAll", false}},
		{"wait_for_all: cancelled by the operator", "config nodes=3 wait_for_all\nstart 1,2\ncancel_wfa on 1", 2, want{true, 3, 2, 2, "Quorate WaitForAll", false}},
		{"wait_for_all: joining a quorate partition", "config nodes=3 wait_for_all\nstart all\nkill 3\nstart 3", 3, want{true, 3, 3, 2, "Quorate WaitForAll", false}},
		{"last_man_standing: before the window", "config nodes=5 lms lms_window=10s\nstart all\nkill 4,5\nwait 9s", 1, want{true, 5, 3, 3, "Quorate LastManStanding", false}},
		{"last_man_standing: after the window", "config nodes=5 lms lms_window=10s\nstart all\nkill 4,5\nwait 10s", 1, want{true, 3, 3, 2, "Quorate LastManStanding", false}},
		{"last_man_standing: not below 2 nodes", "config nodes=3 lms lms_window=1s\nstart all\nkill 3\nwait 1s\nkill 2\nwait 1s", 1, want{false, 2, 1, 2, "LastManStanding", false}},
		{"last_man_standing: off with a 2-vote node", "config nodes=3 votes=1:2 lms\nstart all\nkill 3\nwait 20s", 1, want{true, 4, 3, 3, "Quorate", false}},
		{"auto_tie_breaker lowest: 2|2", "config nodes=4 atb=lowest\nstart all\nsplit 1,3 | 2,4", 1, want{true, 4, 2, 3, "Quorate AutoTieBreaker", false}},
		{"auto_tie_breaker lowest: the other half", "config nodes=4 atb=lowest\nstart all\nsplit 1,3 | 2,4", 2, want{false, 4, 2, 3, "AutoTieBreaker", false}},
		{"auto_tie_breaker highest", "config nodes=4 atb=highest\nstart all\nsplit 1,3 | 2,4", 4, want{true, 4, 2, 3, "Quorate AutoTieBreaker", false}},
		{"auto_tie_breaker list", "config nodes=4 atb=2,1\nstart all\nsplit 1,3 | 2,4", 2, want{true, 4, 2, 3, "Quorate AutoTieBreaker", false}},
		{"auto_tie_breaker: not before the first quorum", "config nodes=4 atb=lowest\nstart 1,2", 1, want{false, 4, 2, 3, "AutoTieBreaker", false}},
		{"auto_tie_breaker off on odd votes without wait_for_all", "config nodes=3 atb=lowest\nstart all", 1, want{true, 3, 3, 2, "Quorate", false}},
		{"allow_downscale: clean leave lowers expected", "config nodes=5 expected=3 allow_downscale\nstart all\nstop 5", 1, want{true, 4, 4, 3, "Quorate AllowDownscale", false}},
		{"allow_downscale: not below configured expected", "config nodes=4 expected=3 allow_downscale\nstart all\nstop 4\nstop 3\nstop 2", 1, want{false, 3, 1, 2, "AllowDownscale", false}},
		{"allow_downscale: a crash is not a leave", "config nodes=5 expected=3 allow_downscale\nstart all\nkill 5", 1, want{true, 5, 4, 3, "Quorate AllowDownscale", false}},
		{"expected votes set at run time", "config nodes=5\nstart all\nkill 4,5\nkill 3\nexpected 2 on 1", 2, want{true, 2, 2, 2, "Quorate", false}},
		{"votes set at run time", "config nodes=3\nstart all\nvotes 3 3 on 1", 2, want{true, 5, 5, 3, "Quorate", false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := runSim(t, tc.script)
			require.Empty(t, s.failures)
			st := s.node(tc.node).calc.Status()
			got := want{st.Quorate, st.ExpectedVotes, st.TotalVotes, st.Quorum, strings.Join(st.Flags, " "), st.WaitForAllStatus}
			assert.Equal(t, tc.want, got, "transcript:\n%s", s.out.String())
		})
	}
}

func TestNormalize(t *testing.T) {
	nodes := func(votes ...uint32) []NodeVotes {
		var ns []NodeVotes
		for i, v := range votes {
			ns = append(ns, NodeVotes{ID: totem.NodeID(i + 1), Votes: v})
		}
		return ns
	}
	cases := []struct {
		name    string
		in      Options
		check   func(t *testing.T, o Options)
		warning string
		err     string
	}{
		{name: "defaults", in: Options{Nodes: nodes(1, 1, 1)}, check: func(t *testing.T, o Options) {
			assert.Equal(t, 10*time.Second, o.LastManStandingWindow)
			assert.False(t, o.ExpectedVotesTracking)
			assert.Equal(t, uint32(3), o.ConfiguredExpected())
		}},
		{name: "two_node with atb drops two_node", in: Options{Nodes: nodes(1, 1), TwoNode: true, AutoTieBreaker: ATBLowest}, warning: "two_node is disabled",
			check: func(t *testing.T, o Options) { assert.False(t, o.TwoNode) }},
		{name: "atb on odd votes without wfa is disabled", in: Options{Nodes: nodes(1, 1, 1), AutoTieBreaker: ATBLowest}, warning: "auto_tie_breaker is disabled",
			check: func(t *testing.T, o Options) { assert.Equal(t, ATBNone, o.AutoTieBreaker) }},
		{name: "atb on odd votes with wfa stays", in: Options{Nodes: nodes(1, 1, 1), AutoTieBreaker: ATBLowest, WaitForAll: true},
			check: func(t *testing.T, o Options) { assert.Equal(t, ATBLowest, o.AutoTieBreaker) }},
		{name: "atb+lms on odd votes without wfa is refused", in: Options{Nodes: nodes(1, 1, 1), AutoTieBreaker: ATBLowest, LastManStanding: true}, err: "need wait_for_all"},
		{name: "lms with a 2-vote node is disabled", in: Options{Nodes: nodes(2, 1, 1), LastManStanding: true}, warning: "last_man_standing is disabled",
			check: func(t *testing.T, o Options) { assert.False(t, o.LastManStanding) }},
		{name: "allow_downscale implies tracking", in: Options{Nodes: nodes(1, 1, 1), AllowDownscale: true},
			check: func(t *testing.T, o Options) { assert.True(t, o.ExpectedVotesTracking) }},
		{name: "no votes at all", in: Options{Nodes: nodes(0, 0)}, err: "expected votes is 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, warn, err := tc.in.Normalize()
			if tc.err != "" {
				require.ErrorIs(t, err, ErrConfig)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			if tc.warning != "" {
				require.Len(t, warn, 1)
				assert.Contains(t, warn[0], tc.warning)
			} else {
				assert.Empty(t, warn)
			}
			if tc.check != nil {
				tc.check(t, o)
			}
		})
	}
}

func TestParseTieBreaker(t *testing.T) {
	for in, want := range map[string]ATBMode{"": ATBLowest, "lowest": ATBLowest, "highest": ATBHighest, "3 1": ATBList} {
		m, _, err := ParseTieBreaker(in)
		require.NoError(t, err)
		assert.Equal(t, want, m, in)
	}
	_, list, _ := ParseTieBreaker(" 3  1 ")
	assert.Equal(t, []totem.NodeID{3, 1}, list)
	_, _, err := ParseTieBreaker("first")
	assert.ErrorIs(t, err, ErrConfig)
}

// The checks corosync makes before a runtime change goes out.
func TestCheckReconfigure(t *testing.T) {
	s := runSim(t, "config nodes=5\nstart all\nkill 5")
	c := s.node(1).calc
	assert.NoError(t, c.CheckExpected(5))
	assert.NoError(t, c.CheckExpected(7), "quorum 4 with 4 votes present")
	assert.ErrorIs(t, c.CheckExpected(8), ErrInvalid, "quorum 5 with 4 votes present")
	assert.ErrorIs(t, c.CheckExpected(0), ErrInvalid)
	assert.NoError(t, c.CheckVotes(2, 3))
	assert.NoError(t, c.CheckVotes(5, 1), "a listed node that is down")
	assert.ErrorIs(t, c.CheckVotes(9, 1), ErrNoSuchNode)
	assert.ErrorIs(t, c.CheckVotes(2, 256), ErrInvalid)
}

// A sync interrupted by a newer membership is restarted: state messages of
// the old ring are stale and ignored, reconfigurations during a sync wait
// for its end.
func TestSyncRestartAndDeferred(t *testing.T) {
	opt := Options{Nodes: []NodeVotes{{1, 1}, {2, 1}, {3, 1}}}
	c, err := New(opt, 1, Persisted{})
	require.NoError(t, err)
	r1 := totem.RingID{Rep: 1, Seq: 8}
	r2 := totem.RingID{Rep: 1, Seq: 12}
	info1 := c.SyncStart(r1, []totem.NodeID{1, 2, 3})
	c.NodeInfo(1, info1)
	info2 := c.SyncStart(r2, []totem.NodeID{2, 1})
	assert.Equal(t, r2, info2.Ring)
	c.NodeInfo(3, wire.NodeInfo{Ring: r1, Votes: 1, Expected: 3}) // stale ring
	c.NodeInfo(2, wire.NodeInfo{Ring: r2, Votes: 1, Expected: 3})
	c.Reconfigure(wire.Reconfigure{Param: wire.ParamVotes, Node: 2, Value: 2})
	assert.True(t, c.Syncing())
	c.NodeInfo(1, info2)
	c.SyncDone(time.Unix(0, 0))
	st := c.Status()
	assert.False(t, st.Syncing)
	assert.Equal(t, r2, st.Ring)
	assert.Equal(t, []wire.Member{{NodeID: 1, Votes: 1, Local: true}, {NodeID: 2, Votes: 2}}, st.Members)
	assert.Equal(t, uint32(3), st.TotalVotes)
	assert.True(t, st.Quorate)
	// Outside a sync a state message without the leaving flag is ignored.
	assert.False(t, c.NodeInfo(2, wire.NodeInfo{Ring: r2, Votes: 9}))
}
