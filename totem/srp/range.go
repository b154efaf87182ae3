package srp

import (
	"errors"
	"fmt"

	"ringmaster/totem/wire"
)

// maxSeqLead bounds how far above the highest ring sequence number this
// processor knows (maxSeq: its own, persisted, and every one it accepted)
// a ring sequence number from the wire may lie. The decoders bound them
// absolutely (wire.MaxRingSeq); this bounds the jump: one datagram can
// raise every node's ring sequence by at most 2^32, so reaching the
// absolute limit takes 65,536 forged datagrams, not one. Real rings add 4
// per configuration: two partitions that churned apart for years at ten
// configurations per second stay well within it, and a node with an empty
// state directory joins a cluster unless that cluster went through 2^30
// configurations.
const maxSeqLead = 1 << 32

// inRange checks the ring sequence numbers of a decoded datagram against
// maxSeqLead; it returns an error wrapping wire.ErrRange.
func (p *Processor) inRange(h wire.Header) error {
	limit := p.maxSeq + maxSeqLead
	check := func(what string, seqs ...uint64) error {
		for _, s := range seqs {
			if s > limit {
				return fmt.Errorf("srp: node %d: %s from %d: ring seq %d more than %d above the highest known %d: %w",
					p.id, h.Type, h.From, s, uint64(maxSeqLead), p.maxSeq, wire.ErrRange)
			}
		}
		return nil
	}
	switch h.Type {
	case wire.TypeJoin:
		return check("join", p.inJoin.MaxSeq, p.inJoin.Ring.Seq)
	case wire.TypeMergeDetect:
		return check("merge-detect", p.inMD.MaxSeq, p.inMD.Ring.Seq)
	case wire.TypeLeave:
		return check("leave", p.inLeave.MaxSeq, p.inLeave.Ring.Seq)
	case wire.TypeCommit:
		if err := check("commit", p.inCommit.Ring.Seq); err != nil {
			return err
		}
		for i := range p.inCommit.Entries {
			if err := check("commit entry", p.inCommit.Entries[i].OldRing.Seq); err != nil {
				return err
			}
		}
	}
	return nil
}

// countRejected counts a datagram Step rejected: out of range or malformed.
func (p *Processor) countRejected(err error) {
	if errors.Is(err, wire.ErrRange) {
		p.counters.OutOfRange++
	} else {
		p.counters.Malformed++
	}
}
