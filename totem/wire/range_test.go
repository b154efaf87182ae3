package wire

import (
	"errors"
	"testing"

	"ringmaster/totem"
)

// TestRange: every sequence number and count from the wire is bounded
// (ErrRange), so the protocol never does arithmetic on 2^64 − 1: one forged
// join with MaxSeq = 2^64 − 1 used to overflow the next ring's seq on every
// node, and the overflowed value was persisted.
func TestRange(t *testing.T) {
	const huge = ^uint64(0)
	ring := totem.RingID{Rep: 1, Seq: 8}
	bad := totem.RingID{Rep: 1, Seq: MaxRingSeq + 1}
	tok := func(f func(*Token)) []byte { x := sampleToken(); f(x); return AppendToken(nil, 1, x) }
	cases := map[string][]byte{
		"join max_seq":        AppendJoin(nil, 2, &Join{Ring: ring, MaxSeq: huge, Proc: []totem.NodeID{2}}),
		"join ring":           AppendJoin(nil, 2, &Join{Ring: bad, MaxSeq: 8, Proc: []totem.NodeID{2}}),
		"merge-detect":        AppendMergeDetect(nil, 1, &MergeDetect{Ring: ring, MaxSeq: MaxRingSeq + 1}),
		"leave":               AppendLeave(nil, 1, &Leave{Ring: ring, MaxSeq: huge}),
		"hold-cancel":         AppendHoldCancel(nil, 1, &HoldCancel{Ring: bad}),
		"mcast seq":           AppendMcast(nil, 1, &Mcast{Ring: ring, Seq: huge, Sender: 1}),
		"mcast orig seq":      AppendMcast(nil, 1, &Mcast{Ring: ring, Seq: 1, Sender: 1, Flags: McastRecovery, OrigRing: ring, OrigSeq: MaxMsgSeq + 1}),
		"mcast orig ring":     AppendMcast(nil, 1, &Mcast{Ring: ring, Seq: 1, Sender: 1, Flags: McastRecovery, OrigRing: bad, OrigSeq: 1}),
		"token seq":           tok(func(x *Token) { x.Seq = huge }),
		"token aru and seq":   tok(func(x *Token) { x.Seq, x.Aru = MaxMsgSeq+1, MaxMsgSeq+1 }),
		"token token_seq":     tok(func(x *Token) { x.TokenSeq = huge }),
		"token ring":          tok(func(x *Token) { x.Ring = bad }),
		"token rtr":           tok(func(x *Token) { x.Rtr = []uint64{1, huge} }),
		"token rtr 0":         tok(func(x *Token) { x.Rtr = []uint64{0} }),
		"token fcc":           tok(func(x *Token) { x.FCC = MaxCount + 1 }),
		"token backlog":       tok(func(x *Token) { x.Backlog = 1<<32 - 1 }),
		"commit ring":         AppendCommit(nil, 1, &Commit{Ring: bad, Round: CommitFill, Members: []totem.NodeID{1}, Entries: make([]CommitEntry, 1)}),
		"commit old ring":     AppendCommit(nil, 1, &Commit{Ring: ring, Round: CommitFill, Members: []totem.NodeID{1}, Entries: []CommitEntry{{Filled: true, OldRing: bad}}}),
		"commit entry high":   AppendCommit(nil, 1, &Commit{Ring: ring, Round: CommitFill, Members: []totem.NodeID{1}, Entries: []CommitEntry{{Filled: true, HighSeq: huge}}}),
		"commit entry all":    AppendCommit(nil, 1, &Commit{Ring: ring, Round: CommitFill, Members: []totem.NodeID{1}, Entries: []CommitEntry{{Filled: true, Aru: huge, HighSeq: huge, SafeAru: huge}}}),
		"mcast seq at 2^48+1": AppendMcast(nil, 1, &Mcast{Ring: ring, Seq: MaxMsgSeq + 1, Sender: 1}),
	}
	for name, d := range cases {
		if err := decodeAny(d); !errors.Is(err, ErrRange) {
			t.Errorf("%s: want ErrRange, got %v", name, err)
		}
	}
	// The limits themselves are accepted.
	ok := map[string][]byte{
		"join": AppendJoin(nil, 2, &Join{Ring: totem.RingID{Rep: 1, Seq: MaxRingSeq}, MaxSeq: MaxRingSeq, Proc: []totem.NodeID{2}}),
		"token": tok(func(x *Token) {
			x.Seq, x.Aru, x.TokenSeq, x.FCC, x.Rtr = MaxMsgSeq, 1, MaxTokenSeq, MaxCount, []uint64{MaxMsgSeq}
		}),
		"mcast": AppendMcast(nil, 1, &Mcast{Ring: ring, Seq: MaxMsgSeq, Sender: 1}),
	}
	for name, d := range ok {
		if err := decodeAny(d); err != nil {
			t.Errorf("%s at the limit: %v", name, err)
		}
	}
}
