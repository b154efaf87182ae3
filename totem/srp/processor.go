package srp

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"ringmaster/totem"
	"ringmaster/totem/wire"
)

// ErrLeft is returned by Send after Leave: the processor no longer takes
// part in the ring.
var ErrLeft = errors.New("srp: processor has left the ring")

// ErrGuarantee is returned by Send for an unknown delivery guarantee.
var ErrGuarantee = errors.New("srp: unknown guarantee")

// Processor is one Totem processor: a pure state machine driven by Step
// (datagrams), Tick (time) and Send (application messages), whose output is
// taken with Ready. It is not safe for concurrent use: the driver calls it
// from one goroutine.
//
// The protocol state decides how each input is handled. Rather than one
// switch over states in every handler, each state installs its own step
// and tick functions (as etcd's raft does for its roles):
//
//	state \ input | token               | mcast                | join                 | commit token          | merge-detect, leave   | timers
//	--------------+---------------------+----------------------+----------------------+-----------------------+-----------------------+---------------------------
//	operational   | visit: retransmit,  | store; deliver in    | not stale → gather   | ignored               | foreign ring / leaver | token loss → gather;
//	              | request, broadcast, | order (safe waits    | (and merge its sets) |                       | in ring → gather      | token retransmit; hold
//	              | aru, safe; hold or  | for two rotations)   |                      |                       |                       | release; merge-detect (rep)
//	              | forward             |                      |                      |                       |                       |
//	gather        | ignored             | old ring: stored     | merge sets; all of   | round 1 for my        | sender joins proc /   | join resend; consensus
//	              |                     | (until commit)       | proc−fail agree →    | proc−fail → commit    | leaver joins fail     | timeout; fast exclusion
//	              |                     |                      | lowest ID commits    |                       |                       |
//	commit        | ignored             | ignored (old ring    | new-ring member gave | rep: round 1 full →   | outsider → gather     | token loss → gather;
//	              |                     | state is frozen)     | up → gather; outsider| recovery; member:     | after install; new-   | commit token retransmit
//	              |                     |                      | → gather after       | round 2 → recovery    | ring leaver → gather  |
//	              |                     |                      | install              |                       |                       |
//	recovery      | visit: re-broadcast | new ring: store      | as commit            | rep: round 2 back →   | as commit             | as commit
//	              | old messages; done →| (old ring messages   |                      | first token           |                       |
//	              | deliver old, trans, | inside are copied to |                      |                       |                       |
//	              | regular; operational| the old ring's log)  |                      |                       |                       |
//
// See totem/README.md for the protocol as implemented, the timers and the
// fast-exclusion rule.
type Processor struct {
	cfg Config
	t   Timings
	id  totem.NodeID
	rng *rand.Rand
	now time.Duration

	state totem.State
	step  func(p *Processor, h wire.Header)
	tick  func(p *Processor)
	left  bool

	// The regular configuration: the last ring installed and its log.
	// Before the first ring, ring.Rep is 0 and members is empty.
	ring    totem.RingID
	members []totem.NodeID
	log     ringLog

	// maxSeq is the highest ring sequence number used or seen anywhere;
	// persisted is the highest one this processor used (or started
	// from); reserved is the highest it handed to the driver to store.
	maxSeq    uint64
	persisted uint64
	reserved  uint64

	// Token visit state for the ring the token belongs to (the regular
	// ring when operational, the new ring in recovery).
	tok         wire.Token // the token being visited or held
	lastTokSeq  uint64     // highest token_seq accepted on this ring
	havePrev    bool       // a previous visit on this ring was recorded
	prevInSeq   uint64     // token seq as received at the previous visit
	prevInAru   uint64     // token aru as received at the previous visit
	lastFcc     int        // messages I sent at my previous visit
	lastBacklog int        // my queue length reported at my previous visit
	ringBacklog uint32     // the token's backlog as I last forwarded it (Status)
	idleVisits  int        // consecutive visits with nothing happening
	// safeCovered counts consecutive visits at which the token's aru
	// (as received) covered coveredSafe, the ring's last safe message
	// as known then (holdQuietNow).
	safeCovered int
	coveredSafe uint64
	aruStuck    int    // visits my aru stayed below seq without moving
	lastAru     uint64 // my aru at the previous visit
	holding     bool   // the token is held (idle ring)
	cancelSent  bool   // a hold-cancel was broadcast since the last visit

	// Last token or commit token sent, for retransmission.
	retransData []byte
	retransTo   totem.NodeID
	retransSeq  uint64 // token seq when it was sent: a higher mcast proves progress
	retransMode retransMode
	retransN    int // retransmissions of it so far

	// Loss adaptation (README "Loss"): token visits so far, until which
	// visit message or token loss counts as recently seen, our last
	// forward, and the
	// smoothed time (and its deviation) from forwarding the token of a
	// spinning ring to its return.
	flow           int // window, in eighths of window_size (adaptFlow)
	visits         uint64
	msgLossUntil   uint64
	tokLossUntil   uint64
	lastFwdAt      time.Duration
	fwdSpinning    bool
	fwdSeq         uint64 // the token's seq when we last forwarded it
	lastSentSeq    uint64 // seq of our last broadcast on the token's ring
	rotEst, rotVar time.Duration

	// Messages waiting for the token.
	queue []queued
	qhead int

	// Gather.
	proc        []totem.NodeID
	fail        []totem.NodeID
	consensus   map[totem.NodeID]bool
	heard       map[totem.NodeID]time.Duration // last datagram from a node (outside operational)
	procSince   map[totem.NodeID]time.Duration // when a node entered proc in this gather
	latest      map[totem.NodeID]viewKey       // newest view seen from each node (stale filter)
	gatherStart time.Duration
	flushUntil  time.Duration // membership views are dropped until then (pause)
	pauses      uint64        // pauses detected (see pause)
	lastPause   time.Duration // how late the last one made us
	joinDirty   bool
	joinReason  string

	// Commit and recovery: the ring being formed.
	commit        wire.Commit
	newRing       totem.RingID
	newMembers    []totem.NodeID
	trans         []totem.NodeID // transitional configuration
	rec           ringLog        // the new ring's messages during recovery
	recMaxSafe    uint64         // old-ring seq every old member is known to hold
	recPending    []uint64       // old-ring seqs I may have to re-broadcast
	recNext       int            // next index in recPending
	recCovered    map[uint64]bool
	firstTokenOut bool           // rep: the first token of the new ring was sent
	outsiders     []totem.NodeID // showed up during commit/recovery: gather once installed

	timers timers

	// Output.
	out          Ready
	arena        []byte
	arenaHint    int
	spare        []byte // the previous batch's arena (Config.ReuseDatagrams)
	lastDeadline time.Duration
	slab         []byte
	counters     totem.Counters

	// Decode scratch, reused for every datagram.
	inTok    wire.Token
	inMc     wire.Mcast
	inJoin   wire.Join
	inCommit wire.Commit
	inMD     wire.MergeDetect
	inLeave  wire.Leave
	inHC     wire.HoldCancel
}

type queued struct {
	g       totem.Guarantee
	payload []byte
}

// timers are absolute deadlines; 0 means off.
type timers struct {
	tokenLoss time.Duration // token (or commit token) not back in time
	retrans   time.Duration // resend the last token / commit token
	hold      time.Duration // release a held token
	merge     time.Duration // representative: broadcast merge-detect
	join      time.Duration // gather: resend join
	joinSend  time.Duration // gather: a delayed (send_join) join is due
	consensus time.Duration // gather: exclude members without consensus
	fast      time.Duration // gather: exclude members never heard
}

func (t *timers) next() time.Duration {
	var d time.Duration
	for _, v := range [...]time.Duration{t.tokenLoss, t.retrans, t.hold, t.merge, t.join, t.joinSend, t.consensus, t.fast} {
		if v != 0 && (d == 0 || v < d) {
			d = v
		}
	}
	return d
}

// New returns a processor that starts in gather: it broadcasts a join and,
// as nobody has answered yet, immediately forms a ring of its own, then
// merges with the others as their joins or merge-detects arrive. It panics
// if cfg.Node is 0 (a configuration error the driver validates first).
func New(cfg Config, now time.Duration) *Processor {
	if err := cfg.fill(); err != nil {
		panic(err)
	}
	p := &Processor{
		cfg:       cfg,
		t:         cfg.Timings,
		id:        cfg.Node,
		rng:       cfg.Rand,
		now:       now,
		ring:      totem.RingID{Seq: cfg.InitialSeq},
		log:       newRingLog(),
		rec:       newRingLog(),
		maxSeq:    cfg.InitialSeq,
		persisted: cfg.InitialSeq,
		reserved:  cfg.InitialSeq,
		consensus: make(map[totem.NodeID]bool),
		heard:     make(map[totem.NodeID]time.Duration),
		procSince: make(map[totem.NodeID]time.Duration),
		latest:    make(map[totem.NodeID]viewKey),
		arenaHint: 256,
	}
	p.flow = p.cfg.FlowScale * flowUnit
	p.enterGather("start")
	p.afterInput()
	return p
}

// Step handles one datagram (already authenticated and decrypted by the
// driver). data is not retained. A datagram that does not decode is counted
// and reported with an error wrapping a wire sentinel; the processor's
// state is unchanged. Datagrams sent by this processor itself (multicast
// loopback) are ignored: it handles its own messages internally.
func (p *Processor) Step(now time.Duration, data []byte) error {
	p.advance(now)
	if p.left {
		return nil
	}
	p.counters.DatagramsIn++
	h, err := wire.DecodeHeader(data)
	if err == nil && h.From == p.id {
		return nil
	}
	if err == nil {
		switch h.Type {
		case wire.TypeToken:
			_, err = wire.DecodeToken(data, &p.inTok)
		case wire.TypeMcast:
			_, err = wire.DecodeMcast(data, &p.inMc)
		case wire.TypeJoin:
			_, err = wire.DecodeJoin(data, &p.inJoin)
		case wire.TypeCommit:
			_, err = wire.DecodeCommit(data, &p.inCommit)
		case wire.TypeMergeDetect:
			_, err = wire.DecodeMergeDetect(data, &p.inMD)
		case wire.TypeLeave:
			_, err = wire.DecodeLeave(data, &p.inLeave)
		case wire.TypeHoldCancel:
			_, err = wire.DecodeHoldCancel(data, &p.inHC)
		default:
			err = fmt.Errorf("%s: %w", h.Type, wire.ErrType)
		}
	}
	if err == nil {
		err = p.inRange(h)
	}
	if err != nil {
		p.countRejected(err)
		return fmt.Errorf("srp: node %d: datagram of %d bytes: %w", p.id, len(data), err)
	}
	if !p.fresh(h) {
		return nil
	}
	if p.flushed(h) {
		if p.state != totem.StateOperational {
			// A stale view, but its sender is not silent.
			p.heard[h.From] = now
		}
		return nil
	}
	p.step(p, h)
	if p.state != totem.StateOperational {
		// After the step: the datagram that starts a gather counts too.
		p.heard[h.From] = now
	}
	p.afterInput()
	return nil
}

// Tick tells the processor that time has passed; due timers fire.
func (p *Processor) Tick(now time.Duration) {
	p.advance(now)
	if p.left {
		return
	}
	p.tick(p)
	p.afterInput()
}

// Send queues payload for ordered delivery to every member (including this
// processor) with guarantee g. The payload is copied. Send works in every
// state: messages wait in the queue until the processor holds the token of
// an operational ring. It returns totem.ErrTryAgain when MaxQueue messages
// are already waiting. Send may produce output (it releases a held token),
// so the driver checks HasReady afterwards.
func (p *Processor) Send(payload []byte, g totem.Guarantee) error {
	switch {
	case p.left:
		return ErrLeft
	case g > totem.Safe:
		return fmt.Errorf("%w: %d", ErrGuarantee, g)
	case len(payload) > p.cfg.MaxPayload:
		return fmt.Errorf("srp: payload of %d bytes (max %d): %w", len(payload), p.cfg.MaxPayload, totem.ErrTooLarge)
	case p.queueLen() >= p.cfg.MaxQueue:
		return totem.ErrTryAgain
	}
	wasEmpty := p.queueLen() == 0
	p.queue = append(p.queue, queued{g: g, payload: p.copyBytes(payload)})
	if p.state != totem.StateOperational {
		return nil
	}
	switch {
	case len(p.members) == 1:
		p.sendAlone()
	case p.holding:
		p.releaseHold()
	case wasEmpty && !p.cancelSent && (p.mayBeHeld() || p.mayBeHeldEarly()) && !p.lastSender():
		// The ring is idle, so the token is probably held somewhere:
		// ask for it instead of waiting up to a hold period per member.
		// (Our own count of quiet visits may be one or two below the
		// others': they may hold it although we would not yet. If we
		// sent the last message, the holder is us: nobody to ask.)
		p.cancelSent = true
		start := p.arenaStart()
		p.arena = wire.AppendHoldCancel(p.arena, p.id, &wire.HoldCancel{Ring: p.ring})
		p.emit(0, start)
	}
	return nil
}

// Leave makes the processor leave the ring gracefully: it broadcasts a
// leave message (twice, against loss) so the others exclude it at once
// instead of waiting for the token to be lost, then stops: later Step,
// Tick and Send calls do nothing (Send returns ErrLeft).
func (p *Processor) Leave(now time.Duration) {
	p.advance(now)
	if p.left {
		return
	}
	for range 2 {
		start := p.arenaStart()
		p.arena = wire.AppendLeave(p.arena, p.id, &wire.Leave{Ring: p.ring, MaxSeq: p.maxSeq})
		p.emit(0, start)
	}
	p.left = true
	p.holding = false
	p.timers = timers{}
}

// HasReady reports whether Ready has something new: datagrams, events, a
// sequence number to persist, or a changed deadline.
func (p *Processor) HasReady() bool {
	return len(p.out.Datagrams) > 0 || len(p.out.Events) > 0 || p.out.PersistSeq != 0 ||
		p.timers.next() != p.lastDeadline
}

// Ready returns the output accumulated since the last call and clears it.
// The returned slices belong to the caller.
func (p *Processor) Ready() Ready {
	r := p.out
	r.Deadline = p.timers.next()
	p.lastDeadline = r.Deadline
	// The caller keeps everything returned: the next batch starts anew.
	p.out = Ready{}
	if len(p.arena) > 0 {
		// Size the next arena like this batch: a token is 80 bytes, a
		// burst of frames tens of kilobytes.
		p.arenaHint = max(256, min(2*len(p.arena), 1<<20))
		if p.cfg.ReuseDatagrams {
			// The caller is done with these bytes when it asks again.
			p.spare = p.arena[:0]
		}
		p.arena = nil
	}
	return r
}

// Status returns a snapshot for operators.
func (p *Processor) Status() totem.Status {
	return totem.Status{
		Node:     p.id,
		Ring:     p.ring,
		State:    p.state,
		Members:  slices.Clone(p.members),
		Counters: p.counters,
		Backlog:  totem.Backlog{Frames: uint64(p.queueLen()), Ring: uint64(p.ringBacklog)},
	}
}

// Pauses reports how many times the processor found that it had not been
// scheduled (time jumped more than token/2 beyond its earliest deadline)
// and by how much it was late the last time; see pause.
func (p *Processor) Pauses() (n uint64, last time.Duration) { return p.pauses, p.lastPause }

// Counters returns the statistics.
func (p *Processor) Counters() totem.Counters { return p.counters }

// advance moves the clock; time never goes backwards for the protocol even
// if a caller's clock does. A clock that jumped far beyond the earliest
// deadline means this processor was not scheduled (see pause).
func (p *Processor) advance(now time.Duration) {
	if now <= p.now {
		return
	}
	d := p.timers.next()
	p.now = now
	if d != 0 && now-d > p.pauseThreshold() {
		p.pause(now - d)
	}
}

// pauseThreshold is how late past its earliest deadline a processor must
// run to conclude that it was not scheduled (corosync: token / 2). The
// driver calls Tick at the deadline; a busy machine delays that by
// scheduler slices (milliseconds), never by half a token.
func (p *Processor) pauseThreshold() time.Duration { return p.t.Token / 2 }

// pause handles a processor that was not scheduled for a while (a stopped
// process, a VM pause, a long GC or swap storm), noticed because time
// jumped beyond a deadline. Two things went stale meanwhile, and acting
// on either turns one late processor into a membership storm:
//
//   - Its socket holds everything sent to it during the pause, which the
//     driver now steps in one burst: joins and merge-detects from a gather
//     that has since ended, typically with fail sets naming it (the others
//     rightly gave up on it). Acted on, they make it fail them in turn and
//     broadcast those verdicts, which the others adopt against each other
//     (the paper's rule), and so on: on loopback, where datagrams arrive
//     in order and nothing sorts the stale views out, three processors
//     went through thousands of one-node rings. As corosync does after a
//     pause ("flushing membership messages"), the views that arrive in the
//     next join interval are dropped (flushed); their senders are alive
//     and repeat their current view every join interval (merge-detects
//     every merge period), so nothing is lost but the stale ones.
//   - Its own silence clocks: the token may be waiting in the socket, so
//     token loss is judged only after the flush window, and in gather,
//     where every member looks silent since the processor itself was
//     away, fast exclusion and the consensus timeout restart from now
//     instead of excluding everyone at once.
//
// Tokens, messages, commit tokens and leaves are not flushed: a token
// that waited in the socket through a pause shorter than the token
// timeout keeps the ring whole, and one that is stale is ignored by the
// usual token_seq and ring checks.
func (p *Processor) pause(late time.Duration) {
	p.pauses++
	p.lastPause = late
	p.flushUntil = p.now + p.t.Join
	if p.timers.tokenLoss != 0 && p.timers.tokenLoss < p.flushUntil {
		// The token (or commit token) may be waiting in the socket:
		// judge its loss after the backlog, not on our own absence.
		p.timers.tokenLoss = p.flushUntil
	}
	if p.state == totem.StateGather {
		for _, q := range p.proc {
			p.procSince[q] = p.now
		}
		p.timers.consensus = p.now + p.t.Consensus
		p.armFast()
	}
}

// flushed reports whether a datagram is a membership view that arrived
// right after a pause (see pause).
func (p *Processor) flushed(h wire.Header) bool {
	return p.now < p.flushUntil && (h.Type == wire.TypeJoin || h.Type == wire.TypeMergeDetect)
}

func (p *Processor) due(d time.Duration) bool { return d != 0 && d <= p.now }

// afterInput runs after every Step and Tick: gather sends the join its
// input made necessary, and checks whether consensus has been reached.
func (p *Processor) afterInput() {
	if p.state == totem.StateOperational && len(p.outsiders) > 0 {
		p.enterGather("outsider seen while forming the ring")
	}
	if p.state != totem.StateGather {
		return
	}
	if p.joinDirty {
		p.sendJoin()
	}
	p.armFast()
	p.checkConsensus()
}

// viewKey orders the membership views one node announces over time: its
// regular ring's seq never decreases (also across restarts: it is
// persisted), nor does the highest seq it has seen while it runs.
type viewKey struct{ ring, max uint64 }

func (k viewKey) less(o viewKey) bool {
	if k.ring != o.ring {
		return k.ring < o.ring
	}
	return k.max < o.max
}

// fresh drops a join or merge-detect older than one already received from
// the same node. Datagrams are reordered, and a processor that was not
// scheduled for a while finds a backlog of them in its socket; acting on a
// view its sender has since left behind (a fail set naming us, a ring that
// no longer exists) starts needless gathers, and on a busy machine those
// feed each other into a storm of one-node rings.
func (p *Processor) fresh(h wire.Header) bool {
	var k viewKey
	switch h.Type {
	case wire.TypeJoin:
		k = viewKey{p.inJoin.Ring.Seq, p.inJoin.MaxSeq}
	case wire.TypeMergeDetect:
		k = viewKey{p.inMD.Ring.Seq, p.inMD.MaxSeq}
	default:
		return true
	}
	if k.less(p.latest[h.From]) {
		return false
	}
	p.latest[h.From] = k
	return true
}

// --- output helpers ---------------------------------------------------------

// emit turns p.arena[start:] (just appended by an encoder) into a datagram.
// Datagrams share one arena per Ready batch; each is capped so the driver
// cannot overwrite its neighbour by appending.
func (p *Processor) emit(to totem.NodeID, start int) []byte {
	data := p.arena[start:len(p.arena):len(p.arena)]
	p.out.Datagrams = append(p.out.Datagrams, Datagram{To: to, Data: data})
	p.counters.DatagramsOut++
	return data
}

// arenaStart makes sure the arena has room and returns where the next
// datagram starts.
func (p *Processor) arenaStart() int {
	if p.arena == nil {
		if cap(p.spare) >= p.arenaHint/2 {
			p.arena, p.spare = p.spare, nil
		} else {
			p.arena = make([]byte, 0, p.arenaHint)
		}
	}
	return len(p.arena)
}

func (p *Processor) emitMcast(m *wire.Mcast) {
	start := p.arenaStart()
	p.arena = wire.AppendMcast(p.arena, p.id, m)
	p.emit(0, start)
}

func (p *Processor) emitEvent(ev Event) { p.out.Events = append(p.out.Events, ev) }

func (p *Processor) deliverEntry(e *entry) {
	p.counters.MessagesIn++
	p.emitEvent(Event{Kind: EventDeliver, Sender: e.sender, Guarantee: e.guarantee, Payload: e.payload})
}

// SeqReserve is how far above the ring sequence number it uses a
// processor asks the driver to store. Every member stores before it passes
// the commit token on, so a store on every configuration put one fsync
// per member in series on the failover path (32 of them on a 32-node
// ring); with the reserve, a store is needed once in SeqReserve/4
// configurations. A restarted processor starts above what was stored, so
// ring IDs still never repeat.
const SeqReserve = 4096

func (p *Processor) persist(seq uint64) {
	if seq > p.persisted {
		p.persisted = seq
	}
	if seq > p.reserved {
		p.reserved = min(seq+SeqReserve, wire.MaxRingSeq)
		p.out.PersistSeq = p.reserved
	}
}

func (p *Processor) noteSeq(seq uint64) {
	if seq > p.maxSeq {
		p.maxSeq = seq
	}
}

// copyBytes copies b into a slab shared by small payloads, so that storing
// a message costs no allocation of its own. Slices handed out are never
// written again (the driver keeps delivered payloads).
func (p *Processor) copyBytes(b []byte) []byte {
	const slabSize = 64 << 10
	if len(b) > slabSize/8 {
		return slices.Clone(b)
	}
	if cap(p.slab)-len(p.slab) < len(b) {
		p.slab = make([]byte, 0, slabSize)
	}
	start := len(p.slab)
	p.slab = append(p.slab, b...)
	return p.slab[start:len(p.slab):len(p.slab)]
}

// --- send queue ---------------------------------------------------------------

func (p *Processor) queueLen() int { return len(p.queue) - p.qhead }

func (p *Processor) popQueue() queued {
	q := p.queue[p.qhead]
	p.queue[p.qhead] = queued{}
	p.qhead++
	if p.qhead == len(p.queue) {
		p.queue, p.qhead = p.queue[:0], 0
	} else if p.qhead > 1024 && p.qhead > len(p.queue)/2 {
		n := copy(p.queue, p.queue[p.qhead:])
		clear(p.queue[n:])
		p.queue, p.qhead = p.queue[:n], 0
	}
	return q
}

// --- invariants ---------------------------------------------------------------

// broken panics with a dump of the state: only for invariants the protocol
// itself guarantees, never for anything a datagram can cause.
func (p *Processor) broken(format string, args ...any) {
	panic(fmt.Sprintf("srp: broken invariant on node %d: %s\n%s", p.id, fmt.Sprintf(format, args...), p.dump()))
}

func (p *Processor) dump() string {
	var b strings.Builder
	fmt.Fprintf(&b, "state=%s ring=%v members=%v now=%v maxSeq=%d persisted=%d last gather: %s\n", p.state, p.ring, p.members, p.now, p.maxSeq, p.persisted, p.joinReason)
	fmt.Fprintf(&b, "log: aru=%d high=%d delivered=%d safe=%d base=%d\n", p.log.aru, p.log.high, p.log.delivered, p.log.safe, p.log.buf.base)
	fmt.Fprintf(&b, "proc=%v fail=%v newRing=%v newMembers=%v trans=%v\n", p.proc, p.fail, p.newRing, p.newMembers, p.trans)
	fmt.Fprintf(&b, "rec: aru=%d high=%d pending=%d/%d\n", p.rec.aru, p.rec.high, p.recNext, len(p.recPending))
	fmt.Fprintf(&b, "token: %+v holding=%v queue=%d timers=%+v", p.tok, p.holding, p.queueLen(), p.timers)
	return b.String()
}
