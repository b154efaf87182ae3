package ring

import (
	"bytes"
	"maps"
	"net/netip"
	"os"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"ringmaster/totem"
	"ringmaster/totem/crypto"
	"ringmaster/totem/transport"
	"ringmaster/totem/wire"
)

// filterRing is node 1 of a mem cluster {1, 2, 3} whose nodes send from
// 10.0.0.<id>:5405, with cipher c, not running.
func filterRing(t *testing.T, c string) *Ring {
	t.Helper()
	peers := map[totem.NodeID]netip.AddrPort{}
	for id := totem.NodeID(1); id <= 3; id++ {
		peers[id] = addrOf(id)
	}
	cfg := Config{Node: 1, ClusterName: "f", Transport: "mem", MemNet: transport.NewMemNetwork(0), Peers: peers,
		NetMTU: 1500, Cipher: c, Keys: [][]byte{bytes.Repeat([]byte{1}, 32)}, StateDir: t.TempDir(), Timings: testTimings()}
	r, err := newRing(cfg, newRecorder(), zaptest.NewLogger(t), newLoopProc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	// mem has no addresses; check them as udpu would.
	r.setSources(maps.Clone(peers))
	return r
}

func addrOf(id totem.NodeID) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(id)}), 5405)
}

func sealer(t *testing.T, c string, node totem.NodeID, epoch uint64) *crypto.Envelope {
	t.Helper()
	ci, _ := crypto.ParseCipher(c)
	e, err := crypto.New(ci, "f", uint32(node), epoch, [][]byte{bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestReceiveFilter: each check of the receive filter drops what it must,
// counts it under its reason, and lets the genuine datagram through once.
func TestReceiveFilter(t *testing.T) {
	for _, c := range []string{"aes256", "none"} {
		t.Run(c, func(t *testing.T) {
			r := filterRing(t, c)
			join := func(from totem.NodeID, maxSeq uint64) []byte {
				return wire.AppendJoin(nil, from, &wire.Join{Ring: totem.RingID{Rep: from, Seq: 4}, MaxSeq: maxSeq, Proc: []totem.NodeID{from}})
			}
			s2 := sealer(t, c, 2, uint64(time.Now().UnixNano()))
			good := s2.Seal(nil, 0, join(2, 8))
			try := func(d []byte, from netip.AddrPort) bool {
				_, ok := r.open(bytes.Clone(d), from)
				return ok
			}
			if !try(good, addrOf(2)) {
				t.Fatalf("genuine datagram rejected: %+v", r.Counters())
			}
			cases := []struct {
				name string
				d    []byte
				from netip.AddrPort
				want func(totem.Counters) uint64
			}{
				{"replayed", good, addrOf(2), func(c totem.Counters) uint64 { return c.Replayed }},
				{"unknown node", sealer(t, c, 9, 5).Seal(nil, 0, join(9, 8)), addrOf(2), func(c totem.Counters) uint64 { return c.UnknownNode }},
				{"bad address", s2.Seal(nil, 0, join(2, 8)), addrOf(3), func(c totem.Counters) uint64 { return c.BadAddress }},
				{"epoch far ahead", sealer(t, c, 3, uint64(time.Now().Add(2*maxEpochAhead).UnixNano())).Seal(nil, 0, join(3, 8)), addrOf(3), func(c totem.Counters) uint64 { return c.OutOfRange }},
				{"unicast for node 3", s2.Seal(nil, 3, join(2, 8)), addrOf(2), func(c totem.Counters) uint64 { return c.Replayed }},
				{"srp sender differs", s2.Seal(nil, 0, join(3, 8)), addrOf(2), func(c totem.Counters) uint64 { return c.Malformed }},
				{"truncated", good[:10], addrOf(2), func(c totem.Counters) uint64 { return c.AuthFailures }},
			}
			for _, tc := range cases {
				before := tc.want(r.Counters())
				if try(tc.d, tc.from) {
					t.Errorf("%s: accepted", tc.name)
				}
				if got := tc.want(r.Counters()); got != before+1 {
					t.Errorf("%s: counter %d, want %d (%+v)", tc.name, got, before+1, r.Counters())
				}
			}
			// With redundant links a copy inside the window is the
			// sender's own on another link: counted apart, not as a
			// replay; below the window it is still a replay.
			r.linkCopies = true
			copy1 := s2.Seal(nil, 0, join(2, 8))
			if !try(copy1, addrOf(2)) {
				t.Fatalf("genuine datagram rejected: %+v", r.Counters())
			}
			before := r.Counters()
			if try(copy1, addrOf(2)) {
				t.Fatal("link copy accepted")
			}
			after := r.Counters()
			if after.LinkDuplicates != before.LinkDuplicates+1 || after.Replayed != before.Replayed {
				t.Errorf("link copy: duplicates %d→%d, replays %d→%d", before.LinkDuplicates, after.LinkDuplicates, before.Replayed, after.Replayed)
			}
			r.linkCopies = false
			// A restarted node 2 (newer epoch) is accepted again.
			if !try(sealer(t, c, 2, uint64(time.Now().UnixNano())+1).Seal(nil, 0, join(2, 8)), addrOf(2)) {
				t.Fatalf("restarted sender rejected: %+v", r.Counters())
			}
		})
	}
}

// TestEpochPersisted: every New picks an epoch above the last one stored,
// even if the clock went back.
func TestEpochPersisted(t *testing.T) {
	dir := t.TempDir()
	future := uint64(time.Now().Add(time.Hour).UnixNano())
	if err := storeSeq(epochFile(dir, 4), future); err != nil {
		t.Fatal(err)
	}
	e1, err := newEpoch(dir, 4)
	if err != nil || e1 != future+1 {
		t.Fatalf("epoch %d, %v; want %d", e1, err, future+1)
	}
	e2, err := newEpoch(dir, 4)
	if err != nil || e2 != e1+1 {
		t.Fatalf("epoch %d, %v; want %d", e2, err, e1+1)
	}
}

// TestAbsurdPersistedSeqRefused: a ring seq above the protocol's limit in
// the state file (written by an older version after a forged join) is
// refused with a message naming the file, instead of running a node whose
// datagrams everybody drops.
func TestAbsurdPersistedSeqRefused(t *testing.T) {
	cfg := memConfigs(t, 1, "none")[0]
	if err := os.WriteFile(seqFile(cfg.StateDir, cfg.Node), []byte("18446744073709551615\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := newRing(cfg, newRecorder(), zaptest.NewLogger(t), newLoopProc); err == nil {
		t.Fatal("absurd ring seq accepted")
	}
}

// TestRejectLogBounded: a flood of rejected datagrams logs one line per
// reason per rejectLogEvery, with the count, and counts every one.
func TestRejectLogBounded(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	rj := rejects{log: zap.New(core)}
	for range 1000 {
		rj.add(rejectReplay, addrOf(2), crypto.ErrReplay)
		rj.add(rejectUnknownNode, addrOf(9), crypto.ErrAuth)
	}
	if rj.get(rejectReplay) != 1000 || rj.get(rejectUnknownNode) != 1000 {
		t.Fatalf("counted %d, %d", rj.get(rejectReplay), rj.get(rejectUnknownNode))
	}
	if n := logs.FilterMessage("datagrams rejected").Len(); n != 2 {
		t.Fatalf("%d log lines for 2000 rejections of 2 reasons, want 2", n)
	}
	// The next period's line carries the count of what was not logged.
	rj.last[rejectReplay] = time.Now().Add(-rejectLogEvery)
	rj.add(rejectReplay, addrOf(2), crypto.ErrReplay)
	e := logs.FilterField(zap.String("reason", "replay")).All()
	if len(e) != 2 || e[1].ContextMap()["count"] != uint64(1000) {
		t.Fatalf("log lines %+v", e)
	}
}
