package srp

import (
	"slices"

	"ringmaster/totem"
	"ringmaster/totem/wire"
)

// Commit and recovery.
//
// The commit token goes around the new ring twice. In round 1 every member
// fills in its entry (old ring, aru, highest seq, safe aru) and enters
// commit: from then on its old ring's log is frozen (late old messages are
// ignored), because what it reported decides what will be re-broadcast.
// When the representative gets the full token back, round 2 tells every
// member every entry; each enters recovery. When round 2 is back at the
// representative, it starts the new ring's token.
//
// Recovery: the members that come from the same old ring (the
// transitional configuration) re-broadcast, inside the new ring, the old
// messages above the lowest aru among them, so that all of them end up
// holding the same old messages. A message already seen re-broadcast is
// not sent again. Then each delivers, in order:
//
//  1. old messages up to the first hole, and safe ones only up to the
//     highest seq some member had proved stable (held by every old member);
//  2. the transitional configuration;
//  3. the remaining old messages, skipping holes (all transitional
//     members hold them);
//  4. the regular configuration of the new ring.
//
// All transitional members compute this from the same messages and the same
// commit token, hence deliver the same set (virtual synchrony). A member
// only finishes once the token proves that every member holds every
// recovery message and nobody has anything left to re-broadcast.

func (p *Processor) enterCommit(c *wire.Commit) {
	i, ok := slices.BinarySearch(c.Members, p.id)
	if !ok {
		p.broken("commit token for %v without us", c.Members)
	}
	p.commit.Ring, p.commit.Round = c.Ring, c.Round
	p.commit.Members = append(p.commit.Members[:0], c.Members...)
	p.commit.Entries = append(p.commit.Entries[:0], c.Entries...)
	p.commit.Entries[i] = wire.CommitEntry{Filled: true, OldRing: p.ring, Aru: p.log.aru,
		HighSeq: p.log.high, SafeAru: min(p.log.safe, p.log.aru)}
	p.newRing = c.Ring
	p.newMembers = slices.Clone(c.Members)
	p.noteSeq(c.Ring.Seq)
	p.persist(c.Ring.Seq)

	p.state = totem.StateCommit
	p.step = stepCommit
	p.tick = tickNewRing
	p.timers = timers{tokenLoss: p.now + p.t.Token}
	if len(p.newMembers) == 1 {
		p.commit.Round = wire.CommitInstall
		p.enterRecovery()
		return
	}
	p.sendCommit()
}

func (p *Processor) sendCommit() {
	next := nextMember(p.newMembers, p.id)
	start := p.arenaStart()
	p.arena = wire.AppendCommit(p.arena, p.id, &p.commit)
	data := p.emit(next, start)
	p.armRetransmit(next, data, 0, retransPlain)
}

func stepCommit(p *Processor, h wire.Header) {
	switch h.Type {
	case wire.TypeCommit:
		c := &p.inCommit
		if c.Ring != p.newRing {
			return
		}
		switch {
		case c.Round == wire.CommitFill && p.id == p.newRing.Rep && allFilled(c):
			p.commit.Entries = append(p.commit.Entries[:0], c.Entries...)
			p.commit.Round = wire.CommitInstall
			p.enterRecovery()
		case c.Round == wire.CommitInstall && p.id != p.newRing.Rep:
			p.commit.Round = c.Round
			p.commit.Entries = append(p.commit.Entries[:0], c.Entries...)
			p.enterRecovery()
		}
	default:
		p.stepNewRing(h)
	}
}

// filledEntry reports whether member q has filled its entry of the commit
// token as we last saw it: it took the token, so every join it sent since
// carries the new ring's seq.
func (p *Processor) filledEntry(q totem.NodeID) bool {
	i, ok := slices.BinarySearch(p.commit.Members, q)
	return ok && p.commit.Entries[i].Filled
}

func allFilled(c *wire.Commit) bool {
	for _, e := range c.Entries {
		if !e.Filled {
			return false
		}
	}
	return true
}

// stepNewRing handles what commit and recovery treat alike.
func (p *Processor) stepNewRing(h wire.Header) {
	if p.state == totem.StateRecovery && setContains(p.newMembers, h.From) && p.sendersRing(h) == p.newRing {
		// The sender installed the new ring: it found recovery complete,
		// which proves every member holds every recovery message and
		// nobody has anything left to re-broadcast. So we may complete
		// too (as on a token with the recovered flag), then handle its
		// message as a member of the new ring. Otherwise a member that
		// gathers right after installing would make all the others give
		// up a ring it already delivered.
		p.finishRecovery()
		p.step(p, h)
		return
	}
	switch h.Type {
	case wire.TypeJoin:
		j := &p.inJoin
		p.noteSeq(j.MaxSeq)
		if setContains(p.fail, h.From) {
			return
		}
		if j.Flags&wire.JoinCommitted != 0 {
			return // another member forming a ring answering a gatherer
		}
		if setContains(p.newMembers, h.From) {
			// A member that took the commit token and sends joins again
			// (MaxSeq reached the new ring), or one with news, gave up on
			// the new ring: it will not be formed, so gather again now
			// rather than after a token timeout.
			//
			// Not for news older than the commit token (MaxSeq below the
			// new ring) that is out of date or a verdict naming us
			// (corosync ignores every join in commit and recovery that
			// does not carry the new ring's seq):
			//   - a member that filled its entry took the token after
			//     sending the join, so its news is out of date;
			//   - acting on a verdict against us fails its sender
			//     (gatherJoin) and broadcasts that counter-verdict. The
			//     member meanwhile may have gathered again and taken our
			//     token; it then gets our verdict while committing the
			//     next ring, fails us and answers in kind: two processors
			//     crossing verdicts formed one-node rings for ever (sim
			//     seeds 11292, 1500; TestCommitKeepsRingDespiteOlderVerdict).
			//     A verdict that still holds costs a token timeout
			//     instead: its sender does not take the token.
			gaveUp := j.MaxSeq >= p.newRing.Seq
			news := !setSubset(j.Proc, p.proc) || !setSubset(j.Fail, p.fail)
			if gaveUp || news && !p.filledEntry(h.From) && !setContains(j.Fail, p.id) {
				p.enterGather("member gave up the new ring")
				p.gatherJoin(h.From, j)
				return
			}
			if setEqual(j.Proc, p.proc) && setEqual(j.Fail, p.fail) {
				// It still gathers: it has not got the commit token yet
				// and may never have heard from us (we stopped sending
				// joins when we agreed). Answer it alone, so that it
				// agrees too and does not exclude us as silent while
				// the commit token is retransmitted to it.
				start := p.arenaStart()
				p.arena = wire.AppendJoin(p.arena, p.id, &wire.Join{Ring: p.ring, MaxSeq: p.maxSeq,
					Flags: wire.JoinCommitted, Proc: p.proc, Fail: p.fail})
				p.emit(h.From, start)
			}
			return
		}
		if !p.staleFromMember(h.From, j.MaxSeq) && !setContains(j.Fail, p.id) {
			// An outsider: finish this ring first (it takes a few
			// token hops), then gather with it.
			p.addOutsider(h.From)
		}
	case wire.TypeMergeDetect:
		md := &p.inMD
		p.noteSeq(md.MaxSeq)
		if md.Ring != p.ring && md.Ring != p.newRing && !setContains(p.newMembers, h.From) &&
			!p.staleFromMember(h.From, md.MaxSeq) {
			p.addOutsider(h.From)
		}
	case wire.TypeLeave:
		p.onLeave(h.From, &p.inLeave)
	}
}

func (p *Processor) addOutsider(q totem.NodeID) {
	p.outsiders = setAdd(p.outsiders, q)
}

// sendersRing is the regular ring a join, merge-detect or leave says its
// sender is in.
func (p *Processor) sendersRing(h wire.Header) totem.RingID {
	switch h.Type {
	case wire.TypeJoin:
		return p.inJoin.Ring
	case wire.TypeMergeDetect:
		return p.inMD.Ring
	case wire.TypeLeave:
		return p.inLeave.Ring
	}
	return totem.RingID{}
}

// tickNewRing: commit and recovery give up after a token timeout without
// progress.
func tickNewRing(p *Processor) {
	if p.due(p.timers.tokenLoss) {
		p.counters.TokenLosses++
		p.enterGather("no progress forming ring")
		return
	}
	if p.due(p.timers.retrans) {
		p.retransmit()
	}
}

func (p *Processor) enterRecovery() {
	p.state = totem.StateRecovery
	p.step = stepRecovery
	p.tick = tickNewRing
	p.timers = timers{tokenLoss: p.now + p.t.Token}

	// The transitional configuration: members coming from our old ring.
	// A processor that never had a ring (Rep 0) shares it with nobody.
	p.trans = p.trans[:0]
	low := p.log.aru
	p.recMaxSafe = min(p.log.safe, p.log.aru)
	for i, m := range p.newMembers {
		e := &p.commit.Entries[i]
		if m == p.id || (p.ring.Rep != 0 && e.OldRing == p.ring) {
			p.trans = append(p.trans, m)
			low = min(low, e.Aru)
			p.recMaxSafe = max(p.recMaxSafe, e.SafeAru)
		}
	}
	// Everything above the lowest aru that we hold may be missing
	// somewhere: candidates for re-broadcast.
	p.recPending, p.recNext = p.recPending[:0], 0
	if p.ring.Rep != 0 {
		for s := max(low+1, p.log.buf.base); s <= p.log.high; s++ {
			if p.log.buf.has(s) {
				p.recPending = append(p.recPending, s)
			}
		}
	}
	if p.recCovered == nil {
		p.recCovered = make(map[uint64]bool)
	}
	clear(p.recCovered)
	p.rec.reset()
	p.resetVisits()
	p.firstTokenOut = false

	if len(p.newMembers) == 1 {
		p.finishRecovery()
		p.sendAlone()
		return
	}
	p.sendCommit()
}

// resetVisits forgets token history: a new ring's token starts afresh.
func (p *Processor) resetVisits() {
	p.lastTokSeq = 0
	p.havePrev = false
	p.prevInSeq, p.prevInAru = 0, 0
	p.lastFcc, p.lastBacklog, p.ringBacklog = 0, 0, 0
	p.idleVisits, p.aruStuck, p.lastAru = 0, 0, 0
	p.safeCovered, p.coveredSafe = 0, 0
	p.holding = false
	p.lastFwdAt, p.fwdSpinning, p.fwdSeq, p.lastSentSeq = 0, false, 0, 0
	p.tok = wire.Token{Rtr: p.tok.Rtr[:0]}
}

func stepRecovery(p *Processor, h wire.Header) {
	switch h.Type {
	case wire.TypeCommit:
		c := &p.inCommit
		if c.Ring == p.newRing && c.Round == wire.CommitInstall && p.id == p.newRing.Rep && !p.firstTokenOut {
			// Round 2 is back: every member is in recovery. Start the
			// new ring's token with our own first visit.
			p.firstTokenOut = true
			p.tokenArrived()
			p.tok = wire.Token{Ring: p.newRing, Rtr: p.tok.Rtr[:0]}
			p.visit()
		}
	case wire.TypeToken:
		t := &p.inTok
		if t.Ring != p.newRing || !p.acceptToken(t, &p.rec) {
			return
		}
		p.visit()
	case wire.TypeMcast:
		if m := &p.inMc; m.Ring == p.newRing {
			p.storeRecovery(m)
		}
	default:
		p.stepNewRing(h)
	}
}

// storeRecovery keeps a message of the new ring; an old message of our old
// ring carried inside also goes into the old ring's log.
func (p *Processor) storeRecovery(m *wire.Mcast) {
	if !p.storeMcast(&p.rec, m) || m.Flags&wire.McastRecovery == 0 {
		return
	}
	if p.ring.Rep == 0 || m.OrigRing != p.ring {
		return
	}
	p.recCovered[m.OrigSeq] = true
	e := p.rec.buf.get(m.Seq)
	p.log.add(m.OrigSeq, entry{sender: e.sender, guarantee: e.guarantee, payload: e.payload})
}

// recoveryPending reports whether we still have old messages to
// re-broadcast (skipping those somebody else already did).
func (p *Processor) recoveryPending() bool {
	for p.recNext < len(p.recPending) && p.recCovered[p.recPending[p.recNext]] {
		p.recNext++
	}
	return p.recNext < len(p.recPending)
}

func (p *Processor) recoveryVisit() {
	t := &p.tok
	p.adaptFlow(t)
	retrans := p.serveRtr(t, &p.rec)
	p.requestMissing(t, &p.rec)
	sent := 0
	if p.recoveryPending() {
		n := p.allowance(t, len(p.recPending)-p.recNext, retrans, p.rec.aru)
		for sent < n && p.recoveryPending() {
			s := p.recPending[p.recNext]
			p.recNext++
			e := p.log.buf.get(s)
			if e == nil {
				p.broken("old message %d vanished during recovery", s)
			}
			t.Seq++
			re := entry{recovery: true, sender: e.sender, guarantee: e.guarantee, origRing: p.ring, origSeq: s, payload: e.payload}
			if !p.rec.add(t.Seq, re) {
				p.broken("cannot store own recovery message %d", t.Seq)
			}
			p.recCovered[s] = true
			p.emitMcast(&wire.Mcast{Ring: p.newRing, Seq: t.Seq, Sender: e.sender, Guarantee: e.guarantee,
				Flags: wire.McastRecovery, OrigRing: p.ring, OrigSeq: s, Payload: e.payload})
			p.counters.Retransmits++
			sent++
		}
		if sent > 0 {
			p.lastSentSeq = t.Seq
		}
	}
	pending := p.recoveryPending()
	p.updateAru(t, p.rec.aru)
	p.updateFlow(t, sent+retrans, len(p.recPending)-p.recNext)
	switch {
	case sent > 0 || pending:
		t.Busy = p.id
	case t.Busy == p.id:
		// A full rotation since we last had something, and nobody
		// else claimed the flag meanwhile.
		t.Busy = 0
	}
	p.forwardToken()
}

// finishRecovery delivers what the old configuration leaves behind and
// installs the new ring (see the comment at the top of this file).
func (p *Processor) finishRecovery() {
	old := &p.log
	oldMembers := p.members
	if p.ring.Rep != 0 {
		for old.delivered < old.high {
			s := old.delivered + 1
			e := old.buf.get(s)
			if e == nil || (e.guarantee == totem.Safe && !e.recovery && s > p.recMaxSafe) {
				break
			}
			if !e.recovery {
				p.deliverEntry(e)
			}
			old.delivered = s
		}
		p.emitEvent(Event{Kind: EventConfChange, Conf: totem.ConfChange{
			Kind: totem.Transitional, Ring: p.newRing, Members: slices.Clone(p.trans),
			Left: setMinus(oldMembers, p.trans), Joined: []totem.NodeID{},
		}})
		for s := old.delivered + 1; s <= old.high; s++ {
			if e := old.buf.get(s); e != nil && !e.recovery {
				p.deliverEntry(e)
			}
		}
	}
	// As corosync does: the transitional configuration says who left,
	// the regular one who joined (relative to the transitional one).
	joined := setMinus(p.newMembers, p.trans)
	if p.ring.Rep == 0 {
		joined = slices.Clone(p.newMembers)
	}
	p.emitEvent(Event{Kind: EventConfChange, Conf: totem.ConfChange{
		Kind: totem.Regular, Ring: p.newRing, Members: slices.Clone(p.newMembers),
		Left: []totem.NodeID{}, Joined: joined,
	}})

	p.ring, p.members = p.newRing, p.newMembers
	p.log, p.rec = p.rec, p.log
	p.rec.reset()
	p.proc, p.fail = slices.Clone(p.members), nil
	p.newRing, p.newMembers = totem.RingID{}, nil
	p.recPending, p.recNext = p.recPending[:0], 0
	clear(p.recCovered)
	p.enterOperational()
	p.deliver()
}
