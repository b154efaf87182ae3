package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"ringmaster/totem"
	"ringmaster/totem/crypto"
	"ringmaster/totem/transport"
	"ringmaster/totem/wire"
)

// The receive filter: what a datagram must pass, in the reader goroutines,
// before the Processor sees it. Cheap checks on the clear envelope header
// come first, so that a flood of junk costs no AEAD:
//
//	check                                        reason (Counters field)
//	envelope header: version, length, cipher     auth         (AuthFailures)
//	sender, epoch, counter 0 or counter > 2^63   out of range (OutOfRange)
//	sender in the nodelist                       unknown node (UnknownNode)
//	source address = the sender's configured one bad address  (BadAddress)
//	epoch at most maxEpochAhead past our clock   out of range (OutOfRange)
//	AEAD authentication, key id                  auth         (AuthFailures)
//	replay window, dest, sender ≠ us             replay       (Replayed)
//	  a copy inside the window, redundant links  link duplicate (LinkDuplicates)
//	srp header's sender = envelope's sender      malformed    (Malformed)
//
// then, in Run, srp's decoders and range checks (malformed, out of range:
// counted by the Processor). With crypto "none" the header can be forged,
// so only the range checks and the source address mean anything there;
// with an AEAD the sender, dest, epoch and counter are authenticated.
//
// Rejections are counted by reason and logged at most once per reason
// every rejectLogEvery, with the count since the last line, so that a flood
// can neither fill the log nor go unnoticed.

// rejectLogEvery bounds the log lines about rejected datagrams: one per
// reason per period.
const rejectLogEvery = 10 * time.Second

// maxEpochAhead bounds how far a sender's epoch (its boot time in ns, see
// crypto.NewEpoch) may lie ahead of this node's clock. A year: clocks of a
// cluster are never that far apart, and the bound keeps a forged epoch
// (possible with crypto "none") from locking a sender out for longer.
const maxEpochAhead = 365 * 24 * time.Hour

type rejectReason int

const (
	rejectAuth rejectReason = iota
	rejectReplay
	rejectUnknownNode
	rejectBadAddress
	rejectOutOfRange
	rejectMalformed
	rejectLinkDuplicate
	numRejectReasons
)

var rejectNames = [numRejectReasons]string{"auth", "replay", "unknown node", "bad address", "out of range", "malformed", "link duplicate"}

// rejects counts and logs rejected datagrams. Safe for concurrent use.
type rejects struct {
	n   [numRejectReasons]atomic.Uint64
	log *zap.Logger

	mu      sync.Mutex
	last    [numRejectReasons]time.Time
	pending [numRejectReasons]uint64
}

func (rj *rejects) add(reason rejectReason, from netip.AddrPort, err error) {
	rj.count(reason)
	rj.note(reason, from, err)
}

// count counts a rejection without logging it.
func (rj *rejects) count(reason rejectReason) { rj.n[reason].Add(1) }

// note logs a rejection, at most once per reason every rejectLogEvery.
func (rj *rejects) note(reason rejectReason, from netip.AddrPort, err error) {
	rj.mu.Lock()
	rj.pending[reason]++
	now := time.Now()
	if now.Sub(rj.last[reason]) < rejectLogEvery {
		rj.mu.Unlock()
		return
	}
	n := rj.pending[reason]
	rj.pending[reason], rj.last[reason] = 0, now
	rj.mu.Unlock()
	fields := []zap.Field{zap.String("reason", rejectNames[reason]), zap.Uint64("count", n),
		zap.Duration("period", rejectLogEvery), zap.Error(err)}
	if from.IsValid() {
		fields = append(fields, zap.Stringer("last_from", from))
	}
	rj.log.Warn("datagrams rejected", fields...)
}

func (rj *rejects) get(reason rejectReason) uint64 { return rj.n[reason].Load() }

// sources maps every configured node to the address its datagrams come
// from: its ring address with udpu, its unicast socket's with udp (which
// sends multicast from it too). nil when the nodelist is unknown (transport
// mem in tests): then nothing is checked.
func sources(cfg Config) map[totem.NodeID]netip.AddrPort {
	if len(cfg.Peers) == 0 {
		return nil
	}
	m := transport.UnicastAddrs(cfg.Peers, cfg.Mcast, cfg.Transport == "udp")
	if cfg.Transport != "udp" && cfg.Transport != "udpu" {
		for id := range m {
			m[id] = netip.AddrPort{} // known node, address not checked
		}
	}
	return m
}

// open runs one received datagram through the filter and opens it in
// place; ok is false when it was rejected (and counted).
func (r *Ring) open(d []byte, from netip.AddrPort) (pt []byte, ok bool) {
	h, err := crypto.ParseHeader(d)
	if err != nil {
		r.reject(classify(err), from, err)
		return nil, false
	}
	if srcs := r.loadSources(); srcs != nil {
		want, known := srcs[totem.NodeID(h.Sender)]
		if !known {
			r.reject(rejectUnknownNode, from, fmt.Errorf("node %d is not in the nodelist", h.Sender))
			return nil, false
		}
		if want.IsValid() && from.IsValid() && from != want && (r.links == nil || !r.links.knownSource(totem.NodeID(h.Sender), from)) {
			r.reject(rejectBadAddress, from, fmt.Errorf("node %d sends from %s, got %s", h.Sender, want, from))
			return nil, false
		}
	}
	if limit := uint64(time.Now().Add(maxEpochAhead).UnixNano()); h.Epoch > limit {
		r.reject(rejectOutOfRange, from, fmt.Errorf("node %d: epoch %d more than %v ahead of this node's clock", h.Sender, h.Epoch, maxEpochAhead))
		return nil, false
	}
	pt, _, err = r.env.OpenInPlace(d)
	if err != nil {
		if r.linkCopies && errors.Is(err, crypto.ErrDuplicate) {
			// A copy the sender sent on another link (every link
			// while none to us is known healthy): counted, not
			// logged as an attack. An attacker's copy of a recent
			// datagram is dropped the same way.
			r.rej.count(rejectLinkDuplicate)
			return nil, false
		}
		r.reject(classify(err), from, err)
		return nil, false
	}
	if len(pt) >= wire.HeaderLen && binary.BigEndian.Uint32(pt[2:]) != h.Sender {
		r.reject(rejectMalformed, from, fmt.Errorf("sealed by node %d, claims node %d", h.Sender, binary.BigEndian.Uint32(pt[2:])))
		return nil, false
	}
	return pt, true
}

func classify(err error) rejectReason {
	switch {
	case errors.Is(err, crypto.ErrReplay):
		return rejectReplay
	case errors.Is(err, crypto.ErrRange):
		return rejectOutOfRange
	}
	return rejectAuth
}

func (r *Ring) reject(reason rejectReason, from netip.AddrPort, err error) {
	r.rej.add(reason, from, err)
}

// stepErr accounts for a datagram the Processor refused (it counts them
// itself); only the log line is the driver's.
func (r *Ring) stepErr(err error) {
	if err == nil {
		return
	}
	r.rej.note(classifyWire(err), netip.AddrPort{}, err)
}

// epochFile keeps the envelope epoch of this node's last boot (see
// crypto.NewEpoch), one file per node ID like seqFile.
func epochFile(dir string, node totem.NodeID) string {
	return filepath.Join(dir, "epoch."+strconv.FormatUint(uint64(node), 10))
}

// newEpoch picks this boot's epoch, above every earlier one, and stores it
// durably before anything is sealed with it: a restarted node that reused
// an epoch would reuse nonces, and its datagrams would be dropped as
// replays.
func newEpoch(dir string, node totem.NodeID) (uint64, error) {
	path := epochFile(dir, node)
	last, err := loadSeq(path)
	if err != nil {
		return 0, err
	}
	e := crypto.NewEpoch(last, time.Now())
	if err := storeSeq(path, e); err != nil {
		return 0, err
	}
	return e, nil
}

// checkPersistedSeq refuses a persisted ring sequence number outside the
// protocol's range (wire.MaxRingSeq): every other node would drop this
// node's datagrams. Only a forged datagram, before ring sequence numbers
// were range-checked, could have put it there.
func checkPersistedSeq(path string, seq uint64) error {
	if seq > wire.MaxRingSeq {
		return fmt.Errorf("%w: %s holds ring sequence %d, above the protocol's limit %d (written after a forged datagram?): remove it on every node (%w)",
			ErrPersist, path, seq, uint64(wire.MaxRingSeq), os.ErrInvalid)
	}
	return nil
}
