package ring

import (
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ringmaster/internal/clustertest"
)

// TestStallNoStorm: a node that is not scheduled for a while (kill -STOP:
// a VM pause, a long GC, a swap storm) longer than the token timeout costs
// at most a few ring changes on the others, and once it runs again all
// three nodes are back in one quorate ring (issue 11, item 1: before the
// fix a 1.5 s stall at token 1000 set off thousands of configurations and
// took 3.5–12 s to settle). A stall shorter than the token costs nothing.
// How soon the ring is whole again is logged, not asserted (a wall-clock
// bound fails on a loaded machine; see the package comment): a storm
// shows in the number of rings, which is.
func TestStallNoStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes, several seconds")
	}
	c := clustertest.New(t, clustertest.Options{Nodes: 3, Transport: "udpu", Token: 1000, ExtraTotem: "token_coefficient = 0"})
	c.StartAll()
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	mustWhole(t, c, deadline)

	for _, tc := range []struct {
		stall  time.Duration
		victim int
		maxIDs int // ring IDs per other node
	}{{1500 * time.Millisecond, 2, 4}, {3 * time.Second, 3, 4}, {1500 * time.Millisecond, 1, 4}, {500 * time.Millisecond, 2, 0}} {
		t.Run(fmt.Sprintf("%v-n%d", tc.stall, tc.victim), func(t *testing.T) {
			logs := make([]int, 4)
			for i := 1; i <= 3; i++ {
				logs[i] = len(c.Log(i))
			}
			pid := c.Node(tc.victim).PID()
			require.NotZero(t, pid)
			require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
			time.Sleep(tc.stall) // the fault itself, not an assertion
			require.NoError(t, syscall.Kill(pid, syscall.SIGCONT))
			resumed := time.Now()
			err := waitWhole(c, deadline)
			took := time.Since(resumed)
			// Let anything still in motion show itself: the ring must
			// then stay put for two token timeouts.
			stable := waitStable(c, 2*time.Second, 10*time.Second)
			for i := 1; i <= 3; i++ {
				rings := regularRings(c.Log(i)[logs[i]:])
				t.Logf("n%d: %d regular configurations, %d ring ids after the stall", i, rings.confs, len(rings.ids))
				if i != tc.victim && len(rings.ids) > tc.maxIDs {
					t.Errorf("n%d went through %d rings (%d regular configurations) for one %v stall of n%d (max %d)",
						i, len(rings.ids), rings.confs, tc.stall, tc.victim, tc.maxIDs)
				}
			}
			if err != nil {
				for i := 1; i <= 3; i++ {
					t.Logf("--- log of n%d (tail)\n%s", i, tailLines(c.Log(i), 30))
				}
				t.Fatalf("not one quorate ring after the resume: %v", err)
			}
			require.NoError(t, stable)
			if tc.stall > time.Second {
				require.Contains(t, c.Log(tc.victim)[logs[tc.victim]:], "process pause detected",
					"n%d did not notice that it had been stopped", tc.victim)
			}
			t.Logf("%v stall of n%d: one quorate ring %v after the resume", tc.stall, tc.victim, took.Round(time.Millisecond))
		})
	}
}

// whole reports whether all three nodes are operational and quorate in one
// ring of all three; it returns that ring's ID.
func whole(c *clustertest.Cluster) (string, bool) {
	var ring string
	for i := 1; i <= 3; i++ {
		st := c.Status(i)
		if st == nil || st.State != "operational" || len(st.Members) != 3 || st.Quorate == nil || !*st.Quorate {
			return "", false
		}
		r := fmt.Sprint(st.RingID)
		if i > 1 && r != ring {
			return "", false
		}
		ring = r
	}
	return ring, true
}

func waitWhole(c *clustertest.Cluster, timeout time.Duration) error {
	end := time.Now().Add(timeout)
	for {
		if _, ok := whole(c); ok {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("not whole after %v", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func mustWhole(t *testing.T, c *clustertest.Cluster, timeout time.Duration) {
	t.Helper()
	require.NoError(t, waitWhole(c, timeout))
}

// waitStable waits until the cluster has been whole in the same ring for
// hold, giving up after timeout.
func waitStable(c *clustertest.Cluster, hold, timeout time.Duration) error {
	end := time.Now().Add(timeout)
	var ring string
	var since time.Time
	for {
		r, ok := whole(c)
		switch {
		case !ok:
			ring = ""
		case r != ring:
			ring, since = r, time.Now()
		case time.Since(since) >= hold:
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("the ring did not stay whole for %v within %v", hold, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var confRing = regexp.MustCompile(`"kind": "regular", "ring": "([^"]+)"`)

type ringCount struct {
	confs int
	ids   map[string]bool
}

// regularRings counts the regular configurations a node logged and the
// distinct ring IDs among them.
func regularRings(log string) ringCount {
	rc := ringCount{ids: map[string]bool{}}
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "configuration") {
			continue
		}
		if m := confRing.FindStringSubmatch(line); m != nil {
			rc.confs++
			rc.ids[m[1]] = true
		}
	}
	return rc
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
