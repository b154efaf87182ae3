// Package crypto is the datagram envelope of the Totem ring: every datagram
// on the wire is authenticated and encrypted with an AEAD, so a node never
// parses a byte that a holder of the cluster key did not write.
//
// # Wire format (version 1)
//
//	0      1        2          6            6+N           end
//	+------+--------+----------+------------+-------------+
//	| ver  | cipher | key id   | nonce (N)  | ciphertext‖tag |
//	+------+--------+----------+------------+-------------+
//
// ver is Version; cipher is the Cipher number (append-only, part of the
// protocol); key id is 4 bytes derived from the key (so a receiver holding
// several keys during a rotation picks the right one without trial
// decryption); the nonce is 12 random bytes (N = 0 for CipherNone).
//
// The additional data of the AEAD is the clear header without the nonce
// (version, cipher, key id) followed by the cluster name: a datagram of
// another cluster that happens to share the keyfile fails authentication
// instead of being parsed. The nonce itself is authenticated by the AEAD.
// With CipherNone there is no AEAD: the key id field carries a hash of the
// cluster name, so other clusters are still told apart (but anyone can
// forge; "none" is accepted only when configured explicitly).
//
// # Keys
//
// The AEAD key is HKDF-SHA256(keyfile, salt = "ringmaster totem", info =
// "ringmaster totem v1 <cipher> <cluster name>"), so one keyfile yields
// unrelated keys for different ciphers and clusters. Keyfiles are 16 to 4096
// bytes (corosync's authkey is 128 bytes of random data). Several keys may be
// installed: the first seals, all open; SetKeys swaps them atomically, so a
// key is rotated by a reload without restarting the ring: install [new, old]
// everywhere, then [new].
//
// # Nonces
//
// Nonces are random (crypto/rand), as asked by the design. With 96-bit
// random nonces the chance of a repeat stays below 2^-32 for the first 2^32
// datagrams sealed under one key by the whole cluster (NIST SP 800-38D
// §8.3); at 50,000 datagrams/s that is about a day of saturated traffic,
// so long-running busy clusters should rotate keys (SetKeys) periodically.
// TODO(crypto): derive a per-sender subkey with a salt in the header to lift
// this bound, if real deployments get near it.
package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"
)

// Version is the envelope format version, the first byte of every datagram.
const Version = 1

// Cipher selects the AEAD. Numbers are part of the wire protocol: append
// only.
type Cipher uint8

// Ciphers.
const (
	// CipherNone frames datagrams without encryption or authentication.
	CipherNone Cipher = 0
	// CipherAES256 is AES-256-GCM ("aes256").
	CipherAES256 Cipher = 1
	// CipherChaCha20 is ChaCha20-Poly1305 ("chacha20").
	CipherChaCha20 Cipher = 2
)

// String returns the configuration name of the cipher.
func (c Cipher) String() string {
	switch c {
	case CipherNone:
		return "none"
	case CipherAES256:
		return "aes256"
	case CipherChaCha20:
		return "chacha20"
	}
	return fmt.Sprintf("cipher(%d)", uint8(c))
}

// ParseCipher maps a crypto_cipher value of corosync.toml to a Cipher.
func ParseCipher(s string) (Cipher, error) {
	switch s {
	case "none":
		return CipherNone, nil
	case "aes256":
		return CipherAES256, nil
	case "chacha20":
		return CipherChaCha20, nil
	}
	return 0, fmt.Errorf("%w: %q (want aes256, chacha20 or none)", ErrCipher, s)
}

// Keyfile size limits (bytes).
const (
	MinKeySize = 16
	MaxKeySize = 4096
)

const (
	headerSize = 6 // version, cipher, key id
	nonceSize  = 12
	tagSize    = 16
)

// Errors. Open wraps ErrAuth for every rejected datagram.
var (
	ErrCipher  = errors.New("unknown cipher")
	ErrKeySize = errors.New("keyfile size out of range")
	ErrNoKey   = errors.New("no key configured")
	// ErrAuth: the datagram is truncated, of another version, cipher,
	// cluster or key, or forged. It must be dropped without parsing.
	ErrAuth = errors.New("datagram failed authentication")
)

// key is one derived key.
type key struct {
	id   [4]byte
	aead cipher.AEAD // nil for CipherNone
	ad   []byte      // header (version, cipher, id) ‖ cluster name
}

type keySet struct {
	keys []key // keys[0] seals
}

// Envelope seals and opens datagrams. Seal, Open and SetKeys are safe for
// concurrent use: keys are swapped atomically and sealing/opening keeps no
// state besides the failure counter.
type Envelope struct {
	cipher  Cipher
	cluster string
	keys    atomic.Pointer[keySet]
	fails   atomic.Uint64
}

// New returns an Envelope for a cluster. keys are raw keyfile contents, the
// first one seals; with CipherNone keys are ignored and may be empty.
func New(c Cipher, clusterName string, keys [][]byte) (*Envelope, error) {
	if c > CipherChaCha20 {
		return nil, fmt.Errorf("%w: %d", ErrCipher, c)
	}
	e := &Envelope{cipher: c, cluster: clusterName}
	if err := e.SetKeys(keys); err != nil {
		return nil, err
	}
	return e, nil
}

// SetKeys replaces the key list (first seals, all open). On error the old
// keys stay in force.
func (e *Envelope) SetKeys(keys [][]byte) error {
	ks := &keySet{}
	if e.cipher == CipherNone {
		k := key{}
		sum := sha256.Sum256([]byte("ringmaster cluster " + e.cluster))
		copy(k.id[:], sum[:4])
		k.ad = e.additional(k.id)
		ks.keys = append(ks.keys, k)
		e.keys.Store(ks)
		return nil
	}
	if len(keys) == 0 {
		return ErrNoKey
	}
	for i, raw := range keys {
		k, err := e.derive(raw)
		if err != nil {
			return fmt.Errorf("key %d: %w", i, err)
		}
		ks.keys = append(ks.keys, k)
	}
	e.keys.Store(ks)
	return nil
}

func (e *Envelope) additional(id [4]byte) []byte {
	ad := make([]byte, 0, headerSize+len(e.cluster))
	ad = append(ad, Version, byte(e.cipher))
	ad = append(ad, id[:]...)
	return append(ad, e.cluster...)
}

func (e *Envelope) derive(raw []byte) (key, error) {
	if len(raw) < MinKeySize || len(raw) > MaxKeySize {
		return key{}, fmt.Errorf("%w: %d bytes (want %d..%d)", ErrKeySize, len(raw), MinKeySize, MaxKeySize)
	}
	info := "ringmaster totem v1 " + e.cipher.String() + " " + e.cluster
	okm, err := hkdf.Key(sha256.New, raw, []byte("ringmaster totem"), info, 32+4)
	if err != nil {
		return key{}, fmt.Errorf("hkdf: %w", err)
	}
	var k key
	copy(k.id[:], okm[32:])
	switch e.cipher {
	case CipherAES256:
		b, err := aes.NewCipher(okm[:32])
		if err != nil {
			return key{}, fmt.Errorf("aes: %w", err)
		}
		if k.aead, err = cipher.NewGCM(b); err != nil {
			return key{}, fmt.Errorf("gcm: %w", err)
		}
	case CipherChaCha20:
		if k.aead, err = chacha20poly1305.New(okm[:32]); err != nil {
			return key{}, fmt.Errorf("chacha20poly1305: %w", err)
		}
	}
	k.ad = e.additional(k.id)
	return k, nil
}

// Cipher returns the configured cipher.
func (e *Envelope) Cipher() Cipher { return e.cipher }

// Overhead returns how many bytes Seal adds to a plaintext: 6 for
// CipherNone, 6 + 12 + 16 = 34 for the AEADs. Callers subtract it from the
// MTU to size plaintexts.
func (e *Envelope) Overhead() int { return overhead(e.cipher) }

func overhead(c Cipher) int {
	if c == CipherNone {
		return headerSize
	}
	return headerSize + nonceSize + tagSize
}

// Seal appends the sealed datagram of plaintext to dst and returns it.
// plaintext and dst must not overlap. It allocates nothing when dst has
// room for len(plaintext)+Overhead() bytes.
func (e *Envelope) Seal(dst, plaintext []byte) []byte {
	k := &e.keys.Load().keys[0]
	dst = append(dst, Version, byte(e.cipher))
	dst = append(dst, k.id[:]...)
	if k.aead == nil {
		return append(dst, plaintext...)
	}
	n := len(dst)
	dst = append(dst, make([]byte, nonceSize)...) // no allocation: constant-size make is elided
	nonce := dst[n : n+nonceSize]
	if _, err := rand.Read(nonce); err != nil {
		// crypto/rand never fails on supported platforms (Go ≥ 1.24
		// crashes the program instead); a repeated nonce would break GCM.
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return k.aead.Seal(dst, nonce, plaintext, k.ad)
}

// Open authenticates and decrypts datagram, appending the plaintext to dst
// (which must not overlap datagram; see OpenInPlace). Every failure wraps
// ErrAuth and is counted in AuthFailures.
func (e *Envelope) Open(dst, datagram []byte) ([]byte, error) {
	k, body, err := e.check(datagram)
	if err != nil {
		e.fails.Add(1)
		return nil, err
	}
	if k.aead == nil {
		return append(dst, body...), nil
	}
	out, err := k.aead.Open(dst, body[:nonceSize], body[nonceSize:], k.ad)
	if err != nil {
		e.fails.Add(1)
		return nil, fmt.Errorf("%w: %v", ErrAuth, err)
	}
	return out, nil
}

// OpenInPlace authenticates and decrypts datagram in place and returns the
// plaintext, a sub-slice of datagram. It allocates nothing. Failures wrap
// ErrAuth and are counted.
func (e *Envelope) OpenInPlace(datagram []byte) ([]byte, error) {
	k, body, err := e.check(datagram)
	if err != nil {
		e.fails.Add(1)
		return nil, err
	}
	if k.aead == nil {
		return body, nil
	}
	ct := body[nonceSize:]
	out, err := k.aead.Open(ct[:0], body[:nonceSize], ct, k.ad)
	if err != nil {
		e.fails.Add(1)
		return nil, fmt.Errorf("%w: %v", ErrAuth, err)
	}
	return out, nil
}

// check validates the clear header and finds the key. body is what follows
// the header (nonce ‖ ciphertext ‖ tag, or the plaintext for CipherNone).
func (e *Envelope) check(d []byte) (*key, []byte, error) {
	if len(d) < overhead(e.cipher) {
		return nil, nil, fmt.Errorf("%w: truncated (%d bytes)", ErrAuth, len(d))
	}
	if d[0] != Version {
		return nil, nil, fmt.Errorf("%w: version %d", ErrAuth, d[0])
	}
	if Cipher(d[1]) != e.cipher {
		return nil, nil, fmt.Errorf("%w: cipher %s, want %s", ErrAuth, Cipher(d[1]), e.cipher)
	}
	ks := e.keys.Load()
	for i := range ks.keys {
		k := &ks.keys[i]
		if subtle.ConstantTimeCompare(k.id[:], d[2:6]) == 1 {
			return k, d[headerSize:], nil
		}
	}
	return nil, nil, fmt.Errorf("%w: unknown key id %x", ErrAuth, binary.BigEndian.Uint32(d[2:6]))
}

// AuthFailures counts the datagrams Open or OpenInPlace rejected.
func (e *Envelope) AuthFailures() uint64 { return e.fails.Load() }
