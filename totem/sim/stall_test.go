package sim

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ringmaster/totem"
	"ringmaster/totem/srp"
)

// Stalls longer than the token timeout (kill -STOP, a VM pause, a long GC)
// as real processes live through them (README "Stalls"): the stalled
// processor's socket fills with everything sent to it, which the driver
// then steps in one burst before its overdue timers fire, and on loopback
// datagrams between two processes arrive in order (Net.FIFO). Before the
// fix a 1.5 s stall at token 1000 ms sent three ringd processes through
// thousands of one-node rings for seconds; in this simulator the same
// scenario made millions of configuration changes in 20 s.

// ringLog records the regular configurations each node installs.
type ringLog struct {
	rings map[totem.NodeID][]totem.RingID
}

func logRings(c *Cluster) *ringLog {
	l := &ringLog{rings: map[totem.NodeID][]totem.RingID{}}
	c.OnEvent = func(n *Node, ev srp.Event) {
		if ev.Kind == srp.EventConfChange && ev.Conf.Kind == totem.Regular {
			l.rings[n.ID] = append(l.rings[n.ID], ev.Conf.Ring)
		}
	}
	return l
}

// since returns how many regular configurations each node installed after
// mark (a snapshot of the lengths).
func (l *ringLog) since(mark map[totem.NodeID]int) map[totem.NodeID]int {
	d := map[totem.NodeID]int{}
	for id, rs := range l.rings {
		d[id] = len(rs) - mark[id]
	}
	return d
}

func (l *ringLog) mark() map[totem.NodeID]int {
	m := map[totem.NodeID]int{}
	for id, rs := range l.rings {
		m[id] = len(rs)
	}
	return m
}

// stallOnce stalls node id for d on a converged cluster, with traffic, and
// returns how many regular configurations every other node installed from
// the stall until the ring was whole again and had stayed so for a token
// timeout, and how long after the resume it was whole. It fails (c.Err)
// when the ring is not whole within bound of the resume.
func stallOnce(c *Cluster, l *ringLog, r *rand.Rand, id totem.NodeID, d, bound time.Duration) (changes map[totem.NodeID]int, whole time.Duration, err error) {
	mark := l.mark()
	c.Pause(id, d)
	send := func() {
		if up := upNodes(c); len(up) > 0 {
			c.Send(up[r.IntN(len(up))], totem.Guarantee(r.IntN(2)))
		}
	}
	for c.StalledUntil() > 0 && c.Err() == nil {
		send()
		c.RunFor(time.Duration(1+r.IntN(20)) * time.Millisecond)
	}
	resumed := c.Now
	for !c.Converged() && c.Err() == nil {
		if c.Now-resumed > bound {
			c.fail("stall of n%d for %v: the ring was not whole %v after the resume", id, d, bound)
			break
		}
		send()
		c.RunFor(time.Millisecond)
	}
	whole = c.Now - resumed
	// Later changes count too: the ring must stay whole.
	quiet := c.Now + c.cfg.Timings.Token
	for c.Now < quiet && c.Err() == nil {
		send()
		c.RunFor(time.Duration(1+r.IntN(20)) * time.Millisecond)
	}
	if c.Err() == nil && !c.Converged() {
		c.fail("stall of n%d for %v: the ring split again after it was whole", id, d)
	}
	changes = l.since(mark)
	delete(changes, id)
	return changes, whole, c.Err()
}

// TestStallStorm is the regression test of the storm: three processors on
// loopback (in-order delivery), token 1000 ms, each stalled in turn for
// 1.5 s and 3 s. Each stall may cost the others two configurations (the
// stalled one excluded, then merged back) and the ring must be whole
// within 2 × token of the resume.
func TestStallStorm(t *testing.T) {
	token := 1000 * time.Millisecond
	c := New(Config{Nodes: []totem.NodeID{1, 2, 3}, Seed: 11, Timings: srp.DefaultTimings(token),
		Net: Net{Latency: loopback.Latency, Jitter: loopback.Jitter, FIFO: true}, ReuseDatagrams: true})
	l := logRings(c)
	if err := waitConverged(c, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(11, 1))
	for i, d := range []time.Duration{1500 * time.Millisecond, 3 * time.Second, 1500 * time.Millisecond, 3 * time.Second, 1500 * time.Millisecond, 3 * time.Second} {
		id := totem.NodeID(1 + i%3)
		changes, whole, err := stallOnce(c, l, r, id, d, 2*token)
		if err != nil {
			t.Fatal(err)
		}
		for q, n := range changes {
			if n > 2 {
				t.Errorf("stall of n%d for %v: n%d installed %d configurations (max 2)", id, d, q, n)
			}
		}
		t.Logf("n%d stalled %v: configurations on the others %v, whole %v after the resume", id, d, changes, whole)
	}
}

// TestStallSeeds stalls a random processor for 1–5 × token, again and
// again, in random clusters (3–5 nodes, token 200/300/1000 ms, loopback or
// LAN latencies, in-order or jittered delivery, traffic), with the
// invariant checker on. Every stall may cost each other processor at most
// three configurations, and the ring must be whole within 2 × token of the
// resume.
//
//	go test ./totem/sim -run TestStallSeeds                        200 seeds (-short: 30)
//	RINGMASTER_SIM_STALL_SEEDS=5000 go test ./totem/sim -run TestStallSeeds
//	RINGMASTER_SIM_STALL_SEED=17 go test ./totem/sim -run TestStallSeeds -v   one, with its trace
func TestStallSeeds(t *testing.T) {
	if s := os.Getenv("RINGMASTER_SIM_STALL_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		res, err := runStallSeed(seed)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("seed %d: %+v", seed, res)
		return
	}
	count := uint64(200)
	if testing.Short() {
		count = 30
	}
	if s := os.Getenv("RINGMASTER_SIM_STALL_SEEDS"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		count = n
	}
	var (
		next    atomic.Uint64
		mu      sync.Mutex
		failed  []error
		total   stallResult
		hist    [4]int // configurations per survivor per stall: 0, 1, 2, 3
		workers = min(runtime.GOMAXPROCS(0), 4)
		wg      sync.WaitGroup
		start   = time.Now()
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				seed := next.Add(1)
				if seed > count {
					return
				}
				res, err := runStallSeed(seed)
				mu.Lock()
				if err != nil {
					failed = append(failed, err)
					if len(failed) >= 3 {
						next.Store(count)
					}
				}
				total.stalls += res.stalls
				total.maxChanges = max(total.maxChanges, res.maxChanges)
				if res.maxWholeRatio > total.maxWholeRatio {
					total.maxWholeRatio, total.worst = res.maxWholeRatio, res.worst
				}
				for i, n := range res.hist {
					hist[i] += n
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, err := range failed {
		t.Error(err)
	}
	t.Logf("%d seeds, %d stalls of 1–5 × token in %v: configurations per other node per stall %v (for 0, 1, 2, 3); whole again at worst %.2f × token after the resume (%s)",
		count, total.stalls, time.Since(start).Round(time.Millisecond), hist, total.maxWholeRatio, total.worst)
}

type stallResult struct {
	stalls        int
	maxChanges    int
	hist          [4]int
	maxWholeRatio float64 // time to a whole ring after the resume, in tokens
	worst         string
}

// runStallSeed runs one random cluster through 3–6 stalls.
func runStallSeed(seed uint64) (stallResult, error) {
	var res stallResult
	r := rand.New(rand.NewPCG(seed, 0x57a11))
	n := 3 + r.IntN(3)
	ids := make([]totem.NodeID, n)
	for i := range ids {
		ids[i] = totem.NodeID(i + 1)
	}
	token := []time.Duration{200, 300, 1000}[r.IntN(3)] * time.Millisecond
	net := Net{
		Latency: time.Duration(30+r.IntN(500)) * time.Microsecond,
		Jitter:  time.Duration(r.IntN(1000)) * time.Microsecond,
		FIFO:    r.IntN(3) != 0,
	}
	c := New(Config{Nodes: ids, Seed: seed, Timings: srp.DefaultTimings(token), Net: net, MaxQueue: 64,
		TraceLen: traceLen(), ReuseDatagrams: seed%2 == 0})
	l := logRings(c)
	if err := waitConverged(c, 3*time.Second); err != nil {
		return res, err
	}
	for range 3 + r.IntN(4) {
		id := ids[r.IntN(n)]
		d := token + time.Duration(r.Int64N(int64(4*token)))
		changes, whole, err := stallOnce(c, l, r, id, d, 2*token)
		if err != nil {
			return res, err
		}
		res.stalls++
		for q, k := range changes {
			res.maxChanges = max(res.maxChanges, k)
			if k > 3 {
				c.fail("n%d stalled %v (token %v): n%d installed %d configurations (max 3)", id, d, token, q, k)
				return res, c.Err()
			}
			res.hist[k]++
		}
		if ratio := float64(whole) / float64(token); ratio > res.maxWholeRatio {
			res.maxWholeRatio = ratio
			res.worst = fmt.Sprintf("seed %d, %d nodes, token %v, stall %v, fifo %v", seed, n, token, d, net.FIFO)
		}
	}
	// Let the last messages drain, then every sender must have its own.
	if err := c.RunFor(3 * token); err != nil {
		return res, err
	}
	if c.Check != nil {
		c.Check.CheckSelfDelivery()
	}
	return res, c.Err()
}

// TestShortStallsCostNothing: stalls shorter than the token (half of them
// long enough to count as a pause, above token/2) change no configuration:
// the flush drops only membership views, and the token that waited in the
// socket keeps the ring whole.
func TestShortStallsCostNothing(t *testing.T) {
	for _, f := range []float64{0.4, 0.6, 0.8, 0.9} {
		for _, token := range []time.Duration{200 * time.Millisecond, 1000 * time.Millisecond} {
			c := New(Config{Nodes: []totem.NodeID{1, 2, 3}, Seed: 5, Timings: srp.DefaultTimings(token),
				Net: Net{Latency: loopback.Latency, Jitter: loopback.Jitter, FIFO: true}})
			l := logRings(c)
			if err := waitConverged(c, 2*time.Second); err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(5, 1))
			total := 0
			for i := range 12 {
				changes, _, err := stallOnce(c, l, r, totem.NodeID(1+i%3), time.Duration(f*float64(token)), 2*token)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range changes {
					total += n
				}
			}
			if total > 0 {
				t.Errorf("token %v, 12 stalls of %.1f × token: %d configuration changes (want none)", token, f, total)
			}
		}
	}
}
