package crypto

// Replay protection: the receiver side of the counter in every datagram's
// header (see the package documentation).
//
// A sender's datagrams are numbered by (epoch, counter): the epoch of its
// boot (strictly increasing across its restarts) and a counter that starts
// at 1 with every epoch and grows by one per sealed datagram. A receiver
// keeps, per sender, the highest epoch it authenticated and, for that
// epoch, a sliding window of the last windowBits counters (RFC 6479, as
// IPsec and WireGuard do): a datagram is accepted once, if its epoch is
// the current one (or newer, which starts a fresh window) and its counter
// is above the window or inside it and not yet seen.

const (
	// windowWords × 64 bits of history per sender. Datagrams of one
	// sender are reordered at a receiver by its two sockets (udp: the
	// multicast burst and the unicast token are read by different
	// goroutines) and by the readers' batches in flight (4 batches of 64
	// slots, a slot holding up to ~45 datagrams of a coalesced burst):
	// a few thousand datagrams at worst. 8,128 usable bits cover that
	// with room to spare, for 1 KiB per sender.
	windowWords = 128
	// windowBits is how far below the highest counter seen a counter is
	// still judged by its bit; older ones are dropped. One word less than
	// the bitmap: the word of the highest counter is only partly history.
	windowBits = (windowWords - 1) * 64
	// MaxCounter bounds the counter a datagram may carry: a sender would
	// need 29,000 years at 10 million datagrams per second to reach it,
	// and a window never has to handle its overflow.
	MaxCounter = 1<<63 - 1
)

// replayWindow is one sender's receive history within one epoch.
// Not safe for concurrent use (the Envelope locks around it).
type replayWindow struct {
	epoch uint64
	top   uint64 // highest counter accepted in epoch (0: none yet)
	bits  [windowWords]uint64
}

// verdict of a window check.
type verdict uint8

const (
	fresh  verdict = iota // new: accept
	newer                 // a later epoch than the window's: accept, restarting the window
	seen                  // already accepted
	tooOld                // below the window
	stale                 // an earlier epoch
)

// check judges (epoch, ctr) without changing the window. ctr must be ≥ 1.
func (w *replayWindow) check(epoch, ctr uint64) verdict {
	switch {
	case epoch < w.epoch:
		return stale
	case epoch > w.epoch:
		return newer
	case ctr > w.top:
		return fresh
	case w.top-ctr >= windowBits:
		return tooOld
	case w.bits[(ctr/64)%windowWords]&(1<<(ctr%64)) != 0:
		return seen
	}
	return fresh
}

// accept records (epoch, ctr) if check allows it and reports whether it
// did. Called only for authenticated datagrams: a forged one must not move
// the window.
func (w *replayWindow) accept(epoch, ctr uint64) bool {
	switch w.check(epoch, ctr) {
	case newer:
		*w = replayWindow{epoch: epoch}
	case fresh:
	default:
		return false
	}
	if ctr > w.top {
		cur, next := w.top/64, ctr/64
		// Clear the words between the old top word and the new one:
		// they hold counters of 128 words ago.
		for i, n := uint64(1), min(next-cur, windowWords); i <= n; i++ {
			w.bits[(cur+i)%windowWords] = 0
		}
		w.top = ctr
	}
	w.bits[(ctr/64)%windowWords] |= 1 << (ctr % 64)
	return true
}
