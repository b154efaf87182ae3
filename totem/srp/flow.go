package srp

import "ringmaster/totem/wire"

// Flow control: how many new messages a member may broadcast when it holds
// the token. The token carries two ring-wide sums that every member keeps
// current with its own contribution of the last visit (updateFlow): fcc,
// the messages broadcast in the last rotation, and backlog, the messages
// waiting in the members' queues. From them and its own queue a member
// takes its allowance: at most max_messages, within what window_size
// leaves, its fair share of the backlog, and a bound on how far seq may
// run ahead of the ring's aru. The window itself adapts between window_size
// and FlowScale times that (adaptFlow). The driver chooses FlowScale from
// the frame size (totem/ring scaleFlow); operational.go calls these at
// every visit (operationalVisit, broadcastNew).

// allowance is how many messages flow control lets this processor
// broadcast at this visit: at most max_messages, within what window_size
// leaves after the others' broadcasts of the last rotation and this
// visit's retransmissions, its fair share of the ring-wide backlog, and
// never so far ahead of the ring's aru that receive buffers grow without
// bound. At least one when something is queued, so nobody starves (the
// window is exceeded by at most one message per member and rotation).
func (p *Processor) allowance(t *wire.Token, queued, retrans int, aru uint64) int {
	if queued == 0 {
		return 0
	}
	others := max(int(t.FCC)-p.lastFcc, 0)
	window := p.window()
	n := min(p.t.MaxMessages*p.flow/flowUnit, window-others-retrans)
	if backlog := max(int(t.Backlog)-p.lastBacklog, 0) + queued; backlog > window {
		n = min(n, window*queued/backlog)
	}
	n = min(max(n, 1), queued)
	limit := min(t.Aru, aru) + p.seqSpan()
	if t.Seq >= limit {
		return 0
	}
	return int(min(uint64(n), limit-t.Seq))
}

// seqSpan bounds how far the ring's seq may run ahead of its aru.
func (p *Processor) seqSpan() uint64 {
	return uint64(max(16*p.t.WindowSize*p.cfg.FlowScale, 1024))
}

// flowUnit: p.flow counts eighths of window_size and max_messages.
const flowUnit = 8

// window is the ring-wide number of messages per rotation this processor
// works with now (see adaptFlow).
func (p *Processor) window() int { return p.t.WindowSize * p.flow / flowUnit }

// adaptFlow sizes the window between window_size and FlowScale times
// that: back to window_size at any sign of loss — a request on the token
// for a message broadcast before our previous visit (missing for a whole
// rotation: lost, not merely overtaken), or a loss of our own seen within
// lossMemory visits — and up again by an eighth of window_size per clean
// visit. A big window only pays off on a clean network: with corosync's
// window the ring keeps up with 30 % loss, with six times that it asks
// for more retransmissions per rotation than the token can carry
// (maxRtr) and falls behind. Without FlowScale (1) nothing changes.
func (p *Processor) adaptFlow(t *wire.Token) {
	top := p.cfg.FlowScale * flowUnit
	if top == flowUnit {
		return
	}
	lost := p.visits < p.msgLossUntil
	for _, s := range t.Rtr {
		lost = lost || s <= p.fwdSeq
	}
	switch {
	case lost:
		p.flow = flowUnit
	case p.flow < top:
		p.flow++
	}
}

// updateFlow replaces my previous contribution to fcc and backlog with
// this visit's.
func (p *Processor) updateFlow(t *wire.Token, sent, queued int) {
	t.FCC = uint32(min(max(int(t.FCC)-p.lastFcc+sent, 0), 1<<31))
	t.Backlog = uint32(min(max(int(t.Backlog)-p.lastBacklog+queued, 0), 1<<31))
	p.lastFcc, p.lastBacklog = sent, queued
	p.ringBacklog = t.Backlog
}
