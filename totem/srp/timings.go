package srp

import "time"

// SetTimings replaces the protocol's timeouts and constants while it runs
// (a cluster-wide `ringctl config reload` changes token, consensus, join,
// window_size, ... on every member at the same point of the ordered
// stream). Zero fields take their defaults, as in Config.
//
// Every timer is computed from the timings when it is armed, so the next
// one armed uses the new values. A timer already running is moved so that
// the change can never make it fire early:
//
//   - a longer timeout extends it by the difference, as if it had been
//     armed with the new value (a token timer armed at T0 with token
//     1000 ms fires at T0 + 3000 ms once token becomes 3000 ms);
//   - a shorter timeout counts from the change at the latest: the timer
//     fires at min(its deadline, now + new timeout). Counting it from
//     when it was armed would declare a token lost that is only being
//     held (the holder kept it for the old, longer hold period);
//   - a held token is released no later than the new hold period allows
//     (the other members already count the new, maybe shorter, token).
//
// Safety never depends on timer values (README "Fast exclusion"), so a
// change can at worst cost an unneeded membership change, never agreed
// order or virtual synchrony. The members apply the change at slightly
// different real times (each when it delivers the reload's commit, which
// they all receive in the same multicast): TestSetTimingsLive changes
// the token of busy and idle rings between 200 ms and 3 s without a
// membership change.
func (p *Processor) SetTimings(now time.Duration, t Timings) {
	p.advance(now)
	if p.left {
		return
	}
	t.fill()
	old := p.t
	p.t = t
	shift := func(at *time.Duration, from, to time.Duration) {
		switch {
		case *at == 0 || from == to:
		case to > from:
			*at += to - from
		default:
			*at = min(*at, p.now+to)
		}
	}
	shift(&p.timers.tokenLoss, old.Token, t.Token)
	shift(&p.timers.consensus, old.Consensus, t.Consensus)
	shift(&p.timers.merge, old.Merge, t.Merge)
	if p.timers.join != 0 {
		p.timers.join = min(p.timers.join, p.now+min(t.Join, t.FastExclusion()/4))
	}
	if p.holding && p.timers.hold != 0 {
		p.timers.hold = max(min(p.timers.hold, p.now+p.holdTime()), p.now)
	}
	if p.timers.retrans != 0 {
		p.timers.retrans = max(min(p.timers.retrans, p.now+p.retransDelay()), p.now)
	}
	p.afterInput() // in gather: re-arms fast exclusion with the new period
}

// Timings returns the timings in effect (with defaults filled in).
func (p *Processor) Timings() Timings { return p.t }

// WithDefaults is t with every zero field replaced by its default (as
// Config's timings are filled), for drivers that report the timings in
// force.
func (t Timings) WithDefaults() Timings {
	t.fill()
	return t
}
