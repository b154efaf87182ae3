// Package crypto is the datagram envelope of the Totem ring: every datagram
// on the wire is authenticated and encrypted with an AEAD, so a node never
// parses a byte that a holder of the cluster key did not write, and never
// accepts the same datagram twice.
//
// # Wire format (version 2)
//
//	0     1      2       6       10      14        22         30
//	+-----+------+-------+-------+-------+---------+----------+----------------+
//	| ver |cipher|key id |sender | dest  | epoch   | counter  | ciphertext‖tag |
//	+-----+------+-------+-------+-------+---------+----------+----------------+
//
// ver is Version; cipher is the Cipher number (append-only, part of the
// protocol); key id is 4 bytes derived from the key (so a receiver holding
// several keys during a rotation picks the right one without trial
// decryption); sender is the sealing node's ID; dest is the node a unicast
// datagram is for (0: a broadcast, for every node); epoch is the sender's
// boot epoch and counter the number of the datagram within it (see
// "Nonces" and "Replay"). All integers are big endian. The whole 30-byte
// header is the additional data of the AEAD: none of it can be altered.
//
// Version 1 (random 96-bit nonces, no sender, no replay protection) is no
// longer accepted: a v1 datagram fails with ErrAuth. Mixed-version rings are
// not supported (as for totem/wire): upgrade every node together.
//
// # Keys
//
// The cluster key is HKDF-SHA256(keyfile, salt = "ringmaster totem", info =
// "ringmaster totem v1 <cipher> <cluster name>"), so one keyfile yields
// unrelated keys for different ciphers and clusters, and a datagram of
// another cluster that happens to share the keyfile fails authentication.
// Keyfiles are 16 to 4096 bytes (corosync's authkey is 128 bytes of random
// data). Several keys may be installed: the first seals, all open; SetKeys
// swaps them atomically, so a key is rotated by a reload without restarting
// the ring: install [new, old] everywhere, then [new].
//
// The AEAD key of a datagram is derived from the cluster key for its sender
// and epoch: HKDF-SHA256(cluster key, info = "ringmaster totem v2 sender"
// ‖ sender ‖ epoch). A receiver derives it once per sender, epoch and key
// and keeps it.
//
// # Nonces
//
// The nonce is the last 12 bytes of the header (the low 32 bits of the
// epoch, then the counter): unique under each derived key because the key is unique to one sender's boot
// (epoch) and the counter grows by one per datagram within it. There is no
// birthday bound, unlike the random 96-bit nonces of version 1 (2^32
// datagrams per key, about a day of saturated traffic): a sender would need
// 2^63 datagrams in one boot (MaxCounter) before its counter ran out.
//
// The epoch must exceed every epoch the node used before, also across
// restarts, or a restarted node would reuse (key, nonce) pairs and its
// datagrams would be dropped as replays. NewEpoch computes max(last
// persisted epoch + 1, wall clock in ns); the driver persists it before
// sealing anything (totem/ring).
//
// # Replay
//
// A receiver keeps per sender the highest epoch it authenticated and a
// sliding window of the last ~8,000 counters of that epoch (RFC 6479, as
// IPsec and WireGuard do). A datagram is dropped with ErrReplay when its
// epoch is older, its counter below the window or already seen, when it is
// a unicast for another node (dest), or when it names this node as its
// sender (a node never receives its own datagrams). The window moves only
// for authenticated datagrams; replays are dropped before decryption. A
// sender that restarts uses a newer epoch, which starts a fresh window.
//
// # CipherNone
//
// With CipherNone there is no AEAD and no key: the header is the same (the
// key id field carries a hash of the cluster name, so other clusters are
// still told apart) and replayed datagrams are dropped the same way, but
// anyone can forge a datagram with any sender, epoch and counter (and so
// also lock a sender out of a receiver, until the receiver restarts or the
// sender's epoch passes the forged one; the driver bounds epochs to a year
// past its clock). "none" is accepted only when configured explicitly; the
// range checks of the layers above still apply.
//
// # Concurrency
//
// Seal, Open, OpenInPlace and SetKeys are safe for concurrent use: keys are
// swapped atomically, the send counter is atomic and the receive windows
// are locked.
package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// Version is the envelope format version, the first byte of every datagram.
// Numbers are part of the protocol: 1 was the random-nonce format.
const Version = 2

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

// HeaderSize is the size of the clear header.
const HeaderSize = 30

const (
	nonceSize = 12
	tagSize   = 16
	// maxSenders bounds the receive windows an Envelope keeps (1 KiB
	// each): far above any ring (wire.MaxNodes), so that datagrams naming
	// ever new senders (possible to forge with CipherNone) cannot grow
	// memory without bound. The driver drops senders outside the
	// nodelist before opening anything.
	maxSenders = 4096
	// derivedPerSender bounds the derived keys kept per sender: the
	// current epoch under each key of a rotation, and a newer one.
	derivedPerSender = 4
)

// Errors. Open wraps ErrAuth, ErrReplay or ErrRange for every rejected
// datagram.
var (
	ErrCipher  = errors.New("unknown cipher")
	ErrKeySize = errors.New("keyfile size out of range")
	ErrNoKey   = errors.New("no key configured")
	ErrNode    = errors.New("node id 0")
	// ErrAuth: the datagram is truncated, of another version, cipher,
	// cluster or key, or forged. It must be dropped without parsing.
	ErrAuth = errors.New("datagram failed authentication")
	// ErrReplay: the datagram (or a copy) was accepted before, is older
	// than the sender's receive window or epoch, is a unicast for another
	// node, or names this node as its sender.
	ErrReplay = errors.New("datagram replayed")
	// ErrDuplicate, wrapped together with ErrReplay: the datagram's
	// counter is inside the sender's window and was accepted before: a
	// copy. With redundant links the sender sends copies itself (on
	// every link while none is known healthy).
	ErrDuplicate = errors.New("duplicate")
	// ErrRange: epoch or counter 0, or a counter above MaxCounter: no
	// sender seals such a datagram.
	ErrRange = errors.New("datagram header out of range")
)

// Header is the clear header of a datagram. ParseHeader returns it
// unauthenticated; Open returns it once the datagram is authenticated.
type Header struct {
	Version uint8
	Cipher  Cipher
	KeyID   uint32
	Sender  uint32
	Dest    uint32 // 0: broadcast
	Epoch   uint64
	Counter uint64
}

// ParseHeader decodes the clear header without authenticating anything:
// for filters that drop datagrams before they are opened (unknown sender,
// wrong source address). Errors wrap ErrAuth (truncated, other version) or
// ErrRange.
func ParseHeader(d []byte) (Header, error) {
	if len(d) < HeaderSize {
		return Header{}, fmt.Errorf("%w: truncated (%d bytes)", ErrAuth, len(d))
	}
	h := Header{
		Version: d[0],
		Cipher:  Cipher(d[1]),
		KeyID:   binary.BigEndian.Uint32(d[2:]),
		Sender:  binary.BigEndian.Uint32(d[6:]),
		Dest:    binary.BigEndian.Uint32(d[10:]),
		Epoch:   binary.BigEndian.Uint64(d[14:]),
		Counter: binary.BigEndian.Uint64(d[22:]),
	}
	if h.Version != Version {
		return h, fmt.Errorf("%w: version %d", ErrAuth, h.Version)
	}
	if h.Sender == 0 || h.Epoch == 0 || h.Counter == 0 || h.Counter > MaxCounter {
		return h, fmt.Errorf("%w: sender %d epoch %d counter %d", ErrRange, h.Sender, h.Epoch, h.Counter)
	}
	return h, nil
}

// NewEpoch is the epoch of a boot that follows one whose epoch was last
// (0: none known): the wall clock in nanoseconds, or last + 1 if the clock
// is behind it (stepped back, or a fast restart). The caller persists it
// before sealing with it.
func NewEpoch(last uint64, now time.Time) uint64 {
	return max(last+1, uint64(max(now.UnixNano(), 1)))
}

// key is one cluster key.
type key struct {
	id   [4]byte
	base []byte // 32 bytes: the cluster key the per-sender keys derive from
	seal cipher.AEAD
}

type keySet struct {
	keys []key // keys[0] seals
}

// derived is a per-sender AEAD kept by a receiver.
type derived struct {
	k     *key
	epoch uint64
	aead  cipher.AEAD
}

// peer is what a receiver keeps about one sender.
type peer struct {
	win replayWindow
	// keys derived for this sender (most recent first).
	keys [derivedPerSender]derived
}

// Envelope seals and opens datagrams for one node (see Concurrency in the
// package documentation).
type Envelope struct {
	cipher  Cipher
	cluster string
	self    uint32
	epoch   uint64
	noneID  [4]byte // CipherNone's key id: hash of the cluster name
	keys    atomic.Pointer[keySet]
	counter atomic.Uint64

	mu    sync.Mutex
	peers map[uint32]*peer

	fails, replays, ranges atomic.Uint64
}

// New returns the Envelope of node self (the sender ID it seals with,
// never 0) in its boot epoch (NewEpoch; never 0) for a cluster. keys are
// raw keyfile contents, the first one seals; with CipherNone keys are
// ignored and may be empty.
func New(c Cipher, clusterName string, self uint32, epoch uint64, keys [][]byte) (*Envelope, error) {
	if c > CipherChaCha20 {
		return nil, fmt.Errorf("%w: %d", ErrCipher, c)
	}
	if self == 0 || epoch == 0 {
		return nil, fmt.Errorf("%w: node %d epoch %d", ErrNode, self, epoch)
	}
	e := &Envelope{cipher: c, cluster: clusterName, self: self, epoch: epoch, peers: map[uint32]*peer{}}
	sum := sha256.Sum256([]byte("ringmaster cluster " + clusterName))
	copy(e.noneID[:], sum[:4])
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
		ks.keys = []key{{id: e.noneID}}
		e.keys.Store(ks)
		return nil
	}
	if len(keys) == 0 {
		return ErrNoKey
	}
	for i, raw := range keys {
		k, err := e.clusterKey(raw)
		if err != nil {
			return fmt.Errorf("key %d: %w", i, err)
		}
		ks.keys = append(ks.keys, k)
	}
	seal, err := e.derive(&ks.keys[0], e.self, e.epoch)
	if err != nil {
		return err
	}
	ks.keys[0].seal = seal
	e.keys.Store(ks)
	return nil
}

func (e *Envelope) clusterKey(raw []byte) (key, error) {
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
	k.base = okm[:32:32]
	return k, nil
}

// derive returns the AEAD of sender's datagrams in epoch under k.
func (e *Envelope) derive(k *key, sender uint32, epoch uint64) (cipher.AEAD, error) {
	var info [26 + 4 + 8]byte
	n := copy(info[:], "ringmaster totem v2 sender")
	binary.BigEndian.PutUint32(info[n:], sender)
	binary.BigEndian.PutUint64(info[n+4:], epoch)
	sk, err := hkdf.Key(sha256.New, k.base, nil, string(info[:]), 32)
	if err != nil {
		return nil, fmt.Errorf("hkdf: %w", err)
	}
	switch e.cipher {
	case CipherAES256:
		b, err := aes.NewCipher(sk)
		if err != nil {
			return nil, fmt.Errorf("aes: %w", err)
		}
		g, err := cipher.NewGCM(b)
		if err != nil {
			return nil, fmt.Errorf("gcm: %w", err)
		}
		return g, nil
	case CipherChaCha20:
		a, err := chacha20poly1305.New(sk)
		if err != nil {
			return nil, fmt.Errorf("chacha20poly1305: %w", err)
		}
		return a, nil
	}
	return nil, fmt.Errorf("%w: %d", ErrCipher, e.cipher)
}

// Cipher returns the configured cipher.
func (e *Envelope) Cipher() Cipher { return e.cipher }

// Node and Epoch return what this envelope seals with.
func (e *Envelope) Node() uint32  { return e.self }
func (e *Envelope) Epoch() uint64 { return e.epoch }

// Overhead returns how many bytes Seal adds to a plaintext: 30 for
// CipherNone, 30 + 16 = 46 for the AEADs. Callers subtract it from the MTU
// to size plaintexts.
func (e *Envelope) Overhead() int { return Overhead(e.cipher) }

// Overhead returns the bytes Seal adds with cipher c.
func Overhead(c Cipher) int {
	if c == CipherNone {
		return HeaderSize
	}
	return HeaderSize + tagSize
}

// nonceOf is a datagram's nonce: the last 12 bytes of its header (the low
// 32 bits of the epoch, then the counter), used in place so that sealing
// and opening allocate nothing.
func nonceOf(hdr []byte) []byte { return hdr[HeaderSize-nonceSize : HeaderSize] }

// Seal appends the sealed datagram of plaintext for node dest (0: every
// node) to dst and returns it. plaintext and dst must not overlap. It
// allocates nothing when dst has room for len(plaintext)+Overhead() bytes.
func (e *Envelope) Seal(dst []byte, dest uint32, plaintext []byte) []byte {
	k := &e.keys.Load().keys[0]
	ctr := e.counter.Add(1)
	if ctr > MaxCounter {
		// 2^63 datagrams in one boot: unreachable (see MaxCounter);
		// reusing a nonce would break the AEAD.
		panic("crypto: send counter exhausted")
	}
	n := len(dst)
	dst = append(dst, Version, byte(e.cipher))
	dst = append(dst, k.id[:]...)
	dst = binary.BigEndian.AppendUint32(dst, e.self)
	dst = binary.BigEndian.AppendUint32(dst, dest)
	dst = binary.BigEndian.AppendUint64(dst, e.epoch)
	dst = binary.BigEndian.AppendUint64(dst, ctr)
	if k.seal == nil {
		return append(dst, plaintext...)
	}
	hdr := dst[n : n+HeaderSize]
	return k.seal.Seal(dst, nonceOf(hdr), plaintext, hdr)
}

// Open authenticates and decrypts datagram, appending the plaintext to dst
// (which must not overlap datagram; see OpenInPlace), and returns its
// header. Every failure wraps ErrAuth, ErrReplay or ErrRange and is
// counted.
func (e *Envelope) Open(dst, datagram []byte) ([]byte, Header, error) {
	return e.open(dst, datagram, false)
}

// OpenInPlace authenticates and decrypts datagram in place and returns the
// plaintext, a sub-slice of datagram, and the header. It allocates nothing
// once the sender's key is derived. Failures are as for Open.
func (e *Envelope) OpenInPlace(datagram []byte) ([]byte, Header, error) {
	return e.open(nil, datagram, true)
}

func (e *Envelope) open(dst, d []byte, inPlace bool) ([]byte, Header, error) {
	pt, h, err := e.openChecked(dst, d, inPlace)
	if err != nil {
		switch {
		case errors.Is(err, ErrReplay):
			e.replays.Add(1)
		case errors.Is(err, ErrRange):
			e.ranges.Add(1)
		default:
			e.fails.Add(1)
		}
	}
	return pt, h, err
}

func (e *Envelope) openChecked(dst, d []byte, inPlace bool) ([]byte, Header, error) {
	h, err := ParseHeader(d)
	if err != nil {
		return nil, h, err
	}
	if h.Cipher != e.cipher {
		return nil, h, fmt.Errorf("%w: cipher %s, want %s", ErrAuth, h.Cipher, e.cipher)
	}
	if len(d) < e.Overhead() {
		return nil, h, fmt.Errorf("%w: truncated (%d bytes)", ErrAuth, len(d))
	}
	ks := e.keys.Load()
	var k *key
	for i := range ks.keys {
		if subtle.ConstantTimeCompare(ks.keys[i].id[:], d[2:6]) == 1 {
			k = &ks.keys[i]
			break
		}
	}
	if k == nil {
		return nil, h, fmt.Errorf("%w: unknown key id %x", ErrAuth, h.KeyID)
	}
	switch {
	case h.Sender == e.self:
		return nil, h, fmt.Errorf("%w: names this node (%d) as its sender", ErrReplay, h.Sender)
	case h.Dest != 0 && h.Dest != e.self:
		return nil, h, fmt.Errorf("%w: unicast for node %d", ErrReplay, h.Dest)
	}
	// Drop replays before spending an AEAD on them; the window itself
	// moves only once the datagram is authenticated.
	aead, err := e.receiveKey(k, &h)
	if err != nil {
		return nil, h, err
	}
	hdr, body := d[:HeaderSize], d[HeaderSize:]
	var out []byte
	if aead == nil {
		if inPlace {
			out = body
		} else {
			out = append(dst, body...)
		}
	} else {
		if inPlace {
			dst = body[:0]
		}
		out, err = aead.Open(dst, nonceOf(hdr), body, hdr)
		if err != nil {
			return nil, h, fmt.Errorf("%w: %v", ErrAuth, err)
		}
	}
	if err := e.accept(k, &h, aead); err != nil {
		return nil, h, err
	}
	return out, h, nil
}

// receiveKey checks h against the sender's window (without moving it) and
// returns the AEAD for its sender and epoch under k (nil for CipherNone).
func (e *Envelope) receiveKey(k *key, h *Header) (cipher.AEAD, error) {
	e.mu.Lock()
	p := e.peers[h.Sender]
	if p != nil {
		if err := verdictErr(p.win.check(h.Epoch, h.Counter), h); err != nil {
			e.mu.Unlock()
			return nil, err
		}
		if e.cipher == CipherNone {
			e.mu.Unlock()
			return nil, nil
		}
		for i := range p.keys {
			if d := &p.keys[i]; d.k == k && d.epoch == h.Epoch {
				a := d.aead
				e.mu.Unlock()
				return a, nil
			}
		}
	} else if len(e.peers) >= maxSenders {
		e.mu.Unlock()
		return nil, fmt.Errorf("%w: more than %d senders", ErrAuth, maxSenders)
	}
	e.mu.Unlock()
	if e.cipher == CipherNone {
		return nil, nil
	}
	// Derived outside the lock; kept only once a datagram authenticates.
	return e.derive(k, h.Sender, h.Epoch)
}

// accept moves the sender's window for an authenticated datagram and keeps
// the key it was opened with.
func (e *Envelope) accept(k *key, h *Header, aead cipher.AEAD) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.peers[h.Sender]
	if p == nil {
		if len(e.peers) >= maxSenders {
			return fmt.Errorf("%w: more than %d senders", ErrAuth, maxSenders)
		}
		p = &peer{}
		e.peers[h.Sender] = p
	}
	if !p.win.accept(h.Epoch, h.Counter) {
		// Another reader accepted a copy meanwhile, or a newer epoch.
		return verdictErr(p.win.check(h.Epoch, h.Counter), h)
	}
	if aead != nil && (p.keys[0].k != k || p.keys[0].epoch != h.Epoch) {
		for i := range p.keys {
			if d := &p.keys[i]; d.k == k && d.epoch == h.Epoch {
				// Known: move it to the front.
				dk := *d
				copy(p.keys[1:i+1], p.keys[:i])
				p.keys[0] = dk
				return nil
			}
		}
		copy(p.keys[1:], p.keys[:derivedPerSender-1])
		p.keys[0] = derived{k: k, epoch: h.Epoch, aead: aead}
	}
	return nil
}

func verdictErr(v verdict, h *Header) error {
	switch v {
	case seen:
		return fmt.Errorf("%w: %w: node %d epoch %d counter %d seen before", ErrReplay, ErrDuplicate, h.Sender, h.Epoch, h.Counter)
	case tooOld:
		return fmt.Errorf("%w: node %d epoch %d counter %d below the window", ErrReplay, h.Sender, h.Epoch, h.Counter)
	case stale:
		return fmt.Errorf("%w: node %d epoch %d is older than its current one", ErrReplay, h.Sender, h.Epoch)
	}
	return nil
}

// AuthFailures counts the datagrams Open or OpenInPlace rejected as not
// authentic (ErrAuth).
func (e *Envelope) AuthFailures() uint64 { return e.fails.Load() }

// Replays counts the datagrams rejected with ErrReplay.
func (e *Envelope) Replays() uint64 { return e.replays.Load() }

// OutOfRange counts the datagrams rejected with ErrRange.
func (e *Envelope) OutOfRange() uint64 { return e.ranges.Load() }
