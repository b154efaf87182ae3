package ring

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"ringmaster/totem"
	"ringmaster/totem/srp"
)

// counter is a cheap totem.Events for benchmarks.
type counter struct {
	mu    sync.Mutex
	cond  *sync.Cond
	n     int
	bytes int
	ring  []totem.NodeID
	confs int
}

func newCounter() *counter {
	c := &counter{}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *counter) Deliver(m totem.Message) {
	c.mu.Lock()
	c.n++
	c.bytes += len(m.Payload)
	c.cond.Broadcast()
	c.mu.Unlock()
}

func (c *counter) ConfChange(cc totem.ConfChange) {
	c.mu.Lock()
	c.confs++
	if cc.Kind == totem.Regular {
		c.ring = cc.Members
	}
	c.cond.Broadcast()
	c.mu.Unlock()
}

func (c *counter) wait(until func() bool) {
	c.mu.Lock()
	for !until() {
		c.cond.Wait()
	}
	c.mu.Unlock()
}

// BenchmarkRingUDPU measures the throughput of a 3-node ring over real
// udpu sockets on 127.0.0.1–3 in one process: every node sends as fast as
// its queue takes messages; msgs/s is what each node delivers (all of
// them deliver everything).
func BenchmarkRingUDPU(b *testing.B) {
	for _, size := range []int{64, 1600} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			cfgs := udpuConfigs(b, 3)
			counters := map[totem.NodeID]*counter{}
			var rings []*Ring
			for i := range cfgs {
				cfgs[i].Timings = srp.DefaultTimings(1000 * time.Millisecond)
				ctr := newCounter()
				r, err := New(cfgs[i], ctr, zap.NewNop())
				if err != nil {
					b.Fatal(err)
				}
				counters[cfgs[i].Node] = ctr
				rings = append(rings, r)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for _, r := range rings {
				wg.Add(1)
				go func() { defer wg.Done(); r.Run(ctx) }()
			}
			defer func() { cancel(); wg.Wait() }()
			for _, ctr := range counters {
				ctr.wait(func() bool { return len(ctr.ring) == 3 })
			}
			confs := map[totem.NodeID]int{}
			for id, ctr := range counters {
				ctr.mu.Lock()
				confs[id] = ctr.confs
				ctr.mu.Unlock()
			}
			payload := make([]byte, size)
			perNode := max(b.N/3, 1)
			total := 3 * perNode
			start := time.Now()
			b.ResetTimer()
			for i, r := range rings {
				ctr := counters[cfgs[i].Node]
				wg.Add(1)
				go func() {
					defer wg.Done()
					for sent := 0; sent < perNode; {
						err := r.Send(1, 1, totem.Agreed, payload)
						if errors.Is(err, totem.ErrTryAgain) {
							// Wait for deliveries to make room.
							ctr.mu.Lock()
							n := ctr.n
							for ctr.n == n && ctx.Err() == nil {
								ctr.cond.Wait()
							}
							ctr.mu.Unlock()
							continue
						}
						if err != nil {
							b.Error(err)
							return
						}
						sent++
					}
				}()
			}
			for _, ctr := range counters {
				ctr.wait(func() bool { return ctr.n >= total })
			}
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(total)/el.Seconds(), "msgs/s")
			b.ReportMetric(float64(total*size)/el.Seconds()/1e6, "MB/s")
			for id, ctr := range counters {
				ctr.mu.Lock()
				if ctr.confs != confs[id] || !slices.Equal(ctr.ring, []totem.NodeID{1, 2, 3}) {
					b.Errorf("node %d: %d configuration changes during the run, ring %v", id, ctr.confs-confs[id], ctr.ring)
				}
				ctr.mu.Unlock()
			}
			for _, r := range rings {
				if c := r.Counters(); c.Replayed+c.AuthFailures+c.BadAddress+c.UnknownNode+c.OutOfRange+c.Malformed != 0 {
					b.Errorf("node %d rejected genuine datagrams under load: %+v", r.cfg.Node, c)
				}
			}
		})
	}
}
