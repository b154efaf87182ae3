package crypto

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func testKey(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

func newEnv(t testing.TB, c Cipher, cluster string, keys ...[]byte) *Envelope {
	t.Helper()
	e, err := New(c, cluster, keys)
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
			e := newEnv(t, c, "alpha", testKey(1, 128))
			for _, n := range []int{0, 1, 100, 1400, 65000} {
				pt := bytes.Repeat([]byte{0xab}, n)
				d := e.Seal(nil, pt)
				if len(d) != n+e.Overhead() {
					t.Fatalf("len %d, want %d", len(d), n+e.Overhead())
				}
				got, err := e.Open(nil, d)
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("Open: %v (len %d)", err, len(got))
				}
				got, err = e.OpenInPlace(d)
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("OpenInPlace: %v", err)
				}
			}
			if e.AuthFailures() != 0 {
				t.Fatalf("AuthFailures = %d", e.AuthFailures())
			}
		})
	}
}

func TestNonceIsRandom(t *testing.T) {
	e := newEnv(t, CipherAES256, "alpha", testKey(1, 32))
	a, b := e.Seal(nil, []byte("x")), e.Seal(nil, []byte("x"))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are equal: nonce reused")
	}
}

// TestRejects: forged, truncated, other-cluster, other-key, other-cipher and
// other-version datagrams all fail with ErrAuth and are counted.
func TestRejects(t *testing.T) {
	for _, c := range []Cipher{CipherAES256, CipherChaCha20} {
		t.Run(c.String(), func(t *testing.T) {
			e := newEnv(t, c, "alpha", testKey(1, 64))
			good := e.Seal(nil, []byte("hello, ring"))
			flip := func(i int) []byte {
				d := bytes.Clone(good)
				d[i] ^= 1
				return d
			}
			other := func(c2 Cipher, cluster string, key []byte) []byte {
				return newEnv(t, c2, cluster, key).Seal(nil, []byte("hello, ring"))
			}
			cases := map[string][]byte{
				"empty":         {},
				"header only":   good[:headerSize],
				"truncated tag": good[:len(good)-1],
				"version":       flip(0),
				"cipher":        flip(1),
				"key id":        flip(2),
				"nonce":         flip(headerSize),
				"ciphertext":    flip(headerSize + nonceSize),
				"tag":           flip(len(good) - 1),
				"other cluster": other(c, "beta", testKey(1, 64)),
				"other key":     other(c, "alpha", testKey(2, 64)),
				"none cipher":   other(CipherNone, "alpha", nil),
			}
			want := uint64(0)
			for name, d := range cases {
				want++
				if _, err := e.Open(nil, d); !errors.Is(err, ErrAuth) {
					t.Errorf("%s: want ErrAuth, got %v", name, err)
				}
				if e.AuthFailures() != want {
					t.Errorf("%s: AuthFailures = %d, want %d", name, e.AuthFailures(), want)
				}
			}
		})
	}
}

func TestNoneTellsClustersApart(t *testing.T) {
	a := newEnv(t, CipherNone, "alpha")
	b := newEnv(t, CipherNone, "beta")
	if _, err := b.Open(nil, a.Seal(nil, []byte("x"))); !errors.Is(err, ErrAuth) {
		t.Fatalf("want ErrAuth, got %v", err)
	}
}

func TestKeySizes(t *testing.T) {
	for _, n := range []int{0, 15, 4097} {
		if _, err := New(CipherAES256, "a", [][]byte{testKey(1, n)}); !errors.Is(err, ErrKeySize) {
			t.Errorf("%d bytes: want ErrKeySize, got %v", n, err)
		}
	}
	for _, n := range []int{16, 4096} {
		if _, err := New(CipherChaCha20, "a", [][]byte{testKey(1, n)}); err != nil {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
	if _, err := New(CipherAES256, "a", nil); !errors.Is(err, ErrNoKey) {
		t.Errorf("no key: want ErrNoKey, got %v", err)
	}
	if _, err := New(Cipher(9), "a", nil); !errors.Is(err, ErrCipher) {
		t.Errorf("cipher 9: want ErrCipher, got %v", err)
	}
}

// TestRotation walks through a key rotation by reload: a node that already
// seals with the new key is understood by one that still seals with the
// old key, in both directions, until the old key is removed.
func TestRotation(t *testing.T) {
	oldK, newK := testKey(1, 32), testKey(2, 32)
	a := newEnv(t, CipherAES256, "c", oldK)
	b := newEnv(t, CipherAES256, "c", oldK)
	// Step 1: a learns the new key and seals with it; b still only has old.
	if err := a.SetKeys([][]byte{newK, oldK}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Open(nil, b.Seal(nil, []byte("old"))); err != nil {
		t.Fatalf("a opens old: %v", err)
	}
	if _, err := b.Open(nil, a.Seal(nil, []byte("new"))); !errors.Is(err, ErrAuth) {
		t.Fatalf("b must not open new yet: %v", err)
	}
	// Step 2: b learns it too.
	if err := b.SetKeys([][]byte{newK, oldK}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(nil, a.Seal(nil, []byte("new"))); err != nil {
		t.Fatalf("b opens new: %v", err)
	}
	// Step 3: the old key is retired.
	old := newEnv(t, CipherAES256, "c", oldK)
	if err := a.SetKeys([][]byte{newK}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Open(nil, old.Seal(nil, []byte("old"))); !errors.Is(err, ErrAuth) {
		t.Fatalf("retired key still opens: %v", err)
	}
	// A bad key list leaves the old keys in force.
	if err := a.SetKeys([][]byte{testKey(3, 3)}); !errors.Is(err, ErrKeySize) {
		t.Fatalf("want ErrKeySize, got %v", err)
	}
	if _, err := b.Open(nil, a.Seal(nil, []byte("still new"))); err != nil {
		t.Fatalf("keys changed by failed SetKeys: %v", err)
	}
}

func TestSealOpenAllocs(t *testing.T) {
	for _, c := range allCiphers {
		e := newEnv(t, c, "alpha", testKey(1, 32))
		pt := make([]byte, 1400)
		buf := make([]byte, 0, 2048)
		d := e.Seal(nil, pt)
		n := testing.AllocsPerRun(100, func() {
			buf = e.Seal(buf[:0], pt)
			if _, err := e.Open(pt[:0], d); err != nil {
				t.Fatal(err)
			}
		})
		if n != 0 {
			t.Errorf("%s: %v allocs per seal+open", c, n)
		}
	}
}

func FuzzOpen(f *testing.F) {
	envs := make([]*Envelope, 0, len(allCiphers))
	for _, c := range allCiphers {
		e := newEnv(f, c, "fuzz", testKey(7, 32))
		envs = append(envs, e)
		f.Add(e.Seal(nil, []byte("seed datagram")))
	}
	f.Add([]byte{})
	f.Add([]byte{Version})
	f.Fuzz(func(t *testing.T, d []byte) {
		for _, e := range envs {
			pt, err := e.Open(nil, d)
			if err == nil && e.Cipher() != CipherNone {
				// Only a datagram sealed by the key can open; the
				// fuzzer starts from such seeds, so this must hold.
				if !bytes.Equal(pt, []byte("seed datagram")) {
					t.Fatalf("forged datagram opened: %x", d)
				}
			}
			_, _ = e.OpenInPlace(bytes.Clone(d))
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
					buf = e.Seal(buf[:0], pt)
				}
			})
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, c := range allCiphers {
		for _, n := range []int{64, 1400} {
			b.Run(fmt.Sprintf("%s/%d", c, n), func(b *testing.B) {
				e := newEnv(b, c, "bench", testKey(1, 128))
				d := e.Seal(nil, make([]byte, n))
				out := make([]byte, 0, n)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := e.Open(out[:0], d); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
