package ring

import "ringmaster/totem"

// Sending from the caller's goroutine.
//
// Send queues and wakes Run, which then hands the message to the
// Processor on its own goroutine. On an idle ring that hand-off is a
// thread wake-up (tens of µs on a small VM), paid again when the delivery
// goes back to the local client: most of the latency of a lone message.
// SendBatched and Flush let a caller that sends on behalf of a request (the
// executive, for a client's message) skip it: the messages are queued
// without a wake-up, and Flush, called once the batch is queued and no
// lock of the caller's is held, pumps them into the Processor and handles
// its output right there when Run is idle. When Run is busy Flush just
// wakes it, as Send would have. Either way one goroutine at a time owns
// the Processor (runMu).
//
// The gain is largest in the common light-load case: the sender holds the
// idle token, so its message is sequenced, sent and delivered back (to the
// executive, and so to the client's queue) within the Flush; the client's
// reply and the delivery then leave in one write (ipc's cork).

// SendBatched is Send without waking Run: the message waits until the
// caller's Flush (or Run's next turn). Callers must call Flush after their
// batch, outside any lock that Events callbacks take.
func (r *Ring) SendBatched(service, id uint16, g totem.Guarantee, payload []byte) error {
	return r.enqueue(service, id, g, payload)
}

// Flush hands what SendBatched queued to the Processor: on the calling
// goroutine when Run is idle, otherwise by waking Run. It may deliver
// messages and configuration changes (Events) before it returns, so it
// must not be called from inside an Events callback or under a lock those
// callbacks take.
//
// beforeSend (may be nil) runs once, on the calling goroutine, before
// Flush returns: after the messages delivered at once and before the
// datagrams that carry them to the other nodes, when both happen in
// this Flush (the caller writes the deliveries to its client first: on a
// small machine the other nodes, once woken, compete with the client for
// the CPU), otherwise at the end. It must not call the Ring.
func (r *Ring) Flush(beforeSend func()) {
	if r.lockIdle() {
		r.beforeSend = beforeSend
		r.fail(r.pumpOutput())
		r.rearm()
		beforeSend, r.beforeSend = r.beforeSend, nil // nil: output ran it
		r.runMu.Unlock()
	} else {
		r.wakeRun()
	}
	if beforeSend != nil {
		beforeSend()
	}
}

// wakeRun makes Run take a turn (Send, a Flush that found it busy, a
// reconfiguration); a turn already pending covers it.
func (r *Ring) wakeRun() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// lockIdle takes runMu when Run is idle in its loop (started, not
// returned) and reports whether it did.
func (r *Ring) lockIdle() bool {
	if !r.running.Load() || !r.runMu.TryLock() {
		return false
	}
	if r.exited || r.timer == nil {
		r.runMu.Unlock()
		return false
	}
	return true
}

// fail hands an output error met outside Run (Flush, stepInline) to Run,
// which returns it.
func (r *Ring) fail(err error) {
	if err == nil {
		return
	}
	select {
	case r.flushErr <- err:
	default:
	}
}

// stepInline steps a received batch on the reader's goroutine when Run is
// idle and nothing received is waiting for it (the batch would otherwise
// overtake those): the token of a quiet ring, arriving at a node whose
// clients wait for its messages, is then handled without a hand-off to
// Run, and the deliveries reach the clients one thread wake-up sooner.
// It reports false (the caller hands b to Run) when Run is busy, when
// batches are queued, or before Run's loop has started. Timers stay
// Run's: a due one wakes it.
func (r *Ring) stepInline(b *rxBuf) bool {
	if len(r.rx) > 0 || !r.lockIdle() {
		return false
	}
	defer r.runMu.Unlock()
	if len(r.rx) > 0 {
		return false
	}
	r.step(b)
	r.fail(r.pumpOutput())
	r.rearm()
	if r.deadline != 0 && r.now() >= r.deadline {
		r.wakeRun()
	}
	return true
}
