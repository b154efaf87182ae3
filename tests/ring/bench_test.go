package ring

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"ringmaster/internal/clustertest"
)

// BenchmarkFailover measures, on 3 ringd processes (udpu on 127.0.0.1–3,
// token 300 ms, token_coefficient 0), how long the survivors take to report
// the new 2-node ring after kill -9 of one node, how long a restarted node
// takes to be back in a 3-node ring, and how long the others take after a
// graceful leave (SIGTERM). Times are measured from the signal to the
// moment every survivor answers `status` with the new ring, polling every
// 5 ms. RINGMASTER_BENCH_TOKEN sets the token in ms (default 300). Run:
//
//	go test -run '^$' -bench Failover -benchtime 10x ./tests/ring
//	RINGMASTER_BENCH_TOKEN=200 go test -run '^$' -bench Failover -benchtime 20x ./tests/ring
func BenchmarkFailover(b *testing.B) {
	token, err := strconv.Atoi(benchEnv("RINGMASTER_BENCH_TOKEN", "300"))
	if err != nil || token < 10 {
		b.Fatalf("RINGMASTER_BENCH_TOKEN: want milliseconds (at least 10), got %q", benchEnv("RINGMASTER_BENCH_TOKEN", ""))
	}
	c := clustertest.New(b, clustertest.Options{Nodes: 3, Transport: "udpu", Token: token, ExtraTotem: "token_coefficient = 0"})
	c.StartAll()
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	var fail, rejoin, leave []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		c.Kill(3)
		c.MustRing(deadline, []int{1, 2}, 1, 2)
		fail = append(fail, time.Since(t0))

		t0 = time.Now()
		c.Start(3)
		c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
		rejoin = append(rejoin, time.Since(t0))

		t0 = time.Now()
		if err := c.Stop(2); err != nil {
			b.Fatal(err)
		}
		c.MustRing(deadline, []int{1, 3}, 1, 3)
		leave = append(leave, time.Since(t0))
		c.Start(2)
		c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	}
	b.StopTimer()
	ms := func(d []time.Duration, q float64) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[int(q*float64(len(s)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(ms(fail, 0.5), "failover-p50-ms")
	b.ReportMetric(ms(fail, 1), "failover-max-ms")
	b.ReportMetric(ms(fail, 0.5)/float64(token), "failover-x-token")
	b.ReportMetric(ms(fail, 1)/float64(token), "failover-max-x-token")
	b.ReportMetric(ms(rejoin, 0.5), "rejoin-p50-ms")
	b.ReportMetric(ms(rejoin, 1), "rejoin-max-ms")
	b.ReportMetric(ms(leave, 0.5), "leave-p50-ms")
	b.ReportMetric(ms(leave, 1), "leave-max-ms")
	b.ReportMetric(0, "ns/op")
}
