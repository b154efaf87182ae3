package ring

import (
	"testing"
	"time"

	"ringmaster/totem/link"
)

// TestSetTimingsMovesLinkHeartbeats: with heartbeats derived from the token
// (no knet_ping_* configured), a reload that shortens the token shortens
// them too. Kept at the old token's, a dead link would be noticed only
// after the ring had declared the token lost on it: every link failure
// would change the membership.
func TestSetTimingsMovesLinkHeartbeats(t *testing.T) {
	cfgs := linkConfigs(t, 2, link.Passive)
	c := startCluster(t, cfgs)
	c.waitRing(1, 2)
	r := c.rings[1]
	iv, to := r.links.heartbeat()
	if want := link.Derive(link.Config{}, r.Timings().Token); iv != want.PingInterval || to != want.PingTimeout {
		t.Fatalf("heartbeat %v/%v at start, want %v/%v", iv, to, want.PingInterval, want.PingTimeout)
	}
	tm := testTimings()
	tm.Token /= 4
	tm.Consensus = 0
	r.SetTimings(tm)
	want := link.Derive(link.Config{}, tm.Token)
	pollUntil(t, "heartbeats derived from the new token", func() bool {
		iv, to := r.links.heartbeat()
		return r.Timings().Token == tm.Token && iv == want.PingInterval && to == want.PingTimeout
	})

	// Configured heartbeat settings are the operator's: they stay.
	cfgs = linkConfigs(t, 1, link.Passive)
	cfgs[0].LinkSettings.PingInterval, cfgs[0].LinkSettings.PingTimeout = 7*time.Millisecond, 70*time.Millisecond
	c2 := startCluster(t, cfgs)
	c2.rings[1].SetTimings(tm)
	pollUntil(t, "timings applied", func() bool { return c2.rings[1].Timings().Token == tm.Token })
	if iv, to := c2.rings[1].links.heartbeat(); iv != 7*time.Millisecond || to != 70*time.Millisecond {
		t.Fatalf("configured heartbeat changed to %v/%v", iv, to)
	}
}

// pollUntil waits for cond, which no recorder event signals (the
// recorder's waitFor would only see it at its deadline).
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
