package sim

import (
	"fmt"
	"testing"
	"time"

	"ringmaster/totem"
	"ringmaster/totem/srp"
)

// BenchmarkRingThroughput measures the pure protocol core: three
// processors in one ring, every one keeping its send queue full, the
// simulator delivering datagrams instantly (no checker, no trace). One
// benchmark op is one message delivered in total order at every node, so
// ns/op is the CPU the three cores together spend per ordered message and
// msgs/s what one core could order if it had the machine to itself times
// three. The payload stands for a totem/pg frame: the driver packs many
// small application messages into one.
func BenchmarkRingThroughput(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("3nodes/%dB", size), func(b *testing.B) {
			c := New(Config{Nodes: []totem.NodeID{1, 2, 3}, Seed: 1, Timings: srp.DefaultTimings(200 * time.Millisecond),
				Net: Net{Latency: 20 * time.Microsecond}, MaxQueue: 256, NoCheck: true, TraceLen: -1})
			delivered := 0
			c.OnEvent = func(n *Node, ev srp.Event) {
				if n.ID == 1 && ev.Kind == srp.EventDeliver {
					delivered++
				}
			}
			c.RunFor(100 * time.Millisecond)
			if !c.Converged() {
				b.Fatal("no ring")
			}
			payload := make([]byte, size)
			fill := func() {
				for _, n := range c.Nodes {
					for n.P.Send(payload, totem.Agreed) == nil {
					}
					c.collect(n)
				}
			}
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			start := time.Now()
			delivered = 0
			for delivered < b.N {
				fill()
				c.RunFor(time.Millisecond)
			}
			b.ReportMetric(float64(delivered)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkIdleRotation is the cost of keeping an idle 3-node ring alive
// (token hops, held tokens, merge-detects) per simulated second.
func BenchmarkIdleRotation(b *testing.B) {
	c := New(Config{Nodes: []totem.NodeID{1, 2, 3}, Seed: 1, Timings: srp.DefaultTimings(200 * time.Millisecond),
		Net: Net{Latency: 20 * time.Microsecond}, NoCheck: true, TraceLen: -1})
	c.RunFor(time.Second)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c.RunFor(time.Second)
	}
	b.ReportMetric(float64(c.Stats.Datagrams)/float64(b.N+1), "datagrams/simulated-s")
}
