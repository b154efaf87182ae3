package ring

import (
	"maps"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"

	"ringmaster/totem"
	"ringmaster/totem/crypto"
	"ringmaster/totem/srp"
	"ringmaster/totem/transport"
	"ringmaster/totem/wire"
)

// oneSlot is a Receiver that returns one slot (a datagram, or a coalesced
// burst of seg-byte datagrams) and then ErrClosed.
type oneSlot struct {
	data      []byte
	seg       int
	truncated bool
	from      netip.AddrPort
	done      bool
	// closed gets the slots of the call that returned ErrClosed: the
	// reader drops its batch then (Run is ending), the fuzzer reuses it.
	closed func([]transport.Msg)
}

func (o *oneSlot) Recv(msgs []transport.Msg) (int, error) {
	if o.done {
		o.closed(msgs)
		return 0, transport.ErrClosed
	}
	o.done = true
	m := &msgs[0]
	m.N = copy(m.Buf, o.data)
	m.Seg, m.Truncated, m.From = o.seg, o.truncated, o.from
	return 1, nil
}

// fuzzSeal seals srp datagrams of nodes 2 and 3 into one burst of equal
// segments (the last may be shorter), as UDP_GRO delivers them.
func fuzzSeal(env *crypto.Envelope, dgs ...[]byte) ([]byte, int) {
	var out []byte
	seg := 0
	for _, d := range dgs {
		s := env.Seal(nil, 0, d)
		seg = max(seg, len(s))
		out = append(out, s...)
	}
	return out, seg
}

// FuzzReceive drives the ring's whole receive path with arbitrary slots:
// burst splitting, the filter (header, nodelist, address, epoch), opening
// (cipher "none", so the fuzzer can reach everything behind it), the
// replay window, the sender check, and srp's decoders, range checks and
// state machine. Nothing may panic, and every datagram is either handed
// to the Processor or counted as rejected.
func FuzzReceive(f *testing.F) {
	r := fuzzRing(f)
	epoch := uint64(time.Now().UnixNano())
	s2, _ := crypto.New(crypto.CipherNone, "fuzz", 2, epoch, nil)
	ring := totem.RingID{Rep: 1, Seq: 8}
	join := wire.AppendJoin(nil, 2, &wire.Join{Ring: ring, MaxSeq: 8, Proc: []totem.NodeID{1, 2}})
	tok := wire.AppendToken(nil, 2, &wire.Token{Ring: ring, TokenSeq: 3, Seq: 2, Aru: 1, Rtr: []uint64{2}})
	mc := wire.AppendMcast(nil, 2, &wire.Mcast{Ring: ring, Seq: 1, Sender: 2, Payload: []byte("hello")})
	md := wire.AppendMergeDetect(nil, 2, &wire.MergeDetect{Ring: ring, MaxSeq: 8})
	for _, d := range [][]byte{join, tok, mc, md} {
		b, _ := fuzzSeal(s2, d)
		f.Add(b, uint16(0), false, uint8(2))
	}
	burst, seg := fuzzSeal(s2, join, join, join)
	f.Add(burst, uint16(seg), false, uint8(2))
	burst, seg = fuzzSeal(s2, mc, mc, md)
	f.Add(burst, uint16(seg), false, uint8(2))
	f.Add([]byte{}, uint16(0), true, uint8(9))
	f.Fuzz(func(t *testing.T, data []byte, seg uint16, truncated bool, from uint8) {
		if len(data) > rxSlot {
			return
		}
		resetFuzzRing(r)
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, from}), 5405)
		slot := &oneSlot{data: data, seg: int(seg), truncated: truncated, from: src, closed: func(m []transport.Msg) {
			r.free <- &rxBuf{msgs: m, pts: make([][]byte, 0, rxBatch)}
		}}
		if err := r.read(slot, nil); err != nil {
			t.Fatal(err)
		}
		accepted := uint64(0)
		for len(r.rx) > 0 {
			b := <-r.rx
			accepted += uint64(len(b.pts))
			r.step(b)
		}
		for r.proc.HasReady() {
			r.proc.Ready()
		}
		c := r.Counters()
		rejected := c.AuthFailures + c.Replayed + c.UnknownNode + c.BadAddress + r.rej.get(rejectOutOfRange) + r.rej.get(rejectMalformed)
		if accepted+rejected != c.DatagramsIn {
			t.Fatalf("%d datagrams in, %d accepted, %d rejected: %+v", c.DatagramsIn, accepted, rejected, c)
		}
	})
}

// fuzzRing is node 1 of {1, 2, 3} (addresses 10.0.0.<id>:5405), cipher
// "none", with the real Processor; not running.
func fuzzRing(f *testing.F) *Ring {
	peers := map[totem.NodeID]netip.AddrPort{}
	for id := totem.NodeID(1); id <= 3; id++ {
		peers[id] = addrOf(id)
	}
	cfg := Config{Node: 1, ClusterName: "fuzz", Transport: "mem", MemNet: transport.NewMemNetwork(0), Peers: peers,
		NetMTU: 1500, Cipher: "none", StateDir: f.TempDir(), Timings: testTimings()}
	r, err := New(cfg, newRecorder(), zap.NewNop())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { r.Close() })
	r.setSources(maps.Clone(peers))
	return r
}

// resetFuzzRing gives r a fresh envelope (replay windows), Processor and
// counters, so that every input starts from the same state.
func resetFuzzRing(r *Ring) {
	r.env, _ = crypto.New(crypto.CipherNone, "fuzz", 1, 1, nil)
	r.proc = srp.New(srp.Config{Node: 1, Timings: r.timings, InitialSeq: 4, MaxPayload: r.budget,
		Rand: rand.New(rand.NewPCG(1, 2))}, 0)
	r.rej = rejects{log: zap.NewNop()}
	r.dgIn.Store(0)
	r.pgMalformed.Store(0)
	r.refreshStatus()
}
