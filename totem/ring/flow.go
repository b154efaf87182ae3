package ring

import "ringmaster/totem/srp"

// This file scales flow control (window_size, max_messages) to the frame
// size and the receive buffer: the timings and FlowScale handed to the
// Processor when the ring is built. srp then adapts the window at run time
// (srp/flow.go); the run loop (ring.go) takes no part in either.

// FlowScale is how many times window_size and max_messages the Processor
// may use while the ring does not lose much (scaleFlow).
func (r *Ring) FlowScale() int { return r.flowScale }

// flowFrame is the frame size that window_size and max_messages are sized
// for: see scaleFlow.
const flowFrame = 8 << 10

// maxFlowScale bounds scaleFlow's factor.
const maxFlowScale = 8

// scaleFlow adapts flow control to the frame size: it returns the timings
// for srp and its FlowScale. window_size and max_messages count frames
// (corosync's defaults, 50 and 17, date from 1500-byte frames), but most
// of the cost of a token rotation does not depend on what it carries: the
// wake-ups of every node and the hops. With 1374-byte frames (netmtu
// 1500) the ring spends its time passing the token around, with 64 KiB
// frames (loopback) it does not. So the counts are taken as frames of up
// to flowFrame (8 KiB): the window and the per-visit limit may grow by
// flowFrame/frame (6× at netmtu 1500, none at 9000 or above), up to
// maxFlowScale, never beyond what half the receive buffer the kernel
// granted holds (a receiver descheduled for a rotation must not drop
// it), and only while the ring loses little: srp halves the window when
// the token's retransmission requests pile up (srp adaptFlow). On three
// namespaces over a bridge (netmtu 1500, udpu) this took 8,000-byte
// messages from 5k to 10–12k msgs/s and 1,600-byte ones from 26k to 50k;
// at 64 KiB frames it changes nothing. Every node sizes its own sending;
// the protocol does not need them to agree.
func scaleFlow(t srp.Timings, frame, rcvbuf int) (srp.Timings, int) {
	if t.WindowSize <= 0 {
		t.WindowSize = 50
	}
	if t.MaxMessages <= 0 {
		t.MaxMessages = 17
	}
	f := max(1, min(maxFlowScale, (flowFrame+frame/2)/frame))
	if rcvbuf > 0 {
		// SO_RCVBUF reports twice the usable size.
		f = max(1, min(f, rcvbuf/2/2/(t.WindowSize*frame)))
	}
	return t, f
}
