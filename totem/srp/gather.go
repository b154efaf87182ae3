package srp

import (
	"slices"
	"time"

	"ringmaster/totem"
	"ringmaster/totem/wire"
)

// Gather: processors broadcast join messages with the set of processors
// they believe alive (proc) and those they gave up on (fail), merge what
// they receive, and agree once every processor of proc − fail has sent a
// join with exactly their sets. The lowest ID of that set then forms the
// ring with a commit token.
//
// Safety never depends on the timers: a ring forms only on identical sets
// from all of its members, whatever was excluded when. The timers decide
// only how quickly silent processors are given up on: after `consensus`
// for a processor that spoke in this gather but does not agree, and after
// the much shorter FastExclusion for one that has sent nothing at all since
// it entered our view (typically the processor whose crash lost the
// token); see README "fast exclusion".

func (p *Processor) enterGather(reason string) {
	prev := p.state
	if prev == totem.StateOperational || prev == "" {
		p.proc = slices.Clone(p.members)
		p.fail = nil
		p.counters.Gathers++
	}
	// Anything formed after the regular ring is abandoned; its log and
	// the old messages it brought stay in p.log.
	p.newRing, p.newMembers, p.trans = totem.RingID{}, nil, nil
	p.rec.reset()
	p.recPending, p.recNext = p.recPending[:0], 0
	clear(p.recCovered)
	p.firstTokenOut = false
	p.holding = false

	p.state = totem.StateGather
	p.step = stepGather
	p.tick = tickGather
	p.proc = setAdd(p.proc, p.id)
	p.fail = setRemove(p.fail, p.id)
	for _, q := range p.outsiders {
		if !setContains(p.fail, q) {
			p.proc = setAdd(p.proc, q)
		}
	}
	p.outsiders = p.outsiders[:0]
	p.gatherStart = p.now
	clear(p.procSince)
	f := p.t.FastExclusion()
	for _, q := range p.proc {
		p.procSince[q] = p.now
		// Coming back from a failed commit or recovery, whoever spoke
		// within the last fast-exclusion period is not silent: only the
		// processor that stopped talking (typically one that crashed and
		// stalled the commit) may be excluded fast.
		if h, ok := p.heard[q]; ok && prev != totem.StateOperational && p.now-h < f {
			p.heard[q] = p.now
		}
	}
	p.timers = timers{}
	p.joinReason = reason
	p.setsChanged()
}

// setsChanged restarts agreement after proc or fail changed.
func (p *Processor) setsChanged() {
	clear(p.consensus)
	p.joinDirty = true
	p.timers.consensus = p.now + p.t.Consensus
}

func stepGather(p *Processor, h wire.Header) {
	switch h.Type {
	case wire.TypeJoin:
		p.gatherJoin(h.From, &p.inJoin)
	case wire.TypeCommit:
		p.gatherCommit(&p.inCommit)
	case wire.TypeMcast:
		// Late messages of the old ring are still welcome until commit
		// freezes what we report.
		if m := &p.inMc; m.Ring == p.ring && p.ring.Rep != 0 {
			p.storeMcast(&p.log, m)
		}
	case wire.TypeMergeDetect:
		p.noteSeq(p.inMD.MaxSeq)
		if !setContains(p.fail, h.From) && !p.staleFromMember(h.From, p.inMD.MaxSeq) {
			p.addProc(h.From)
		}
	case wire.TypeLeave:
		p.onLeave(h.From, &p.inLeave)
	}
}

func tickGather(p *Processor) {
	if p.due(p.timers.joinSend) {
		p.timers.joinSend = 0
		p.emitJoin()
	}
	if p.due(p.timers.join) {
		p.joinDirty = true
	}
	if p.due(p.timers.fast) {
		p.fastExclusion()
	}
	if p.due(p.timers.consensus) {
		p.consensusTimeout()
	}
}

// gatherJoin merges a join into our sets (the paper's join rules).
func (p *Processor) gatherJoin(from totem.NodeID, j *wire.Join) {
	// A JoinCommitted answer carries the seq of the ring its sender is
	// forming. Noting it (or that of a commit token we do not take,
	// gatherCommit) would make our joins repeat it, and to the members in
	// commit a join whose MaxSeq reached the new ring means one that took
	// the token and gave up (stepNewRing): they gathered again. Where the
	// commit token takes a while to go round (a big ring, a busy machine)
	// every commit died that way and the ring never formed (sim
	// TestFormationUnderJitter). The next representative still learns the
	// seq: whoever took the token reports it in its own joins.
	if j.Flags&wire.JoinCommitted == 0 {
		p.noteSeq(j.MaxSeq)
	}
	if setContains(p.fail, from) || p.staleFromMember(from, j.MaxSeq) {
		return
	}
	if setEqual(j.Proc, p.proc) && setEqual(j.Fail, p.fail) {
		p.consensus[from] = true
		return
	}
	if setSubset(j.Proc, p.proc) && setSubset(j.Fail, p.fail) {
		return // nothing we do not know; its next join will agree
	}
	changed := false
	for _, q := range j.Proc {
		if !setContains(p.proc, q) {
			p.proc = setAdd(p.proc, q)
			p.procSince[q] = p.now
			changed = true
		}
	}
	if setContains(j.Fail, p.id) {
		// It gave up on us: we give up on it, so the two sides form
		// separate rings (and merge later) instead of arguing forever.
		if !setContains(p.fail, from) {
			p.fail = setAdd(p.fail, from)
			changed = true
		}
	} else if setContains(p.members, from) {
		// Adopt its verdicts (the paper's rule): sets only grow during a
		// gather, so all live processors converge on the union. Only
		// from a member of our own ring, as corosync does: a processor
		// coming from elsewhere (another partition, or back from a
		// pause with a backlog of stale views) may have failed ours for
		// reasons that do not hold here, and adopting its verdicts
		// splits a healthy ring; each such split hands out more
		// verdicts, and on an ordered network (loopback) that fed a
		// storm of one-node rings. Its view still joins ours through
		// proc; a disagreement ends with the consensus timeout, in
		// separate rings that merge.
		for _, q := range j.Fail {
			if q != p.id && !setContains(p.fail, q) {
				p.fail = setAdd(p.fail, q)
				changed = true
			}
		}
	}
	if !changed {
		return
	}
	p.setsChanged()
	if setEqual(j.Proc, p.proc) && setEqual(j.Fail, p.fail) {
		p.consensus[from] = true
	}
}

// addProc adds a processor that showed itself (merge-detect) to proc.
func (p *Processor) addProc(q totem.NodeID) {
	if setContains(p.proc, q) {
		return
	}
	p.proc = setAdd(p.proc, q)
	p.procSince[q] = p.now
	p.setsChanged()
}

// sendJoin broadcasts our sets now, or after a random send_join delay.
func (p *Processor) sendJoin() {
	p.joinDirty = false
	// Repeat joins at least four times per fast-exclusion period: a live
	// processor must not look silent because two or three joins in a row
	// were lost.
	p.timers.join = p.now + min(p.t.Join, p.t.FastExclusion()/4)
	if p.t.SendJoin > 0 {
		if p.timers.joinSend == 0 {
			p.timers.joinSend = p.now + time.Duration(p.rng.Int64N(int64(p.t.SendJoin)))
		}
		return
	}
	p.emitJoin()
}

func (p *Processor) emitJoin() {
	start := p.arenaStart()
	p.arena = wire.AppendJoin(p.arena, p.id, &wire.Join{Ring: p.ring, MaxSeq: p.maxSeq, Proc: p.proc, Fail: p.fail})
	p.emit(0, start)
}

// unheard reports whether nothing came from q since it entered our view.
func (p *Processor) unheard(q totem.NodeID) bool {
	h, ok := p.heard[q]
	return !ok || h < p.procSince[q]
}

// armFast sets the fast-exclusion timer for the earliest processor that
// has been silent since it entered proc.
func (p *Processor) armFast() {
	p.timers.fast = 0
	f := p.t.FastExclusion()
	for _, q := range p.proc {
		if q == p.id || setContains(p.fail, q) || !p.unheard(q) {
			continue
		}
		if d := p.procSince[q] + f; p.timers.fast == 0 || d < p.timers.fast {
			p.timers.fast = d
		}
	}
}

func (p *Processor) fastExclusion() {
	f := p.t.FastExclusion()
	changed := false
	for _, q := range p.proc {
		if q != p.id && !setContains(p.fail, q) && p.unheard(q) && p.procSince[q]+f <= p.now {
			p.fail = setAdd(p.fail, q)
			changed = true
		}
	}
	if changed {
		p.setsChanged()
	}
	p.armFast()
}

// consensusTimeout gives up on every processor that has not agreed. If
// everybody agreed but no commit token came, the agreement is forgotten
// too (setsChanged): the next timeout then excludes whoever (typically the
// representative) stopped talking.
func (p *Processor) consensusTimeout() {
	for _, q := range p.proc {
		if q != p.id && !setContains(p.fail, q) && !p.consensus[q] {
			p.fail = setAdd(p.fail, q)
		}
	}
	p.setsChanged()
}

// checkConsensus forms the ring if everybody in proc − fail agrees and we
// are its lowest ID; the others wait for the commit token.
func (p *Processor) checkConsensus() {
	if p.state != totem.StateGather {
		return
	}
	for _, q := range p.proc {
		if q != p.id && !setContains(p.fail, q) && !p.consensus[q] {
			return
		}
	}
	memb := setMinus(p.proc, p.fail)
	if memb[0] != p.id {
		return
	}
	// The new ring's seq is above every seq any member reported (joins
	// carry MaxSeq) and above any we persisted, so ring IDs never repeat
	// and grow on every member (corosync adds 4).
	seq := max(p.maxSeq, p.ring.Seq, p.persisted) + 4
	p.maxSeq = seq
	c := wire.Commit{Ring: totem.RingID{Rep: p.id, Seq: seq}, Round: wire.CommitFill,
		Members: memb, Entries: make([]wire.CommitEntry, len(memb))}
	p.enterCommit(&c)
}

// gatherCommit accepts a commit token for exactly our agreed set.
func (p *Processor) gatherCommit(c *wire.Commit) {
	if c.Round != wire.CommitFill || c.Ring.Seq <= p.ring.Seq {
		return
	}
	i, ok := slices.BinarySearch(c.Members, p.id)
	if !ok || c.Entries[i].Filled {
		return
	}
	if !setEqual(c.Members, setMinus(p.proc, p.fail)) {
		return
	}
	p.enterCommit(c)
}
