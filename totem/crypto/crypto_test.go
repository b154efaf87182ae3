package crypto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"
)

func testKey(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// newEnv returns node 1's envelope (what tests seal with).
func newEnv(t testing.TB, c Cipher, cluster string, keys ...[]byte) *Envelope {
	t.Helper()
	return newNode(t, 1, 1, c, cluster, keys...)
}

// peerOf returns node 2's envelope for e's cluster and cipher (what tests
// open with).
func peerOf(t testing.TB, e *Envelope, keys ...[]byte) *Envelope {
	t.Helper()
	return newNode(t, 2, 1, e.cipher, e.cluster, keys...)
}

func newNode(t testing.TB, node uint32, epoch uint64, c Cipher, cluster string, keys ...[]byte) *Envelope {
	t.Helper()
	e, err := New(c, cluster, node, epoch, keys)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var allCiphers = []Cipher{CipherNone, CipherAES256, CipherChaCha20}

func TestParseCipher(t *testing.T) {
	for _, c := range allCiphers {
		got, err := ParseCipher(c.String())
		if err != nil || got != c {
			t.Fatalf("ParseCipher(%q) = %v, %v", c, got, err)
		}
	}
	if _, err := ParseCipher("aes128"); !errors.Is(err, ErrCipher) {
		t.Fatalf("want ErrCipher, got %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, c := range allCiphers {
		t.Run(c.String(), func(t *testing.T) {
			k := testKey(1, 128)
			e := newEnv(t, c, "alpha", k)
			r := peerOf(t, e, k)
			for _, n := range []int{0, 1, 100, 1400, 65000} {
				pt := bytes.Repeat([]byte{0xab}, n)
				d := e.Seal(nil, 0, pt)
				if len(d) != n+e.Overhead() {
					t.Fatalf("len %d, want %d", len(d), n+e.Overhead())
				}
				got, h, err := r.Open(nil, d)
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("Open: %v (len %d)", err, len(got))
				}
				if h.Sender != 1 || h.Dest != 0 || h.Epoch != 1 || h.Counter == 0 {
					t.Fatalf("header %+v", h)
				}
				d = e.Seal(nil, 2, pt)
				got, h, err = r.OpenInPlace(d)
				if err != nil || !bytes.Equal(got, pt) || h.Dest != 2 {
					t.Fatalf("OpenInPlace: %v %+v", err, h)
				}
			}
			if r.AuthFailures() != 0 || r.Replays() != 0 {
				t.Fatalf("AuthFailures = %d, Replays = %d", r.AuthFailures(), r.Replays())
			}
		})
	}
}

// TestNonceIsCounter: the nonce is the header's counter, one more per
// datagram, so no two datagrams of one boot share a nonce under one key
// (there is no birthday bound, unlike random 96-bit nonces).
func TestNonceIsCounter(t *testing.T) {
	e := newEnv(t, CipherAES256, "alpha", testKey(1, 32))
	a, b := e.Seal(nil, 0, []byte("x")), e.Seal(nil, 0, []byte("x"))
	ha, _ := ParseHeader(a)
	hb, _ := ParseHeader(b)
	if ha.Counter != 1 || hb.Counter != 2 || bytes.Equal(a, b) {
		t.Fatalf("counters %d %d", ha.Counter, hb.Counter)
	}
	// Two boots (epochs) of one node, and two nodes in one epoch, seal
	// the same counter under different derived keys.
	k := testKey(1, 32)
	x := newNode(t, 1, 5, CipherAES256, "alpha", k).Seal(nil, 0, []byte("same"))
	y := newNode(t, 1, 6, CipherAES256, "alpha", k).Seal(nil, 0, []byte("same"))
	z := newNode(t, 3, 5, CipherAES256, "alpha", k).Seal(nil, 0, []byte("same"))
	if bytes.Equal(x[HeaderSize:], y[HeaderSize:]) || bytes.Equal(x[HeaderSize:], z[HeaderSize:]) {
		t.Fatal("same counter under different sender/epoch gives the same ciphertext: key not derived per sender and epoch")
	}
}

func TestNewEpoch(t *testing.T) {
	now := time.Unix(1000, 0)
	if got := NewEpoch(0, now); got != uint64(now.UnixNano()) {
		t.Fatalf("NewEpoch(0) = %d", got)
	}
	ahead := uint64(now.UnixNano()) + 7
	if got := NewEpoch(ahead, now); got != ahead+1 {
		t.Fatalf("clock behind the persisted epoch: got %d, want %d", got, ahead+1)
	}
	if got := NewEpoch(0, time.Unix(0, 0)); got == 0 {
		t.Fatal("epoch 0")
	}
}

// TestRejects: forged, truncated, other-cluster, other-key, other-cipher and
// other-version datagrams all fail with ErrAuth and are counted.
func TestRejects(t *testing.T) {
	for _, c := range []Cipher{CipherAES256, CipherChaCha20} {
		t.Run(c.String(), func(t *testing.T) {
			e := newEnv(t, c, "alpha", testKey(1, 64))
			r := peerOf(t, e, testKey(1, 64))
			good := e.Seal(nil, 0, []byte("hello, ring"))
			flip := func(i int) []byte {
				d := bytes.Clone(good)
				d[i] ^= 1
				return d
			}
			other := func(c2 Cipher, cluster string, key []byte) []byte {
				return newEnv(t, c2, cluster, key).Seal(nil, 0, []byte("hello, ring"))
			}
			cases := map[string][]byte{
				"empty":         {},
				"header only":   good[:HeaderSize],
				"truncated tag": good[:len(good)-1],
				"version":       flip(0),
				"v1":            append([]byte{1}, good[1:]...),
				"cipher":        flip(1),
				"key id":        flip(2),
				"sender":        flip(6),
				"epoch":         flip(14),
				"counter":       flip(22),
				"ciphertext":    flip(HeaderSize),
				"tag":           flip(len(good) - 1),
				"other cluster": other(c, "beta", testKey(1, 64)),
				"other key":     other(c, "alpha", testKey(2, 64)),
				"none cipher":   other(CipherNone, "alpha", nil),
			}
			cases["dest"] = bytes.Clone(good)
			cases["dest"][13] = 2 // a broadcast turned into a unicast for r
			want := uint64(0)
			for name, d := range cases {
				want++
				if _, _, err := r.Open(nil, d); !errors.Is(err, ErrAuth) {
					t.Errorf("%s: want ErrAuth, got %v", name, err)
				}
				if r.AuthFailures() != want {
					t.Errorf("%s: AuthFailures = %d, want %d", name, r.AuthFailures(), want)
				}
			}
			// The forgeries did not move the window: the genuine
			// datagram still opens, once.
			if _, _, err := r.Open(nil, good); err != nil {
				t.Fatalf("genuine datagram after forgeries: %v", err)
			}
		})
	}
}

func TestNoneTellsClustersApart(t *testing.T) {
	a := newEnv(t, CipherNone, "alpha")
	b := newNode(t, 2, 1, CipherNone, "beta")
	if _, _, err := b.Open(nil, a.Seal(nil, 0, []byte("x"))); !errors.Is(err, ErrAuth) {
		t.Fatalf("want ErrAuth, got %v", err)
	}
}

// TestReplay: every cipher, "none" included, accepts a datagram once, drops
// copies, datagrams below the window, older epochs, unicasts for other
// nodes and datagrams naming the receiver as sender; a restarted sender
// (newer epoch) starts afresh.
func TestReplay(t *testing.T) {
	for _, c := range allCiphers {
		t.Run(c.String(), func(t *testing.T) {
			k := testKey(1, 32)
			s := newNode(t, 1, 10, c, "alpha", k)
			r := newNode(t, 2, 1, c, "alpha", k)
			replay := func(name string, d []byte) {
				t.Helper()
				if _, _, err := r.Open(nil, d); !errors.Is(err, ErrReplay) {
					t.Fatalf("%s: want ErrReplay, got %v", name, err)
				}
			}
			open := func(name string, d []byte) {
				t.Helper()
				if _, _, err := r.Open(nil, d); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
			first := s.Seal(nil, 0, []byte("a"))
			var held [][]byte
			for i := 0; i < 100; i++ {
				held = append(held, s.Seal(nil, 0, []byte{byte(i)}))
			}
			// Reordered: later ones first, then earlier ones, once.
			for i := len(held) - 1; i >= 0; i-- {
				open(fmt.Sprint("reordered ", i), held[i])
			}
			open("first", first)
			for i := range held {
				replay(fmt.Sprint("copy ", i), held[i])
				if _, _, err := r.Open(nil, held[i]); !errors.Is(err, ErrDuplicate) {
					t.Fatalf("copy %d: want ErrDuplicate, got %v", i, err)
				}
			}
			replay("first again", first)
			// Far ahead: the old counters fall out of the window.
			old := s.Seal(nil, 0, []byte("old"))
			for range windowBits + 10 {
				s.Seal(nil, 0, nil)
			}
			open("far ahead", s.Seal(nil, 0, []byte("new")))
			replay("below the window", old)
			if _, _, err := r.Open(nil, old); errors.Is(err, ErrDuplicate) {
				t.Fatalf("below the window: not a duplicate, got %v", err)
			}
			// Unicasts for another node, and our own sender id.
			replay("for node 3", s.Seal(nil, 3, []byte("x")))
			open("for us", s.Seal(nil, 2, []byte("x")))
			replay("from ourselves", newNode(t, 2, 99, c, "alpha", k).Seal(nil, 0, []byte("x")))
			// The sender restarts with a newer epoch: its counters
			// start again at 1 and are accepted; the old boot's are
			// not, even unseen ones.
			unseen := s.Seal(nil, 0, []byte("unseen"))
			s2 := newNode(t, 1, 11, c, "alpha", k)
			open("restarted", s2.Seal(nil, 0, []byte("hello again")))
			replay("old epoch", unseen)
			if r.Replays() == 0 {
				t.Fatal("replays not counted")
			}
		})
	}
}

func TestRange(t *testing.T) {
	s := newNode(t, 1, 1, CipherNone, "alpha")
	r := newNode(t, 2, 1, CipherNone, "alpha")
	for name, f := range map[string]func([]byte){
		"counter 0":   func(d []byte) { binary.BigEndian.PutUint64(d[22:], 0) },
		"counter max": func(d []byte) { binary.BigEndian.PutUint64(d[22:], MaxCounter+1) },
		"epoch 0":     func(d []byte) { binary.BigEndian.PutUint64(d[14:], 0) },
		"sender 0":    func(d []byte) { binary.BigEndian.PutUint32(d[6:], 0) },
	} {
		d := s.Seal(nil, 0, []byte("x"))
		f(d)
		if _, _, err := r.Open(nil, d); !errors.Is(err, ErrRange) {
			t.Errorf("%s: want ErrRange, got %v", name, err)
		}
	}
	if r.OutOfRange() != 4 {
		t.Fatalf("OutOfRange = %d", r.OutOfRange())
	}
}

func TestWindow(t *testing.T) {
	var w replayWindow
	if !w.accept(5, 1) || w.accept(5, 1) {
		t.Fatal("first/duplicate")
	}
	if w.check(4, 100) != stale || w.check(6, 1) != newer {
		t.Fatal("epochs")
	}
	// Jumps of every size, including ones that wrap the bitmap several
	// times, keep exactly the last windowBits counters judged by bit.
	seenSet := map[uint64]bool{1: true}
	ctr := uint64(1)
	for _, step := range []uint64{1, 2, 63, 64, 65, 500, windowBits - 1, windowBits, windowBits + 1, 3 * windowBits, 7} {
		ctr += step
		if !w.accept(5, ctr) {
			t.Fatalf("accept %d", ctr)
		}
		seenSet[ctr] = true
		for c := uint64(1); c <= ctr; c++ {
			v := w.check(5, c)
			switch {
			case ctr-c >= windowBits:
				if v != tooOld {
					t.Fatalf("top %d: %d is %v, want too old", ctr, c, v)
				}
			case seenSet[c]:
				if v != seen {
					t.Fatalf("top %d: %d is %v, want seen", ctr, c, v)
				}
			default:
				if v != fresh {
					t.Fatalf("top %d: %d is %v, want fresh", ctr, c, v)
				}
			}
		}
	}
	// Filling in below the top works within the window.
	if !w.accept(5, ctr-1) || w.accept(5, ctr-1) {
		t.Fatal("fill below the top")
	}
	if !w.accept(6, 1) || w.top != 1 {
		t.Fatal("new epoch did not restart the window")
	}
}

func TestKeySizes(t *testing.T) {
	for _, n := range []int{0, 15, 4097} {
		if _, err := New(CipherAES256, "a", 1, 1, [][]byte{testKey(1, n)}); !errors.Is(err, ErrKeySize) {
			t.Errorf("%d bytes: want ErrKeySize, got %v", n, err)
		}
	}
	for _, n := range []int{16, 4096} {
		if _, err := New(CipherChaCha20, "a", 1, 1, [][]byte{testKey(1, n)}); err != nil {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
	if _, err := New(CipherAES256, "a", 1, 1, nil); !errors.Is(err, ErrNoKey) {
		t.Errorf("no key: want ErrNoKey, got %v", err)
	}
	if _, err := New(Cipher(9), "a", 1, 1, nil); !errors.Is(err, ErrCipher) {
		t.Errorf("cipher 9: want ErrCipher, got %v", err)
	}
	if _, err := New(CipherNone, "a", 0, 1, nil); !errors.Is(err, ErrNode) {
		t.Errorf("node 0: want ErrNode, got %v", err)
	}
}

// TestRotation walks through a key rotation by reload: a node that already
// seals with the new key is understood by one that still seals with the
// old key, in both directions, until the old key is removed.
func TestRotation(t *testing.T) {
	oldK, newK := testKey(1, 32), testKey(2, 32)
	a := newNode(t, 1, 1, CipherAES256, "c", oldK)
	b := newNode(t, 2, 1, CipherAES256, "c", oldK)
	// Step 1: a learns the new key and seals with it; b still only has old.
	if err := a.SetKeys([][]byte{newK, oldK}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Open(nil, b.Seal(nil, 0, []byte("old"))); err != nil {
		t.Fatalf("a opens old: %v", err)
	}
	if _, _, err := b.Open(nil, a.Seal(nil, 0, []byte("new"))); !errors.Is(err, ErrAuth) {
		t.Fatalf("b must not open new yet: %v", err)
	}
	// Step 2: b learns it too.
	if err := b.SetKeys([][]byte{newK, oldK}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Open(nil, a.Seal(nil, 0, []byte("new"))); err != nil {
		t.Fatalf("b opens new: %v", err)
	}
	// Datagrams sealed with either key stay in one window per sender.
	if _, _, err := a.Open(nil, b.Seal(nil, 0, []byte("new from b"))); err != nil {
		t.Fatalf("a opens new from b: %v", err)
	}
	// Step 3: the old key is retired.
	old := newNode(t, 3, 1, CipherAES256, "c", oldK)
	if err := a.SetKeys([][]byte{newK}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Open(nil, old.Seal(nil, 0, []byte("old"))); !errors.Is(err, ErrAuth) {
		t.Fatalf("retired key still opens: %v", err)
	}
	// A bad key list leaves the old keys in force.
	if err := a.SetKeys([][]byte{testKey(3, 3)}); !errors.Is(err, ErrKeySize) {
		t.Fatalf("want ErrKeySize, got %v", err)
	}
	if _, _, err := b.Open(nil, a.Seal(nil, 0, []byte("still new"))); err != nil {
		t.Fatalf("keys changed by failed SetKeys: %v", err)
	}
}

func TestSealOpenAllocs(t *testing.T) {
	for _, c := range allCiphers {
		e := newEnv(t, c, "alpha", testKey(1, 32))
		r := peerOf(t, e, testKey(1, 32))
		pt := make([]byte, 1400)
		buf := make([]byte, 0, 2048)
		out := make([]byte, 0, 2048)
		if _, _, err := r.Open(nil, e.Seal(nil, 0, pt)); err != nil { // derives the key
			t.Fatal(err)
		}
		n := testing.AllocsPerRun(100, func() {
			buf = e.Seal(buf[:0], 0, pt)
			if _, _, err := r.Open(out[:0], buf); err != nil {
				t.Fatal(err)
			}
		})
		if n != 0 {
			t.Errorf("%s: %v allocs per seal+open", c, n)
		}
	}
}

func FuzzOpen(f *testing.F) {
	for _, c := range allCiphers {
		e := newEnv(f, c, "fuzz", testKey(7, 32))
		f.Add(e.Seal(nil, 0, []byte("seed datagram")))
		f.Add(e.Seal(nil, 2, []byte("seed datagram")))
	}
	f.Add([]byte{})
	f.Add([]byte{Version})
	f.Fuzz(func(t *testing.T, d []byte) {
		for _, c := range allCiphers {
			// A fresh receiver (node 2) per input: no window state
			// carries over between inputs.
			r := newNode(t, 2, 1, c, "fuzz", testKey(7, 32))
			pt, _, err := r.Open(nil, d)
			if err == nil && r.Cipher() != CipherNone {
				// Only a datagram sealed by the key can open; the
				// fuzzer starts from such seeds, so this must hold.
				if !bytes.Equal(pt, []byte("seed datagram")) {
					t.Fatalf("forged datagram opened: %x", d)
				}
			}
			if _, _, err := r.OpenInPlace(bytes.Clone(d)); err == nil && r.Cipher() != CipherNone {
				t.Fatalf("datagram opened twice: %x", d)
			}
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	for _, c := range allCiphers {
		for _, n := range []int{64, 1400} {
			b.Run(fmt.Sprintf("%s/%d", c, n), func(b *testing.B) {
				e := newEnv(b, c, "bench", testKey(1, 128))
				pt := make([]byte, n)
				buf := make([]byte, 0, n+64)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					buf = e.Seal(buf[:0], 0, pt)
				}
			})
		}
	}
}

// BenchmarkOpen seals and opens (a datagram opens only once); subtract
// BenchmarkSeal.
func BenchmarkOpen(b *testing.B) {
	for _, c := range allCiphers {
		for _, n := range []int{64, 1400} {
			b.Run(fmt.Sprintf("%s/%d", c, n), func(b *testing.B) {
				e := newEnv(b, c, "bench", testKey(1, 128))
				r := peerOf(b, e, testKey(1, 128))
				pt := make([]byte, n)
				buf := make([]byte, 0, n+64)
				out := make([]byte, 0, n)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					buf = e.Seal(buf[:0], 0, pt)
					if _, _, err := r.Open(out[:0], buf); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
