package link

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A shorter timeout (a reload lowered the token) counts from the change at
// the latest: links whose last pong is older than the new timeout do not
// go down at once, and a dead link is then noticed within the new timeout,
// not the old one.
func TestSetHeartbeatShorter(t *testing.T) {
	m := testMonitor(t, Passive, 1, 5) // interval 10 ms, timeout 40 ms
	run(m, 0, 30*ms, nil)
	require.True(t, m.Table().Healthy(2))
	// Last pongs at 31 ms; at 45 ms the timeout drops to 8 ms, the
	// interval to 2 ms: 45 − 31 > 8, but nothing may go down for it.
	require.NoError(t, m.SetHeartbeat(45*ms, 2*ms, 8*ms))
	assert.LessOrEqual(t, m.Deadline(), 47*ms, "the next round comes forward to the new interval")
	ch := run(m, 45*ms, 60*ms, nil)
	assert.Empty(t, ch, "a change of timeout took healthy links down")
	// Link 1 cut at 61 ms: down within the new timeout (plus one
	// interval to notice), far inside the old 40 ms.
	ch = run(m, 61*ms, 100*ms, map[uint8]bool{1: true})
	require.Len(t, ch, 2)
	for _, c := range ch {
		assert.False(t, c.Up)
		assert.LessOrEqual(t, c.At, 61*ms+8*ms+2*ms+ms)
	}
	assert.Equal(t, 8*ms, m.Config().PingTimeout)
}

// A longer timeout extends the running ones: a link is not declared down
// on the old, shorter timeout.
func TestSetHeartbeatLonger(t *testing.T) {
	m := testMonitor(t, Passive, 1, 1)
	run(m, 0, 30*ms, nil) // last pongs at 31 ms
	require.NoError(t, m.SetHeartbeat(32*ms, 10*ms, 100*ms))
	m.Tick(80 * ms) // pings lost: no answer
	assert.Empty(t, m.Changes(), "down on the old timeout")
	m.Tick(131 * ms)
	assert.Empty(t, m.Changes(), "times out 100 ms after the last pong, not before")
	m.Tick(132 * ms)
	assert.Len(t, m.Changes(), 4)
	assert.ErrorIs(t, m.SetHeartbeat(0, 0, 5*ms), ErrConfig)
}
