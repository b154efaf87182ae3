package pg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"ringmaster/totem"
)

type sent struct {
	svc, id uint16
	g       totem.Guarantee
	data    []byte
}

func randMsgs(r *rand.Rand, n int) []sent {
	out := make([]sent, n)
	for i := range out {
		var size int
		switch r.IntN(20) {
		case 0:
			size = r.IntN(totem.MaxMessageSize + 1)
		case 1, 2:
			size = 1000 + r.IntN(5000)
		default:
			size = r.IntN(200)
		}
		if i == 0 {
			size = totem.MaxMessageSize
		}
		data := make([]byte, size)
		var seed [32]byte
		binary.LittleEndian.PutUint64(seed[:], r.Uint64())
		rand.NewChaCha8(seed).Read(data)
		out[i] = sent{uint16(r.IntN(5)), uint16(i), totem.Guarantee(r.IntN(4) / 3), data}
	}
	return out
}

// drain takes every frame out of p, checking the budget.
func drain(t *testing.T, p *Packer) []Frame {
	t.Helper()
	p.Flush()
	var out []Frame
	for {
		f, ok := p.Peek()
		if !ok {
			return out
		}
		p.Pop()
		if len(f.Data) > p.Budget() {
			t.Fatalf("frame of %d bytes above budget %d", len(f.Data), p.Budget())
		}
		out = append(out, f)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, budget := range []int{MinBudget, 200, 1400, 9000} {
		t.Run(fmt.Sprint(budget), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(budget), 1))
			senders := []totem.NodeID{1, 2, 3}
			packers := map[totem.NodeID]*Packer{}
			want := map[totem.NodeID][]sent{}
			frames := map[totem.NodeID][]Frame{}
			for _, s := range senders {
				p, err := NewPacker(budget)
				if err != nil {
					t.Fatal(err)
				}
				packers[s] = p
				n := 60
				if budget == MinBudget {
					n = 8 // 1 MiB in 64-byte frames is slow enough
				}
				want[s] = randMsgs(r, n)
				for _, m := range want[s] {
					if err := p.Add(m.svc, m.id, m.g, m.data); err != nil {
						t.Fatal(err)
					}
				}
				frames[s] = drain(t, p)
			}
			// Interleave the senders' frames at random, keeping each
			// sender's order (as the total order does).
			re := NewReassembler()
			got := map[totem.NodeID][]totem.Message{}
			for {
				var live []totem.NodeID
				for _, s := range senders {
					if len(frames[s]) > 0 {
						live = append(live, s)
					}
				}
				if len(live) == 0 {
					break
				}
				s := live[r.IntN(len(live))]
				f := frames[s][0]
				frames[s] = frames[s][1:]
				if err := re.Frame(s, f.Guarantee, f.Data, func(m totem.Message) { got[m.Sender] = append(got[m.Sender], m) }); err != nil {
					t.Fatal(err)
				}
			}
			for _, s := range senders {
				if len(got[s]) != len(want[s]) {
					t.Fatalf("sender %d: got %d messages, want %d", s, len(got[s]), len(want[s]))
				}
				for i, w := range want[s] {
					g := got[s][i]
					if g.Service != w.svc || g.ID != w.id || g.Guarantee != w.g || !bytes.Equal(g.Payload, w.data) {
						t.Fatalf("sender %d message %d: got svc %d id %d %s len %d, want svc %d id %d %s len %d",
							s, i, g.Service, g.ID, g.Guarantee, len(g.Payload), w.svc, w.id, w.g, len(w.data))
					}
				}
			}
			if st := re.Stats(); st.Malformed+st.Orphans+st.Cut != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestPacking: small messages share frames.
func TestPacking(t *testing.T) {
	p, _ := NewPacker(1400)
	for i := range 100 {
		p.Add(1, uint16(i), totem.Agreed, make([]byte, 10))
	}
	frames := drain(t, p)
	if len(frames) != 2 {
		t.Fatalf("100 × 10 B in %d frames, want 2", len(frames))
	}
	// A guarantee change closes the frame.
	p.Add(1, 1, totem.Agreed, nil)
	p.Add(1, 2, totem.Safe, nil)
	if frames := drain(t, p); len(frames) != 2 || frames[1].Guarantee != totem.Safe {
		t.Fatalf("frames %+v", frames)
	}
}

func TestTooLarge(t *testing.T) {
	p, _ := NewPacker(1400)
	if err := p.Add(1, 1, totem.Agreed, make([]byte, totem.MaxMessageSize+1)); !errors.Is(err, totem.ErrTooLarge) {
		t.Fatalf("want ErrTooLarge, got %v", err)
	}
	if _, err := NewPacker(MinBudget - 1); !errors.Is(err, ErrBudget) {
		t.Fatalf("want ErrBudget, got %v", err)
	}
}

func fragmented(t *testing.T, size int) []Frame {
	p, _ := NewPacker(200)
	data := bytes.Repeat([]byte{7}, size)
	if err := p.Add(9, 9, totem.Agreed, data); err != nil {
		t.Fatal(err)
	}
	p.Add(9, 10, totem.Agreed, []byte("after"))
	return drain(t, p)
}

// TestCutAtConfChange: the partial message of a sender that left is
// dropped; a partial of a sender that stayed survives a leave-only change
// but not one that adds members; leftover fragments are orphans.
func TestCutAtConfChange(t *testing.T) {
	frames := fragmented(t, 1000)
	if len(frames) < 4 {
		t.Fatalf("only %d frames", len(frames))
	}
	cases := []struct {
		name string
		conf totem.ConfChange
		want []uint16 // message ids delivered
	}{
		{"sender left", totem.ConfChange{Kind: totem.Transitional, Members: []totem.NodeID{2, 3}}, []uint16{10}},
		{"others left", totem.ConfChange{Kind: totem.Transitional, Members: []totem.NodeID{1, 2}}, []uint16{9, 10}},
		{"regular, no join", totem.ConfChange{Kind: totem.Regular, Members: []totem.NodeID{1, 2}, Left: []totem.NodeID{3}}, []uint16{9, 10}},
		{"regular with join", totem.ConfChange{Kind: totem.Regular, Members: []totem.NodeID{1, 2, 4}, Joined: []totem.NodeID{4}}, []uint16{10}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			re := NewReassembler()
			var got []uint16
			deliver := func(m totem.Message) { got = append(got, m.ID) }
			for i, f := range frames {
				if i == 2 {
					re.ConfChange(c.conf)
				}
				if err := re.Frame(1, f.Guarantee, f.Data, deliver); err != nil {
					t.Fatal(err)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("delivered %v, want %v (stats %+v)", got, c.want, re.Stats())
			}
			if len(got) == 1 && (re.Stats().Cut != 1 || re.Stats().Orphans == 0) {
				t.Fatalf("stats %+v", re.Stats())
			}
			if re.Partial(1) {
				t.Fatal("partial left behind")
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	good := fragmented(t, 1000)
	re := NewReassembler()
	nop := func(totem.Message) {}
	for name, f := range map[string][]byte{
		"empty":      {},
		"version":    {2},
		"kind":       {Version, 9},
		"truncated":  {Version, kindWhole, 0, 1, 0, 1, 5, 'a'},
		"huge len":   {Version, kindWhole, 0, 1, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"first=full": {Version, kindFirst, 0, 1, 0, 1, 0, 0, 0, 0, 1, 1, 'a'},
	} {
		if err := re.Frame(1, totem.Agreed, f, nop); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: want ErrMalformed, got %v", name, err)
		}
	}
	// A last fragment that does not complete the message exactly.
	re = NewReassembler()
	re.Frame(1, totem.Agreed, good[0].Data, nop)
	bad := []byte{Version, kindLast, 0, 0, 0, 0, 1, 'x'}
	if err := re.Frame(1, totem.Agreed, bad, nop); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short last: %v", err)
	}
}

func FuzzReassembler(f *testing.F) {
	for _, fr := range fragmented(&testing.T{}, 700) {
		f.Add(fr.Data, uint8(1))
	}
	f.Add([]byte{Version, kindWhole, 0, 1, 0, 2, 3, 'a', 'b', 'c'}, uint8(2))
	f.Fuzz(func(t *testing.T, frame []byte, sender uint8) {
		re := NewReassembler()
		// Feed the frame twice (as a start and as a continuation).
		for range 2 {
			_ = re.Frame(totem.NodeID(sender%3), totem.Agreed, frame, func(m totem.Message) {
				if len(m.Payload) > totem.MaxMessageSize {
					t.Fatalf("payload of %d bytes", len(m.Payload))
				}
			})
		}
		re.ConfChange(totem.ConfChange{Kind: totem.Regular})
	})
}

func BenchmarkPack(b *testing.B) {
	for _, size := range []int{64, 1600, totem.MaxMessageSize} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			p, _ := NewPacker(1400)
			data := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				p.Add(1, 1, totem.Agreed, data)
				for p.Pending() > 0 {
					f, _ := p.Peek()
					p.Pop()
					p.Release(f.Data) // as the driver does once srp copied it
				}
			}
		})
	}
}

func BenchmarkUnpack(b *testing.B) {
	for _, size := range []int{64, 1600, totem.MaxMessageSize} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			p, _ := NewPacker(1400)
			data := make([]byte, size)
			// Enough messages to fill whole frames.
			n := max(1, 1400*20/(size+8))
			for range n {
				p.Add(1, 1, totem.Agreed, data)
			}
			p.Flush()
			var frames []Frame
			for p.Pending() > 0 {
				f, _ := p.Peek()
				p.Pop()
				frames = append(frames, f)
			}
			re := NewReassembler()
			msgs := 0
			deliver := func(totem.Message) { msgs++ }
			b.SetBytes(int64(size * n))
			b.ReportAllocs()
			for b.Loop() {
				for _, f := range frames {
					if err := re.Frame(1, f.Guarantee, f.Data, deliver); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
