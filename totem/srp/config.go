package srp

import (
	"fmt"
	"math/rand/v2"
	"time"

	"ringmaster/totem"
	"ringmaster/totem/wire"
)

// Timings are the protocol's timeouts and constants, with corosync's names
// (totem.* in corosync.toml) and meaning. The driver passes the effective
// values (config.Effective, token already scaled by token_coefficient).
// A zero field takes the corosync default, derived from Token where
// corosync derives it.
type Timings struct {
	// Token: how long a member waits for the token before declaring it lost.
	Token time.Duration
	// TokenRetransmit: how long the sender of the token waits for a sign
	// that the next member has it before sending it again.
	TokenRetransmit time.Duration
	// Hold: how long a member keeps an idle token before passing it on.
	Hold time.Duration
	// Join: interval between join messages in gather.
	Join time.Duration
	// SendJoin: upper bound of a random delay before each join (spreads
	// joins of large clusters); 0 sends at once.
	SendJoin time.Duration
	// Consensus: how long gather waits for a join from a member that has
	// been heard in this gather before excluding it.
	Consensus time.Duration
	// Merge: how often a ring's representative broadcasts merge-detect.
	Merge time.Duration
	// Downcheck: how often a faulty interface is rechecked. The core does
	// not use it (interfaces are the driver's); kept for the runtime.* keys.
	Downcheck time.Duration

	TokenRetransmitsBefore int // token_retransmits_before_loss_const
	FailRecvConst          int // token visits without progress on a missing message
	SeqnoUnchangedConst    int // quiet token visits before the token is held (at least minHoldQuiet)
	MissCountConst         int // accepted for compatibility; see README
	WindowSize             int // ring-wide messages per rotation
	MaxMessages            int // messages one member may broadcast per visit
}

// DefaultTimings returns corosync's defaults for a token timeout (corosync:
// 3000 ms), with every derived value computed from it.
func DefaultTimings(token time.Duration) Timings {
	t := Timings{Token: token}
	t.fill()
	return t
}

// fill replaces zero fields by corosync's defaults.
func (t *Timings) fill() {
	if t.Token <= 0 {
		t.Token = 3000 * time.Millisecond
	}
	if t.TokenRetransmitsBefore <= 0 {
		t.TokenRetransmitsBefore = 4
	}
	if t.TokenRetransmit <= 0 {
		t.TokenRetransmit = time.Duration(float64(t.Token) / (float64(t.TokenRetransmitsBefore) + 0.2))
	}
	if t.Hold <= 0 {
		t.Hold = time.Duration(0.8 * float64(t.TokenRetransmit))
	}
	if t.Join <= 0 {
		t.Join = 50 * time.Millisecond
	}
	if t.Consensus <= 0 {
		t.Consensus = time.Duration(1.2 * float64(t.Token))
	}
	if t.Merge <= 0 {
		t.Merge = 200 * time.Millisecond
	}
	if t.Downcheck <= 0 {
		t.Downcheck = 1000 * time.Millisecond
	}
	if t.FailRecvConst <= 0 {
		t.FailRecvConst = 2500
	}
	if t.SeqnoUnchangedConst <= 0 {
		// corosync: 30. One member holds the token (README "one
		// holder"); three quiet rotations are the fewest after which
		// holding never delays a safe delivery.
		t.SeqnoUnchangedConst = minHoldQuiet
	}
	if t.MissCountConst <= 0 {
		t.MissCountConst = 5
	}
	if t.WindowSize <= 0 {
		t.WindowSize = 50
	}
	if t.MaxMessages <= 0 {
		t.MaxMessages = 17
	}
}

// FastExclusion is how long gather waits before excluding a member from
// which nothing at all has been received since gather began. It is a
// quarter of the token timeout (the operator's own bound on how long a live
// member may stay silent is the full token), but never less than one join
// interval (50 ms by default: a few scheduler slices of a busy machine);
// joins are repeated at least four times per period. At token = 200 ms
// that is 50 ms, which keeps failover within 1.5 × token (token loss, fast
// exclusion, a few round trips to commit and recover). See README "fast
// exclusion".
func (t *Timings) FastExclusion() time.Duration {
	f := max(t.Token/4, t.Join)
	if f > t.Consensus {
		f = t.Consensus
	}
	return f
}

// Config configures a Processor.
type Config struct {
	Node    totem.NodeID
	Timings Timings
	// InitialSeq is the last persisted ring sequence number (0 on first
	// boot): every ring this processor forms or joins has a higher one.
	InitialSeq uint64
	// Rand is the only source of randomness (send_join jitter).
	Rand *rand.Rand
	// MaxPayload is the largest payload Send accepts (default 64000 bytes;
	// the driver packs and fragments to fit its MTU).
	MaxPayload int
	// MaxQueue is how many messages Send queues before it returns
	// totem.ErrTryAgain (default 2048).
	MaxQueue int
	// FlowScale lets window_size and max_messages grow up to this many
	// times while the ring does not lose much (see adaptFlow); 0 or 1:
	// corosync's fixed window. The driver sets it for small frames
	// (totem/ring.scaleFlow).
	FlowScale int
	// ReuseDatagrams lets the processor write a Ready's datagrams over
	// those of the previous Ready: the caller promises that it no longer
	// uses a Ready's datagram bytes when it calls Ready again (the driver
	// has sent them by then). It spares allocating and zeroing up to a
	// megabyte per token visit. Events are not affected.
	ReuseDatagrams bool
}

const (
	defaultMaxPayload = 64000
	defaultMaxQueue   = 2048
	// maxPayloadLimit keeps one datagram under the UDP maximum.
	maxPayloadLimit = 65507 - wire.McastOverhead
)

func (c *Config) fill() error {
	if c.Node == 0 {
		return fmt.Errorf("srp: node ID 0 is reserved")
	}
	c.Timings.fill()
	if c.MaxPayload <= 0 {
		c.MaxPayload = defaultMaxPayload
	}
	if c.MaxPayload > maxPayloadLimit {
		c.MaxPayload = maxPayloadLimit
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = defaultMaxQueue
	}
	if c.FlowScale <= 0 {
		c.FlowScale = 1
	}
	if c.Rand == nil {
		// Deterministic per node: the core must not touch global state.
		c.Rand = rand.New(rand.NewPCG(uint64(c.Node), c.InitialSeq))
	}
	return nil
}
