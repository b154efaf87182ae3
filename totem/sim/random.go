package sim

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"time"

	"ringmaster/totem"
	"ringmaster/totem/srp"
)

// Result summarises one random run.
type Result struct {
	Seed     uint64
	Nodes    int
	Token    time.Duration
	Faults   int
	Converge time.Duration // from the last fault's healing to one ring
	Stats    Stats
}

// LivenessBound is how long after the last fault heals the cluster must be
// one operational ring (invariant 7). Merges take a merge period plus a
// gather; the bound leaves room for a few failed attempts under the worst
// timings the random runs pick.
const LivenessBound = 15 * time.Second

// RunSeed runs one random scenario: a cluster of 2–5 nodes with random
// timings, a chaos phase with a random workload (agreed and safe messages)
// and random faults (loss, duplication, delay, reordering, partitions and
// heals, crashes and restarts, graceful leaves, stalled processors), then
// a healed phase in
// which the cluster must converge to one ring and deliver probe messages
// everywhere. The checker runs after every step throughout.
func RunSeed(seed uint64) (*Result, error) {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	pick := func(xs ...float64) float64 { return xs[r.IntN(len(xs))] }

	n := []int{2, 3, 3, 3, 4, 5}[r.IntN(6)]
	ids := make([]totem.NodeID, n)
	for i := range ids {
		ids[i] = totem.NodeID(i + 1)
	}
	token := []time.Duration{200, 200, 300, 1000}[r.IntN(4)] * time.Millisecond
	tm := srp.DefaultTimings(token)
	if r.IntN(3) == 0 {
		tm.WindowSize, tm.MaxMessages = 8, 3
	}
	chaosNet := Net{
		Latency:  time.Duration(50+r.IntN(950)) * time.Microsecond,
		Jitter:   time.Duration(r.IntN(3000)) * time.Microsecond,
		Loss:     pick(0, 0.01, 0.05, 0.1, 0.2),
		Dup:      pick(0, 0.02, 0.1),
		SlowProb: pick(0, 0, 0.01),
		Slow:     50 * time.Millisecond,
		// Half the runs keep the order between two nodes, as loopback
		// and a quiet LAN do (no rng draw: seeds keep their meaning).
		FIFO: seed/6%2 == 0,
	}
	c := New(Config{Nodes: ids, Seed: seed, Timings: tm, Net: chaosNet, MaxQueue: 64, TraceLen: traceLen(),
		ReuseDatagrams: seed%2 == 0, FlowScale: 1 + 5*int(seed%3/2)})
	res := &Result{Seed: seed, Nodes: n, Token: token}

	// Chaos.
	chaos := time.Duration(2000+r.IntN(4000)) * time.Millisecond
	sendEvery := time.Duration(2+r.IntN(20)) * time.Millisecond
	faultEvery := time.Duration(50+r.IntN(1000)) * time.Millisecond
	nextFault := c.Now + faultEvery
	restarts := map[totem.NodeID]time.Duration{} // crashed nodes coming back soon
	for c.Now < chaos && c.Err() == nil {
		c.RunFor(time.Duration(r.Int64N(int64(2 * sendEvery))))
		if up := upNodes(c); len(up) > 0 {
			c.Send(up[r.IntN(len(up))], totem.Guarantee(r.IntN(2)))
		}
		for _, id := range ids {
			if at, ok := restarts[id]; ok && c.Now >= at {
				delete(restarts, id)
				c.Restart(id)
			}
		}
		if c.Now >= nextFault {
			nextFault = c.Now + time.Duration(r.Int64N(int64(2*faultEvery)))
			res.Faults++
			fault(c, r, ids, chaosNet, restarts)
		}
	}
	if c.Err() != nil {
		return res, c.Err()
	}

	// Heal everything; some crashed nodes stay down.
	c.Heal()
	c.SetNet(Net{Latency: chaosNet.Latency, Jitter: chaosNet.Jitter, FIFO: chaosNet.FIFO})
	for _, id := range ids {
		if n := c.Node(id); !n.Up && r.IntN(4) != 0 {
			c.Restart(id)
		}
	}
	if len(upNodes(c)) == 0 {
		c.Restart(ids[0])
	}
	if t := c.StalledUntil(); t > 0 {
		// The last fault ends when the last stalled processor runs again.
		if err := c.RunUntil(t); err != nil {
			return res, err
		}
	}
	healed := c.Now
	if err := waitConverged(c, LivenessBound); err != nil {
		return res, err
	}
	res.Converge = c.Now - healed

	// Probes: everything sent now reaches every live node.
	// A full queue (the chaos phase's backlog) makes Send fail: retry.
	var probes []uint64
	deadline := c.Now + LivenessBound
	for _, id := range upNodes(c) {
		for g := totem.Agreed; g <= totem.Safe; g++ {
			m := c.Send(id, g)
			for ; m == 0 && c.Now < deadline && c.Err() == nil; m = c.Send(id, g) {
				c.RunFor(10 * time.Millisecond)
			}
			if m == 0 {
				c.fail("liveness: n%d cannot queue a message for %v", id, LivenessBound)
				return res, c.Err()
			}
			probes = append(probes, m)
		}
	}
	if err := waitDelivered(c, probes, LivenessBound); err != nil {
		return res, err
	}
	if !c.Converged() {
		c.fail("liveness: the ring split again without any fault")
		return res, c.Err()
	}
	c.Check.CheckSelfDelivery()
	res.Stats = c.Stats
	return res, c.Err()
}

// traceLen is the trace length of random runs: RINGMASTER_SIM_TRACE
// overrides the default (longer traces help with liveness failures).
func traceLen() int {
	if n, err := strconv.Atoi(os.Getenv("RINGMASTER_SIM_TRACE")); err == nil && n > 0 {
		return n
	}
	return 0
}

func upNodes(c *Cluster) []totem.NodeID {
	var up []totem.NodeID
	for _, n := range c.Nodes {
		if n.Up {
			up = append(up, n.ID)
		}
	}
	return up
}

// waitConverged runs until the cluster is one ring, checking every few
// milliseconds, and fails after bound.
func waitConverged(c *Cluster, bound time.Duration) error {
	deadline := c.Now + bound
	for c.Now < deadline {
		if err := c.RunFor(5 * time.Millisecond); err != nil {
			return err
		}
		if c.Converged() {
			return nil
		}
	}
	var states []string
	for _, n := range c.Nodes {
		if n.Up {
			st := n.P.Status()
			states = append(states, fmt.Sprintf("n%d %s %v %v", n.ID, st.State, st.Ring, st.Members))
		}
	}
	c.fail("liveness: no single ring %v after the last fault healed: %v", bound, states)
	return c.Err()
}

// waitDelivered runs until every live node delivered every message in
// ids (they may queue behind the chaos phase's backlog), failing after
// bound.
func waitDelivered(c *Cluster, ids []uint64, bound time.Duration) error {
	deadline := c.Now + bound
	for {
		missing := ""
		for _, m := range ids {
			for _, id := range upNodes(c) {
				if !c.Check.DeliveredBy(id, m) && missing == "" {
					missing = fmt.Sprintf("msg %d not delivered by n%d", m, id)
				}
			}
		}
		if missing == "" {
			return nil
		}
		if c.Now >= deadline {
			c.fail("liveness: %s %v after convergence", missing, bound)
			return c.Err()
		}
		if err := c.RunFor(10 * time.Millisecond); err != nil {
			return err
		}
	}
}

// fault injects one random fault.
func fault(c *Cluster, r *rand.Rand, ids []totem.NodeID, chaos Net, restarts map[totem.NodeID]time.Duration) {
	up := upNodes(c)
	var down []totem.NodeID
	for _, id := range ids {
		if !slices.Contains(up, id) {
			down = append(down, id)
		}
	}
	split := func(k int) [][]totem.NodeID {
		g := make([][]totem.NodeID, k)
		for _, id := range ids {
			i := r.IntN(k)
			g[i] = append(g[i], id)
		}
		return g
	}
	switch k := r.IntN(16); {
	case k >= 14:
		// Descheduled on a busy machine, a long GC pause, a VM pause,
		// kill -STOP: from 10 ms to 5 × token.
		if len(up) > 0 {
			c.Pause(up[r.IntN(len(up))], 10*time.Millisecond+time.Duration(r.Int64N(int64(5*c.cfg.Timings.Token))))
		}
	case k < 2 && len(up) > 1:
		c.Crash(up[r.IntN(len(up))])
	case k < 3 && len(up) > 1:
		// kill -9 and restart at once: often before the others noticed.
		id := up[r.IntN(len(up))]
		c.Crash(id)
		restarts[id] = c.Now + time.Duration(r.IntN(300))*time.Millisecond
	case k < 5 && len(down) > 0:
		c.Restart(down[r.IntN(len(down))])
	case k < 7:
		c.Partition(split(2)...)
	case k < 8:
		c.Partition(split(3)...)
	case k < 9:
		c.Partition([]totem.NodeID{ids[r.IntN(len(ids))]})
	case k < 11:
		c.Heal()
	case k < 12 && len(up) > 1:
		id := up[r.IntN(len(up))]
		c.Leave(id)
		if r.IntN(2) == 0 {
			restarts[id] = c.Now + time.Duration(r.IntN(500))*time.Millisecond
		}
	default:
		n := chaos
		n.Loss = []float64{0, 0.05, 0.3, 0.5}[r.IntN(4)]
		n.Dup = []float64{0, 0.1}[r.IntN(2)]
		n.Jitter = time.Duration(r.IntN(10000)) * time.Microsecond
		c.SetNet(n)
	}
}
