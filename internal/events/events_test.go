package events

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func fixedClock(start time.Time) func() time.Time {
	t := start
	return func() time.Time { t = t.Add(time.Second); return t }
}

func TestRingBufferKeepsTheNewest(t *testing.T) {
	l := New(3, nil)
	l.SetClock(fixedClock(time.Unix(1000, 0)))
	for i := range 5 {
		l.Record(Quorum, "q", Fields{"i": i})
	}
	evs, last := l.After(0, time.Time{})
	require.Len(t, evs, 3)
	assert.Equal(t, uint64(5), last)
	assert.Equal(t, []uint64{3, 4, 5}, []uint64{evs[0].Seq, evs[1].Seq, evs[2].Seq})
	evs, _ = l.After(4, time.Time{})
	require.Len(t, evs, 1)
	assert.Equal(t, 4, evs[0].Fields["i"])
	// since filters by time: events 3..5 are at 1003..1005.
	evs, _ = l.After(0, time.Unix(1005, 0))
	require.Len(t, evs, 1)
	assert.Equal(t, uint64(5), evs[0].Seq)
}

func TestRecordLogsStructuredFields(t *testing.T) {
	core, obs := observer.New(zap.InfoLevel)
	l := New(0, zap.New(core))
	l.Record(Membership, "membership changed", Fields{"joined": []uint32{2}, "left": []uint32{}, "members": []uint32{1, 2}})
	require.Equal(t, 1, obs.Len())
	e := obs.All()[0]
	assert.Equal(t, "membership changed", e.Message)
	m := e.ContextMap()
	assert.Equal(t, "membership", m["event"])
	assert.Equal(t, []any{uint32(2)}, m["joined"])
	keys := map[string]int{}
	for _, f := range e.Context {
		keys[f.Key]++
	}
	for k, n := range keys {
		assert.Equal(t, 1, n, "key %q appears %d times", k, n)
	}
}

func TestAnswerWaitsForTheNextEvent(t *testing.T) {
	l := New(0, nil)
	l.Record(Daemon, "started", nil)
	r := l.Answer(context.Background(), Query{})
	require.Len(t, r.Events, 1)
	done := make(chan Reply, 1)
	go func() { done <- l.Answer(context.Background(), Query{After: r.Last, WaitMS: 30_000}) }()
	// The waiter may or may not be waiting yet: either way it must see
	// the event.
	l.Record(Quorum, "quorate", Fields{"quorate": true})
	select {
	case got := <-done:
		require.Len(t, got.Events, 1)
		assert.Equal(t, Quorum, got.Events[0].Kind)
		assert.Equal(t, uint64(2), got.Last)
	case <-time.After(10 * time.Second):
		t.Fatal("Answer did not return after a new event")
	}
	// Nothing new and a short wait: an empty reply, never null.
	got := l.Answer(context.Background(), Query{After: 2, WaitMS: 1})
	assert.Empty(t, got.Events)
	var m map[string]any
	require.NoError(t, json.Unmarshal(got.Marshal(), &m))
	assert.Equal(t, []any{}, m["events"])
}
