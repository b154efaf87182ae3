package srp

import (
	"slices"
	"time"

	"ringmaster/totem"
	"ringmaster/totem/wire"
)

// Operational state: the token circulates, the holder broadcasts, everyone
// delivers in sequence order.

const (
	// maxRtrAdd bounds the retransmission requests one visit adds, so a
	// processor far behind does not crowd out the others' requests.
	maxRtrAdd = 64
	// maxRtr bounds the whole list: 128 entries keep the token near 1 KiB,
	// inside a 1500-byte MTU with the driver's AEAD and IP/UDP headers.
	maxRtr = 128
	// lossMemory is how many token visits a sign of loss (a message
	// missing, a token retransmitted) keeps the token going out in extra
	// copies.
	lossMemory = 64
	// maxTokenCopies bounds the copies of one token forward.
	maxTokenCopies = 3
	// minFastRetrans is the shortest token retransmission interval of a
	// spinning ring: far above a loopback round trip, below a scheduler
	// time slice.
	minFastRetrans = time.Millisecond
)

// retransMode says how the token just forwarded is retransmitted.
type retransMode uint8

const (
	// retransPlain: token_retransmit (the commit token, or no estimate).
	retransPlain retransMode = iota
	// retransSpin: the ring spins (nobody holds the token): retransmit
	// once the token is late by the usual rotation time plus four
	// deviations (as TCP's retransmission timeout), doubling at every try
	// up to token_retransmit.
	retransSpin
	// retransHold: the ring is idle and every member holds the token
	// for a hold period: the first retransmission waits until the token
	// should have come back, the next ones follow token_retransmit.
	retransHold
)

func (p *Processor) enterOperational() {
	p.state = totem.StateOperational
	p.step = stepOperational
	p.tick = tickOperational
	p.timers = timers{}
	if len(p.members) > 1 {
		p.timers.tokenLoss = p.now + p.t.Token
	}
	if p.ring.Rep == p.id {
		// Announce the new ring at once: a partition that healed while
		// we formed it merges without waiting a merge period.
		p.sendMergeDetect()
	}
}

func stepOperational(p *Processor, h wire.Header) {
	switch h.Type {
	case wire.TypeToken:
		t := &p.inTok
		if t.Ring != p.ring || len(p.members) < 2 || !p.acceptToken(t, &p.log) {
			return
		}
		p.visit()
	case wire.TypeMcast:
		m := &p.inMc
		if m.Ring == p.ring {
			p.storeMcast(&p.log, m)
			p.deliver()
		}
	case wire.TypeJoin:
		j := &p.inJoin
		p.noteSeq(j.MaxSeq)
		if p.staleFromMember(h.From, j.MaxSeq) || setContains(j.Fail, p.id) || j.Flags&wire.JoinCommitted != 0 {
			// Sent before our ring formed, or by a processor that has
			// given up on us: following it would only break a good ring
			// (the paper's rule; see also corosync's "dead loop" fix). A
			// committed processor's answer to somebody's join is not for
			// us either: it is forming a ring and will announce it.
			return
		}
		p.enterGather("join from node")
		p.gatherJoin(h.From, j)
	case wire.TypeMergeDetect:
		md := &p.inMD
		p.noteSeq(md.MaxSeq)
		if md.Ring == p.ring || p.staleFromMember(h.From, md.MaxSeq) {
			return
		}
		p.enterGather("foreign ring")
		p.addProc(h.From)
	case wire.TypeLeave:
		p.onLeave(h.From, &p.inLeave)
	case wire.TypeHoldCancel:
		if p.inHC.Ring != p.ring {
			return
		}
		// Somebody has messages: nobody holds the token until it got
		// there (the holder releases it, the others pass it on).
		p.idleVisits = 0
		if p.holding {
			p.releaseHold()
		}
	}
}

func tickOperational(p *Processor) {
	if p.due(p.timers.hold) {
		p.releaseHold()
	}
	if p.due(p.timers.tokenLoss) {
		p.counters.TokenLosses++
		p.enterGather("token lost")
		return
	}
	if p.due(p.timers.retrans) {
		p.retransmit()
	}
	if p.due(p.timers.merge) {
		p.sendMergeDetect()
	}
}

// staleFromMember: a message from a member of our ring whose sender had
// not yet seen our ring's sequence number was sent before the ring formed.
func (p *Processor) staleFromMember(from totem.NodeID, maxSeq uint64) bool {
	return maxSeq < p.ring.Seq && setContains(p.members, from)
}

func (p *Processor) sendMergeDetect() {
	start := p.arenaStart()
	p.arena = wire.AppendMergeDetect(p.arena, p.id, &wire.MergeDetect{Ring: p.ring, MaxSeq: p.maxSeq})
	p.emit(0, start)
	p.timers.merge = p.now + p.t.Merge
}

// acceptToken filters duplicates and copies the token into p.tok. l is
// the log of the token's ring: a token whose seq is below a message we
// already hold cannot come from this ring's one token (every later token
// carries every seq assigned before it), so it is dropped as garbage rather
// than trusted to number new messages over existing ones.
func (p *Processor) acceptToken(t *wire.Token, l *ringLog) bool {
	if t.TokenSeq <= p.lastTokSeq || t.Seq < l.high {
		return false
	}
	p.lastTokSeq = t.TokenSeq
	p.tokenArrived()
	rtr := p.tok.Rtr[:0]
	p.tok = *t
	p.tok.Rtr = append(rtr, t.Rtr...)
	return true
}

func (p *Processor) tokenArrived() {
	if p.fwdSpinning && p.lastFwdAt != 0 && p.retransN == 0 {
		// A rotation of a spinning ring that we did not have to
		// retransmit (Karn's rule): estimate its mean and deviation as
		// TCP does for round trips (RFC 6298).
		rot := p.now - p.lastFwdAt
		if p.rotEst == 0 {
			p.rotEst, p.rotVar = rot, rot/2
		} else {
			dev := p.rotEst - rot
			if dev < 0 {
				dev = -dev
			}
			p.rotVar += (dev - p.rotVar) / 4
			p.rotEst += (rot - p.rotEst) / 8
		}
	}
	p.fwdSpinning = false
	p.visits++
	p.timers.tokenLoss = p.now + p.t.Token
	p.timers.retrans = 0
	p.retransN = 0
	p.cancelSent = false
}

// noteMsgLoss and noteTokenLoss record signs of datagram loss: while they
// are recent the token goes out in extra copies (duplicates are dropped by
// token_seq, and copies sent together cost the receiver no extra wake-up).
func (p *Processor) noteMsgLoss()   { p.msgLossUntil = p.visits + lossMemory }
func (p *Processor) noteTokenLoss() { p.tokLossUntil = p.visits + lossMemory }

// tokenCopies is how many copies of the token a forward sends: one, plus
// one while messages are being lost, plus one while tokens are.
func (p *Processor) tokenCopies() int {
	c := 1
	if p.visits < p.msgLossUntil {
		c++
	}
	if p.visits < p.tokLossUntil {
		c++
	}
	return min(c, maxTokenCopies)
}

// visit handles the token that just arrived in p.tok, in recovery or
// operational state.
func (p *Processor) visit() {
	t := &p.tok
	inSeq, inAru := t.Seq, t.Aru
	// Two-visit rule: if the aru was at least s when the token reached us
	// at two consecutive visits, every member held s at its own visit in
	// between (a member lacking s lowers the aru and only it may raise it
	// again), so s is safe to deliver and, once delivered, to free.
	stable, haveStable := uint64(0), false
	if p.havePrev {
		stable, haveStable = min(p.prevInAru, inAru), true
	}
	quiet := p.havePrev && inSeq == p.prevInSeq // nobody broadcast for a rotation
	p.noteSafeCover(inAru)
	steady := quiet && p.prevInAru == p.prevInSeq && inAru == inSeq
	p.havePrev, p.prevInSeq, p.prevInAru = true, inSeq, inAru

	if p.state == totem.StateRecovery {
		// Recovery is over when, over a whole rotation, nobody broadcast
		// (seq unchanged), everybody held everything (two-visit rule) and
		// nobody had old messages left to re-broadcast (busy clear), or
		// when another member already found so (flag on the token).
		done := t.Flags&wire.TokenRecovered != 0 || (steady && t.Busy == 0 && !p.recoveryPending())
		if !done {
			p.recoveryVisit()
			return
		}
		t.Flags |= wire.TokenRecovered
		p.finishRecovery()
	}
	if haveStable {
		p.log.safe = max(p.log.safe, min(stable, p.log.aru))
	}
	// With the early hold (holdQuietNow 1), a visit also counts as quiet
	// when nobody but us broadcast since our last forward: a lone
	// sender's next visit after its message (everyone holds and has
	// delivered it when aru equals seq) lets it keep the token, one
	// rotation sooner than waiting for a visit with seq unchanged. For
	// every other member the two conditions are the same.
	sinceFwd := p.havePrev && inSeq == p.fwdSeq
	p.operationalVisit(quiet || (sinceFwd && p.holdQuietNow() == 1))
}

func (p *Processor) operationalVisit(quiet bool) {
	t := &p.tok
	p.adaptFlow(t)
	retrans := p.serveRtr(t, &p.log)
	p.requestMissing(t, &p.log)
	if p.failedToReceive(t) {
		p.enterGather("failed to receive")
		return
	}
	sent := p.broadcastNew(t, retrans)
	p.updateAru(t, p.log.aru)
	p.updateFlow(t, sent+retrans, p.queueLen())
	p.deliver()
	p.log.release()
	if p.rep() {
		p.counters.TokenRotation++
	}

	if quiet && sent == 0 && retrans == 0 && len(t.Rtr) == 0 && t.Aru == t.Seq && p.queueLen() == 0 {
		p.idleVisits++
	} else {
		p.idleVisits = 0
	}
	if p.idleVisits >= p.holdQuietNow() && p.holdsIdleToken(t) {
		// Idle ring: keep the token a while instead of spinning it
		// (corosync's token hold). Whoever wants to send asks for it
		// with a hold-cancel.
		p.holding = true
		p.timers.hold = p.now + p.holdTime()
		return
	}
	p.forwardToken()
}

// holdsIdleToken reports whether this member is the one that holds the
// token of an idle ring: the one that broadcast last (the representative
// on a ring without messages). corosync lets every member hold it in turn;
// one holder, holding as long as they all did together, keeps the same
// rotation period with fewer wake-ups (the others pass the token straight
// on), and the member most likely to send next (a lone sender, in
// particular) has the token at hand: its next message goes out at once,
// without asking anybody for the token.
func (p *Processor) holdsIdleToken(t *wire.Token) bool {
	if t.Seq == 0 {
		return p.rep()
	}
	return p.lastSentSeq == t.Seq
}

// lastSender reports whether, as far as we know, we broadcast the ring's
// last message (so that an idle token would be held here).
func (p *Processor) lastSender() bool {
	if p.log.high == 0 {
		return p.rep()
	}
	return p.lastSentSeq == p.log.high
}

// mayBeHeld reports whether the ring has been quiet long enough that some
// member may hold the token: holding takes holdQuiet quiet visits, and
// the members' counts of them differ by at most one or two (everybody sees
// the same token, one hop apart).
func (p *Processor) mayBeHeld() bool { return p.idleVisits+2 >= p.holdQuiet() }

// minHoldQuiet is the fewest quiet visits after which the holder may keep
// the token: at the third, every member has seen the token's aru equal to
// its seq at two visits in a row, so it has delivered every safe message;
// with fewer, a safe delivery elsewhere could wait for the hold period.
const minHoldQuiet = 3

// holdQuiet is seqno_unchanged_const, but never below minHoldQuiet.
func (p *Processor) holdQuiet() int { return max(p.t.SeqnoUnchangedConst, minHoldQuiet) }

// holdQuietNow is how many quiet visits the holder waits before keeping
// the token: holdQuiet, or a single one once the token's aru has covered
// the ring's last safe message at minHoldQuiet visits in a row (always,
// on a ring that carries only agreed messages). The three-visit rule
// exists for safe deliveries only: the token's aru covering the last safe
// message s at three consecutive visits of the holder means every member
// saw an aru of at least s at two consecutive visits of its own (the
// two-visit rule, see visit), so it can deliver s without the token. A
// quiet visit (aru equal to seq: every member holds, and has delivered,
// every agreed message) is then enough. A lone sender keeps the token
// after one rotation instead of three, so at a moderate message rate its
// next message finds the token at hand far more often.
//
// Not while datagrams are being lost: a lost token then costs the
// members a hold period more, and the ring keeps the usual rhythm.
func (p *Processor) holdQuietNow() int {
	if p.safeCovered >= minHoldQuiet && !p.lossy() {
		return 1
	}
	return p.holdQuiet()
}

// nextMayHoldEarly reports whether next, to which we forward t, may keep
// it by the early rule (holdQuietNow): nobody but next broadcast since our
// previous forward, so its next visit counts as quiet (see visit); next
// sent the ring's last message (the idle token's holder; the
// representative when there is none); and no member had messages queued
// at its last visit (the token's backlog), so next is not a busy sender
// about to broadcast again, whose lost token must be resent at the
// spinning ring's pace.
func (p *Processor) nextMayHoldEarly(t *wire.Token, next totem.NodeID) bool {
	if p.lossy() || t.Backlog != 0 || !p.mayBeHeldEarly() || !p.onlySentBy(next, p.fwdSeq, t.Seq) {
		return false
	}
	if t.Seq == 0 {
		return len(p.members) > 0 && p.members[0] == next
	}
	e := p.log.buf.get(t.Seq)
	return e != nil && e.sender == next
}

// onlySentBy reports whether every message after seq from up to seq to
// was broadcast by node (true when there is none): then node's next
// visit counts as quiet for the early hold (see visit). Bounded: a long
// run of messages is not an idle ring.
func (p *Processor) onlySentBy(node totem.NodeID, from, to uint64) bool {
	if to < from || to-from > maxEarlyRun {
		return false
	}
	for s := from + 1; s <= to; s++ {
		if e := p.log.buf.get(s); e == nil || e.sender != node {
			return false
		}
	}
	return true
}

// maxEarlyRun bounds the messages onlySentBy looks at.
const maxEarlyRun = 64

// mayBeHeldEarly reports whether the holder may keep the token after a
// single quiet visit (holdQuietNow): our count of visits covering the
// last safe message is within two of the holder's.
func (p *Processor) mayBeHeldEarly() bool { return p.safeCovered+2 >= minHoldQuiet }

// noteSafeCover counts the visits at which the received aru covered the
// ring's last safe message, restarting when a later safe message appears.
func (p *Processor) noteSafeCover(inAru uint64) {
	if p.log.lastSafe != p.coveredSafe {
		p.coveredSafe, p.safeCovered = p.log.lastSafe, 0
	}
	if inAru >= p.coveredSafe {
		p.safeCovered++
	} else {
		p.safeCovered = 0
	}
}

func (p *Processor) rep() bool { return len(p.members) > 0 && p.members[0] == p.id }

// holdTime is the hold period: as long as corosync's members hold the
// token in a rotation together (hold each), capped so that a rotation of
// an idle ring takes at most a quarter of the token timeout. A member's
// token timer runs from its previous receipt, so the rotation time is cut
// from the slack left to retransmit a lost token: with this cap at least
// three retransmissions fit before anybody declares the token lost,
// whatever the ring size.
func (p *Processor) holdTime() time.Duration {
	n := time.Duration(max(len(p.members), 1))
	return min(n*p.t.Hold, p.t.Token/4)
}

func (p *Processor) releaseHold() {
	if !p.holding {
		return
	}
	p.holding = false
	p.timers.hold = 0
	t := &p.tok
	if p.queueLen() > 0 {
		p.idleVisits = 0
		sent := p.broadcastNew(t, 0)
		p.updateAru(t, p.log.aru)
		p.updateFlow(t, sent, p.queueLen())
		p.deliver()
	}
	p.forwardToken()
}

func (p *Processor) forwardToken() {
	t := &p.tok
	t.TokenSeq++
	next := nextMember(p.tokenMembers(), p.id)
	start := p.arenaStart()
	p.arena = wire.AppendToken(p.arena, p.id, t)
	data := p.emit(next, start)
	p.emitCopies(next, data)
	mode := retransSpin
	if p.mayBeHeld() || p.nextMayHoldEarly(t, next) {
		mode = retransHold
	}
	p.armRetransmit(next, data, t.Seq, mode)
	p.lastFwdAt, p.fwdSpinning, p.fwdSeq = p.now, mode == retransSpin, t.Seq
}

// emitCopies sends the extra copies of a token that loss calls for.
func (p *Processor) emitCopies(to totem.NodeID, data []byte) {
	for range p.tokenCopies() - 1 {
		start := p.arenaStart()
		p.arena = append(p.arena, data...)
		p.emit(to, start)
	}
}

// tokenMembers are the members the token circulates among.
func (p *Processor) tokenMembers() []totem.NodeID {
	if p.state == totem.StateRecovery {
		return p.newMembers
	}
	return p.members
}

// armRetransmit keeps a copy of a token or commit token just sent: it is
// sent again every token_retransmit until the next member shows progress.
// A copy, because the driver may seal the datagram in place.
func (p *Processor) armRetransmit(to totem.NodeID, data []byte, seq uint64, mode retransMode) {
	p.retransData = append(p.retransData[:0], data...)
	p.retransTo = to
	p.retransSeq = seq
	p.retransMode = mode
	p.retransN = 0
	p.timers.retrans = p.now + p.retransDelay()
}

// retransDelay is how long to wait before the next retransmission of the
// token just sent (see retransMode). A retransmission that comes too early
// costs one duplicate token, which token_seq discards; one that comes too
// late costs the whole ring that long. corosync waits token_retransmit
// (238 ms at token = 1000 ms) whatever the ring does, so on a busy ring
// that rotates in a millisecond every lost token stalled all traffic for
// hundreds of rotations, and 30 % loss cut throughput a hundredfold.
func (p *Processor) retransDelay() time.Duration {
	std := p.retransmitInterval()
	switch p.retransMode {
	case retransSpin:
		if p.rotEst == 0 {
			return std
		}
		d := max(minFastRetrans, p.rotEst+4*p.rotVar)
		for i := 0; i < p.retransN && d < std; i++ {
			d *= 2
		}
		return min(d, std)
	case retransHold:
		if p.retransN == 0 && !p.lossy() {
			// Its holder keeps it a hold period before it comes back:
			// retransmitting earlier only sends duplicates (and wakes
			// two processors) at every rotation of an idle ring.
			// While datagrams are being lost, the budget for
			// retransmissions matters more than duplicates.
			return p.holdReturn()
		}
	}
	return std
}

// holdReturn is when, after we forward the token of an idle ring, it is
// overdue: its holder keeps it a hold period, plus half a retransmission
// interval of slack.
func (p *Processor) holdReturn() time.Duration {
	return p.holdTime() + p.retransmitInterval()/2
}

// lossy reports whether loss was seen recently.
func (p *Processor) lossy() bool { return p.visits < p.msgLossUntil || p.visits < p.tokLossUntil }

// retransmitInterval is token_retransmit, shortened when needed so that
// token_retransmits_before_loss_const + 2 retransmissions still fit in what
// an idle rotation (a hold period) leaves of the token timeout. corosync sizes token_retransmit for one hop; a token lost
// on the second hop of a rotation has less time left, and a ring that
// loses a few percent of its datagrams would otherwise see false token
// losses every minute or so. Shorter retransmission costs only duplicate
// tokens, which token_seq discards.
func (p *Processor) retransmitInterval() time.Duration {
	budget := p.t.Token - p.holdTime()
	return max(min(p.t.TokenRetransmit, budget/time.Duration(p.t.TokenRetransmitsBefore+2)), time.Millisecond)
}

func (p *Processor) retransmit() {
	switch p.retransMode {
	case retransSpin:
		p.noteTokenLoss()
	case retransHold:
		// Early retransmissions of a held token are expected; only an
		// overdue token is a sign of loss.
		if p.now-p.lastFwdAt >= p.holdReturn() {
			p.noteTokenLoss()
		}
	}
	start := p.arenaStart()
	p.arena = append(p.arena, p.retransData...)
	data := p.emit(p.retransTo, start)
	if p.retransMode != retransPlain {
		p.emitCopies(p.retransTo, data)
	}
	p.retransN++
	p.timers.retrans = p.now + p.retransDelay()
}

// serveRtr re-broadcasts the requested messages this processor holds and
// removes them from the request list. At most a window's worth per visit:
// the rest stays on the token for the next member, so that a burst of
// requests (a member that missed much) neither floods the network in one
// go nor keeps the token here long.
func (p *Processor) serveRtr(t *wire.Token, l *ringLog) int {
	keep := t.Rtr[:0]
	n := 0
	ring := t.Ring
	for _, s := range t.Rtr {
		if s == 0 || s > t.Seq || s < l.buf.base {
			// Nonsense, or released: released means every member held
			// it, so the request is stale.
			continue
		}
		if n >= p.window() {
			keep = append(keep, s)
			continue
		}
		if e := l.buf.get(s); e != nil {
			p.emitMcast(&wire.Mcast{Ring: ring, Seq: s, Sender: e.sender, Guarantee: e.guarantee,
				Flags: recoveryFlag(e), OrigRing: e.origRing, OrigSeq: e.origSeq, Payload: e.payload})
			p.counters.Retransmits++
			n++
			continue
		}
		keep = append(keep, s)
	}
	t.Rtr = keep
	return n
}

func recoveryFlag(e *entry) uint8 {
	if e.recovery {
		return wire.McastRecovery
	}
	return 0
}

// requestMissing adds the messages up to the token's seq that this
// processor lacks.
func (p *Processor) requestMissing(t *wire.Token, l *ringLog) {
	added := 0
	for s := l.aru + 1; s <= t.Seq && added < maxRtrAdd && len(t.Rtr) < maxRtr; s++ {
		if l.buf.has(s) || slices.Contains(t.Rtr, s) {
			continue
		}
		t.Rtr = append(t.Rtr, s)
		added++
		if s <= p.fwdSeq {
			// Broadcast before our previous visit and still missing: a
			// rotation later it is not merely overtaken, it was lost.
			p.noteMsgLoss()
		}
	}
}

// failedToReceive implements fail_recv_const: a processor whose aru stays
// below the ring's seq for that many visits cannot get some message, and
// forces a membership change (recovery gets it the message or excludes
// whoever cannot talk to whom).
func (p *Processor) failedToReceive(t *wire.Token) bool {
	if p.log.aru < t.Seq && p.log.aru == p.lastAru {
		p.aruStuck++
	} else {
		p.aruStuck = 0
	}
	p.lastAru = p.log.aru
	return p.aruStuck > p.t.FailRecvConst
}

func (p *Processor) broadcastNew(t *wire.Token, retrans int) int {
	n := p.allowance(t, p.queueLen(), retrans, p.log.aru)
	for i := 0; i < n; i++ {
		q := p.popQueue()
		t.Seq++
		e := entry{sender: p.id, guarantee: q.g, payload: q.payload}
		if !p.log.add(t.Seq, e) {
			p.broken("cannot store own message %d", t.Seq)
		}
		p.emitMcast(&wire.Mcast{Ring: p.ring, Seq: t.Seq, Sender: p.id, Guarantee: q.g, Payload: q.payload})
		p.counters.MessagesOut++
	}
	if n > 0 {
		p.lastSentSeq = t.Seq
	}
	return n
}

// updateAru applies the aru rule: lower it to my aru if I lack something;
// if I lowered it before (or nobody owns it), set it to my aru.
func (p *Processor) updateAru(t *wire.Token, myAru uint64) {
	if myAru < t.Aru || t.AruID == p.id || t.AruID == 0 {
		t.Aru = min(myAru, t.Seq)
		if t.Aru == t.Seq {
			t.AruID = 0
		} else {
			t.AruID = p.id
		}
	}
}

// storeMcast keeps a message of the log's ring (copying its payload).
func (p *Processor) storeMcast(l *ringLog, m *wire.Mcast) bool {
	if p.timers.retrans != 0 && m.Seq > p.retransSeq {
		// A member after us broadcast: the token we sent arrived.
		p.timers.retrans = 0
	}
	if m.Seq <= l.aru || m.Seq < l.buf.base || l.buf.has(m.Seq) {
		return false
	}
	e := entry{sender: m.Sender, guarantee: m.Guarantee, payload: p.copyBytes(m.Payload)}
	if m.Flags&wire.McastRecovery != 0 {
		e.recovery, e.origRing, e.origSeq = true, m.OrigRing, m.OrigSeq
	}
	return l.add(m.Seq, e)
}

// deliver hands over, in sequence order, every message it may: agreed ones
// as soon as everything before them was delivered, safe ones once they are
// stable too.
func (p *Processor) deliver() {
	l := &p.log
	if len(p.members) == 1 {
		l.safe = l.aru
	}
	for l.delivered < l.aru {
		s := l.delivered + 1
		e := l.buf.get(s)
		if e == nil {
			p.broken("message %d missing below aru %d", s, l.aru)
		}
		if e.recovery {
			// Carried an old ring's message during recovery: not part of
			// this configuration's stream.
			l.delivered = s
			continue
		}
		if e.guarantee == totem.Safe && s > l.safe {
			return
		}
		p.deliverEntry(e)
		l.delivered = s
	}
}

// sendAlone delivers queued messages of a one-member ring: no token, no
// network, every message is at once agreed and safe.
func (p *Processor) sendAlone() {
	l := &p.log
	for p.queueLen() > 0 {
		q := p.popQueue()
		s := l.high + 1
		if !l.add(s, entry{sender: p.id, guarantee: q.g, payload: q.payload}) {
			p.broken("cannot store own message %d", s)
		}
		p.counters.MessagesOut++
	}
	p.deliver()
	l.release()
}

// onLeave handles a leave in any state: the leaver is excluded at once.
func (p *Processor) onLeave(from totem.NodeID, l *wire.Leave) {
	p.noteSeq(l.MaxSeq)
	if p.staleFromMember(from, l.MaxSeq) {
		return
	}
	switch p.state {
	case totem.StateOperational:
		if !setContains(p.members, from) {
			return
		}
		p.enterGather("leave")
	case totem.StateCommit, totem.StateRecovery:
		if !setContains(p.newMembers, from) {
			if setContains(p.proc, from) {
				p.fail = setAdd(p.fail, from)
			}
			return
		}
		p.enterGather("leave")
	}
	if setContains(p.proc, from) && !setContains(p.fail, from) {
		p.fail = setAdd(p.fail, from)
		p.setsChanged()
	}
}
