// Package events is ringd's event log: a bounded, timestamped record of
// what happened on this node (membership and ring changes, quorum, CPG
// joins and leaves, configuration reloads, and, as the resource manager
// lands, transitions, operation results and fencing), kept in memory and
// written to the log as structured fields.
//
// Services record through the small Recorder interface, which they get from
// the executive (exec.Host.Events); ringctl events, the web status page and
// tests read the Log.
//
// Concurrency: every method of Log may be called from any goroutine.
// Record never blocks on readers: they are woken through a channel that is
// closed on the next event (Changed), so a slow reader costs the recorder
// nothing.
package events

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Kind names what happened. The strings are part of `ringctl events
// --json` and of log lines: only ever add new ones.
type Kind string

// Event kinds.
const (
	// Membership: a new regular ring; fields ring, members, joined, left.
	Membership Kind = "membership"
	// Quorum: the quorate flag or the vote counts changed; fields
	// quorate, expected_votes, total_votes, quorum.
	Quorum Kind = "quorum"
	// CPGJoin and CPGLeave: a process joined or left a CPG group; fields
	// group, member_node, pid (and reason for a leave).
	CPGJoin  Kind = "cpg_join"
	CPGLeave Kind = "cpg_leave"
	// ConfigReload: SIGHUP re-read the file; fields applied,
	// pending_restart (or error when refused).
	ConfigReload Kind = "config_reload"
	// Daemon: ringd started or is stopping; field message only.
	Daemon Kind = "daemon"
	// CRM: the resource manager changed the configuration (version),
	// ran a transition (actions), or its scheduler refused the CIB
	// (error).
	CRM Kind = "crm"
	// Resource: an operation on this node ended (resource, operation,
	// rc, result, node).
	Resource Kind = "resource"
	// Fencing: a fencing attempt succeeded or failed (target, action,
	// device, reason).
	Fencing Kind = "fencing"
	// Link: a redundant link to a peer went up or down (peer, link,
	// local, remote).
	Link Kind = "link"
)

// Fields are an event's details. Values must encode to JSON (strings,
// numbers, bools, slices of them). Keys are snake_case and must not be
// "node" (the log line already names the recording node) nor one of the
// Event's own names (seq, time, kind, message).
type Fields map[string]any

// Event is one entry of the log.
type Event struct {
	// Seq numbers the events of one ringd run from 1, without gaps; a
	// reader resumes after the last Seq it saw.
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Kind    Kind      `json:"kind"`
	Message string    `json:"message"`
	Fields  Fields    `json:"fields,omitempty"`
}

// Recorder is what services need: record one event. Record fills in Seq
// and Time, must not block, and may be called from any goroutine (services
// call it under the executive's lock).
type Recorder interface {
	Record(kind Kind, message string, fields Fields)
}

// Discard is a Recorder that drops everything (tests, tools).
var Discard Recorder = discard{}

type discard struct{}

func (discard) Record(Kind, string, Fields) {}

// DefaultCapacity is how many events a Log keeps: at a membership change a
// minute that is a week of history, and about 2 MB of memory.
const DefaultCapacity = 10000

// Log is a Recorder that keeps the last Capacity events in a ring buffer
// and writes each to a zap logger.
type Log struct {
	mu      sync.Mutex
	buf     []Event // ring buffer; buf[(first+i)%cap] is the i-th oldest
	first   int
	n       int
	seq     uint64
	changed chan struct{}
	log     *zap.Logger
	now     func() time.Time
	onRec   func(Event)
}

// New returns a log of capacity events (DefaultCapacity when <= 0) that
// also writes every event to log at Info (nil: no logging).
func New(capacity int, log *zap.Logger) *Log {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Log{buf: make([]Event, capacity), changed: make(chan struct{}), log: log, now: time.Now}
}

// SetClock replaces time.Now (tests).
func (l *Log) SetClock(now func() time.Time) {
	l.mu.Lock()
	l.now = now
	l.mu.Unlock()
}

// OnRecord sets f to see every event after it is recorded (the metrics
// count them). f is called from the recording goroutine, possibly
// concurrently, and must not block or record.
func (l *Log) OnRecord(f func(Event)) {
	l.mu.Lock()
	l.onRec = f
	l.mu.Unlock()
}

// Record implements Recorder.
func (l *Log) Record(kind Kind, message string, fields Fields) {
	l.mu.Lock()
	l.seq++
	e := Event{Seq: l.seq, Time: l.now(), Kind: kind, Message: message, Fields: maps.Clone(fields)}
	if l.n < len(l.buf) {
		l.buf[(l.first+l.n)%len(l.buf)] = e
		l.n++
	} else {
		l.buf[l.first] = e
		l.first = (l.first + 1) % len(l.buf)
	}
	ch := l.changed
	l.changed = make(chan struct{})
	onRec := l.onRec
	l.mu.Unlock()
	close(ch)
	l.log.Info(message, ZapFields(e)...)
	if onRec != nil {
		onRec(e)
	}
}

// ZapFields are the log fields of an event: "event" (the kind) then its
// fields in key order; seq and time are left to the log line's own.
func ZapFields(e Event) []zap.Field {
	out := make([]zap.Field, 0, len(e.Fields)+1)
	out = append(out, zap.String("event", string(e.Kind)))
	for _, k := range slices.Sorted(maps.Keys(e.Fields)) {
		out = append(out, zap.Any(k, e.Fields[k]))
	}
	return out
}

// After returns the events with Seq > seq and Time >= since (zero: any
// time), oldest first, and the Seq of the newest event in the log (0 when
// empty). Events older than the buffer are gone; a reader notices a gap in
// Seq.
func (l *Log) After(seq uint64, since time.Time) (evs []Event, last uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := 0; i < l.n; i++ {
		e := l.buf[(l.first+i)%len(l.buf)]
		if e.Seq <= seq || (!since.IsZero() && e.Time.Before(since)) {
			continue
		}
		evs = append(evs, e)
	}
	return evs, l.seq
}

// Changed returns a channel closed at the next Record: wait on it, then
// read with After.
func (l *Log) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// Query is what a reader asks for (over IPC: JSON).
type Query struct {
	// After: only events with a larger Seq.
	After uint64 `json:"after,omitempty"`
	// Since: only events at or after this time.
	Since time.Time `json:"since,omitzero"`
	// WaitMS: when nothing matches, wait up to this long for an event
	// (long poll, for --follow).
	WaitMS int64 `json:"wait_ms,omitempty"`
}

// Reply answers a Query.
type Reply struct {
	Events []Event `json:"events"`
	// Last is the Seq of the newest event in the log: a follower asks
	// for After = Last next.
	Last uint64 `json:"last"`
}

// Marshal encodes a reply; events is never null.
func (r Reply) Marshal() []byte {
	if r.Events == nil {
		r.Events = []Event{}
	}
	b, _ := json.Marshal(r)
	return b
}

// Answer answers q: the matching events now or, when there are none and
// q.WaitMS > 0, as soon as one arrives within WaitMS (an empty reply when
// none did, or when ctx ends).
func (l *Log) Answer(ctx context.Context, q Query) Reply {
	var deadline <-chan time.Time
	if q.WaitMS > 0 {
		t := time.NewTimer(time.Duration(min(q.WaitMS, 60_000)) * time.Millisecond)
		defer t.Stop()
		deadline = t.C
	}
	for {
		ch := l.Changed()
		evs, last := l.After(q.After, q.Since)
		if len(evs) > 0 || deadline == nil {
			return Reply{Events: evs, Last: last}
		}
		select {
		case <-ch:
		case <-deadline:
			return Reply{Last: last}
		case <-ctx.Done():
			return Reply{Last: last}
		}
	}
}
