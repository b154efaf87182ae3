package sim

import (
	"fmt"
	"strings"
	"time"

	"ringmaster/totem"
	"ringmaster/totem/srp"
)

type recKind uint8

const (
	recStart recKind = iota
	recCrash
	recLeave
	recSend
	recRecv
	recDrop
	recTick
	recEvent
	recState
	recNote
)

// rec is one trace entry. It keeps raw values and is formatted only when
// the trace is printed, so tracing costs no formatting on the hot path.
type rec struct {
	at    time.Duration
	kind  recKind
	node  totem.NodeID
	peer  totem.NodeID
	inc   int
	seq   uint64
	msg   uint64
	g     totem.Guarantee
	data  []byte
	ev    srp.Event
	state totem.State
	ring  totem.RingID
	note  string
}

// Trace keeps the last events of a run in a ring buffer.
type Trace struct {
	recs []rec
	next int
	full bool
}

func newTrace(n int) *Trace { return &Trace{recs: make([]rec, max(n, 0))} }

func (t *Trace) add(r rec) {
	if len(t.recs) == 0 {
		return
	}
	t.recs[t.next] = r
	t.next++
	if t.next == len(t.recs) {
		t.next, t.full = 0, true
	}
}

// String formats the retained events, oldest first.
func (t *Trace) String() string {
	var b strings.Builder
	emit := func(r *rec) { b.WriteString(r.String()); b.WriteByte('\n') }
	if t.full {
		for i := t.next; i < len(t.recs); i++ {
			emit(&t.recs[i])
		}
	}
	for i := 0; i < t.next; i++ {
		emit(&t.recs[i])
	}
	return b.String()
}

func (r *rec) String() string {
	at := fmt.Sprintf("%9.3fms", float64(r.at)/float64(time.Millisecond))
	switch r.kind {
	case recStart:
		return fmt.Sprintf("%s n%d start (incarnation %d, persisted seq %d)", at, r.node, r.inc, r.seq)
	case recCrash:
		return fmt.Sprintf("%s n%d CRASH", at, r.node)
	case recLeave:
		return fmt.Sprintf("%s n%d leave", at, r.node)
	case recSend:
		return fmt.Sprintf("%s n%d send msg=%d %v", at, r.node, r.msg, r.g)
	case recRecv:
		return fmt.Sprintf("%s n%d <- n%d %s", at, r.node, r.peer, describe(r.data))
	case recDrop:
		return fmt.Sprintf("%s n%d <- n%d DROPPED %s", at, r.node, r.peer, describe(r.data))
	case recTick:
		return fmt.Sprintf("%s n%d tick", at, r.node)
	case recEvent:
		if r.ev.Kind == srp.EventDeliver {
			return fmt.Sprintf("%s n%d DELIVER msg=%d from n%d %v", at, r.node, MsgID(r.ev.Payload), r.ev.Sender, r.ev.Guarantee)
		}
		c := r.ev.Conf
		return fmt.Sprintf("%s n%d CONF %v ring=%v members=%v left=%v joined=%v", at, r.node, c.Kind, c.Ring, c.Members, c.Left, c.Joined)
	case recState:
		return fmt.Sprintf("%s n%d state %s ring=%v", at, r.node, r.state, r.ring)
	case recNote:
		return fmt.Sprintf("%s -- %s", at, r.note)
	}
	return at + " ?"
}
