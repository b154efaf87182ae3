package link

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/totem"
)

const ms = time.Millisecond

// testMonitor: peers 2 and 3, links 0 and 1 (link 1 preferred when given
// the higher priority), ping every 10 ms, timeout 40 ms, 2 pongs.
func testMonitor(t *testing.T, mode Mode, prio0, prio1 int) *Monitor {
	t.Helper()
	m, err := New(Config{Peers: []totem.NodeID{3, 2}, Links: []Spec{{0, prio0}, {1, prio1}}, Mode: mode,
		PingInterval: 10 * ms, PingTimeout: 40 * ms, PongCount: 2}, 0)
	require.NoError(t, err)
	return m
}

// answer plays the peers: every ping in pings is answered after rtt unless
// its link is in cut.
func answer(m *Monitor, pings []Ping, rtt time.Duration, cut map[uint8]bool) {
	for _, p := range pings {
		if !cut[p.Link] {
			m.Pong(time.Duration(p.Stamp)+rtt, p.Peer, p.Link, p.Stamp)
		}
	}
}

// run drives the monitor from..to in steps of 1 ms, answering pings.
func run(m *Monitor, from, to time.Duration, cut map[uint8]bool) []Change {
	var ch []Change
	for now := from; now <= to; now += ms {
		if now >= m.Deadline() {
			answer(m, m.Tick(now), ms, cut)
		}
		ch = append(ch, m.Changes()...)
	}
	return ch
}

func TestStartsDownSendsEverywhere(t *testing.T) {
	m := testMonitor(t, Passive, 1, 1)
	tb := m.Table()
	assert.Equal(t, []uint8{0, 1}, tb.Choose(2, 0))
	assert.False(t, tb.Healthy(2))
	pings := m.Tick(0)
	assert.Len(t, pings, 4, "one ping per peer and link")
	assert.Equal(t, 10*ms, m.Deadline())
	assert.Empty(t, m.Tick(5*ms), "no ping before the interval")
}

func TestUpAfterPongCount(t *testing.T) {
	m := testMonitor(t, Passive, 1, 1)
	answer(m, m.Tick(0), ms, nil)
	assert.Empty(t, m.Changes(), "one pong is not enough")
	answer(m, m.Tick(10*ms), ms, nil)
	ch := m.Changes()
	require.Len(t, ch, 4)
	for _, c := range ch {
		assert.True(t, c.Up)
		assert.Equal(t, 11*ms, c.At)
	}
	assert.Equal(t, []uint8{0}, m.Table().Choose(2, 0), "ties go to the lowest link number")
}

func TestPassivePriorityAndFailover(t *testing.T) {
	m := testMonitor(t, Passive, 1, 5)
	run(m, 0, 30*ms, nil)
	assert.Equal(t, []uint8{1}, m.Table().Choose(3, 0), "higher priority wins")

	// Link 1 is cut at 31 ms: the last pong was at 31 ms (ping at 30),
	// so it goes down once 40 ms pass without one.
	ch := run(m, 31*ms, 100*ms, map[uint8]bool{1: true})
	require.Len(t, ch, 2)
	for _, c := range ch {
		assert.False(t, c.Up)
		assert.Equal(t, uint8(1), c.Link)
		assert.LessOrEqual(t, c.At, 31*ms+40*ms+ms, "down within the ping timeout")
	}
	assert.Equal(t, []uint8{0}, m.Table().Choose(3, 0), "failover to the remaining link")

	// Restored: up again after two pongs, and preferred again.
	ch = run(m, 101*ms, 130*ms, nil)
	require.Len(t, ch, 2)
	assert.True(t, ch[0].Up)
	assert.Equal(t, []uint8{1}, m.Table().Choose(3, 0))
	for _, s := range m.States() {
		if s.Link == 1 {
			assert.Equal(t, uint64(2), s.Ups)
			assert.Equal(t, uint64(1), s.Downs)
		}
	}
}

func TestAllDownSendsOnEveryLink(t *testing.T) {
	m := testMonitor(t, Passive, 1, 1)
	run(m, 0, 30*ms, nil)
	ch := run(m, 31*ms, 120*ms, map[uint8]bool{0: true, 1: true})
	assert.Len(t, ch, 4)
	assert.Equal(t, []uint8{0, 1}, m.Table().Choose(2, 0))
	assert.False(t, m.Table().Healthy(2))
}

func TestActiveRoundRobin(t *testing.T) {
	m := testMonitor(t, Active, 1, 9)
	run(m, 0, 30*ms, nil)
	tb := m.Table()
	var got []uint8
	for turn := range uint64(4) {
		got = append(got, tb.Choose(2, turn)...)
	}
	assert.Equal(t, []uint8{1, 0, 1, 0}, got, "healthy links take turns, preferred first")
	run(m, 31*ms, 100*ms, map[uint8]bool{0: true})
	tb = m.Table()
	assert.Equal(t, []uint8{1}, tb.Choose(2, 0))
	assert.Equal(t, []uint8{1}, tb.Choose(2, 1), "only healthy links take turns")
}

func TestStalePongsIgnored(t *testing.T) {
	m := testMonitor(t, Passive, 1, 1)
	m.Tick(0)
	assert.False(t, m.Pong(50*ms, 2, 0, 0), "older than the timeout")
	assert.False(t, m.Pong(5*ms, 2, 0, uint64(6*ms)), "stamp from the future")
	assert.False(t, m.Pong(5*ms, 9, 0, 0), "unknown peer")
	assert.False(t, m.Pong(5*ms, 2, 7, 0), "unknown link")
	assert.True(t, m.Pong(5*ms, 2, 0, 0))
}

// A run of pongs broken by a silence longer than the timeout starts over.
func TestPongRunResetsAfterGap(t *testing.T) {
	m := testMonitor(t, Passive, 1, 1)
	m.Tick(0)
	require.True(t, m.Pong(ms, 2, 0, 0))
	m.Tick(60 * ms)
	require.True(t, m.Pong(61*ms, 2, 0, uint64(60*ms)))
	assert.Empty(t, m.Changes(), "the first pong is 60 ms old: the run restarted")
	m.Tick(70 * ms)
	require.True(t, m.Pong(71*ms, 2, 0, uint64(70*ms)))
	assert.Len(t, m.Changes(), 1)
}

func TestLateDriverNoBurst(t *testing.T) {
	m := testMonitor(t, Passive, 1, 1)
	m.Tick(0)
	assert.Len(t, m.Tick(500*ms), 4, "one round, not fifty")
	assert.Empty(t, m.Tick(501*ms))
	assert.Equal(t, 510*ms, m.Deadline())
}

func TestSetPeers(t *testing.T) {
	m := testMonitor(t, Passive, 1, 1)
	run(m, 0, 30*ms, nil)
	m.SetPeers([]totem.NodeID{2, 4})
	assert.True(t, m.Table().Healthy(2), "kept")
	assert.False(t, m.Table().Healthy(4), "new peers start down")
	assert.Equal(t, []uint8{0, 1}, m.Table().Choose(3, 0), "removed peer: unknown, every link")
	assert.Len(t, m.Tick(40*ms), 4)
}

func TestConfigErrors(t *testing.T) {
	base := Derive(Config{Peers: []totem.NodeID{2}, Links: []Spec{{0, 1}}}, time.Second)
	assert.Equal(t, 250*ms, base.PingTimeout)
	assert.Equal(t, 62500*time.Microsecond, base.PingInterval)
	assert.Equal(t, 2, base.PongCount)
	for _, c := range []func(*Config){
		func(c *Config) { c.Links = nil },
		func(c *Config) { c.Links = []Spec{{8, 1}} },
		func(c *Config) { c.Links = []Spec{{1, 1}, {1, 2}} },
		func(c *Config) { c.PongCount = 0 },
		func(c *Config) { c.Peers = []totem.NodeID{0} },
		func(c *Config) { c.Mode = 7 },
	} {
		cfg := base
		c(&cfg)
		_, err := New(cfg, 0)
		assert.ErrorIs(t, err, ErrConfig)
	}
	_, err := ParseMode("rr")
	assert.ErrorIs(t, err, ErrConfig)
}
