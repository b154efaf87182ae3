package ring

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ringmaster/bench"
	"ringmaster/internal/clustertest"
)

// The figures of bench/RESULTS.md ("3-node ring") come from here. Each
// benchmark starts its own 3-node cluster once (use -benchtime 1x), runs
// pload against node 1 and reports what pload measured:
//
//	go test -run '^$' -bench Throughput -benchtime 1x -timeout 30m ./tests/ring   # flat out, one sender
//	go test -run '^$' -bench Latency -benchtime 1x ./tests/ring                     # --rate 1000
//	go test -run '^$' -bench IdleCPU -benchtime 1x ./tests/ring                     # token 300, 20 s
//	go test -run '^$' -bench Verify -benchtime 1x ./tests/ring                      # pload verify, 3 senders
//
// Three setups each: udpu on 127.0.0.1–3 ("loopback"), and udpu or udp
// (multicast) between three network namespaces on a bridge ("netns-*",
// root only). RINGMASTER_BENCH_DURATION sets pload's time per size
// (default 5s), RINGMASTER_BENCH_SIZES the sizes (default
// 64,1600,8000,40000), RINGMASTER_BENCH_TOTEM extra [totem] lines.

type setup struct {
	name      string
	transport string
	netns     bool
}

var setups = []setup{{"loopback-udpu", "udpu", false}, {"netns-udpu", "udpu", true}, {"netns-udp", "udp", true}}

func benchEnv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func benchCluster(b *testing.B, s setup, token int) *clustertest.Cluster {
	if s.netns && os.Geteuid() != 0 {
		b.Skip("network namespaces need root")
	}
	extra := "token_coefficient = 0\n" + os.Getenv("RINGMASTER_BENCH_TOTEM")
	c := clustertest.New(b, clustertest.Options{Nodes: 3, Transport: s.transport, Token: token, ExtraTotem: extra, Netns: s.netns})
	c.StartAll()
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	return c
}

// ploadRun runs `pload run` against node 1 and decodes its JSON.
func ploadRun(b *testing.B, c *clustertest.Cluster, args ...string) *bench.RunResults {
	b.Helper()
	args = append([]string{"run", "--json", "--socket", c.Node(1).Socket,
		"--sizes", benchEnv("RINGMASTER_BENCH_SIZES", "64,1600,8000,40000"),
		"--duration", benchEnv("RINGMASTER_BENCH_DURATION", "5s")}, args...)
	out, err := exec.Command(c.Bin+"/pload", args...).Output()
	require.NoError(b, err, "pload %s:\n%s", strings.Join(args, " "), out)
	var res bench.RunResults
	require.NoError(b, json.Unmarshal(out, &res), string(out))
	return &res
}

// BenchmarkThroughput: one sender on node 1, AGREED, as fast as flow
// control allows (issue 5: ≥ 400k, 85k, 35k, 9k msgs/s at 64, 1,600,
// 8,000 and 40,000 B).
func BenchmarkThroughput(b *testing.B) {
	for _, s := range setups {
		b.Run(s.name, func(b *testing.B) {
			c := benchCluster(b, s, 1000)
			for range b.N {
				res := ploadRun(b, c)
				for _, r := range res.Results {
					require.True(b, r.OrderOK, "size %d delivered out of order", r.Size)
					b.ReportMetric(r.MsgsPerSec, fmt.Sprintf("msgs/s-%dB", r.Size))
					b.Logf("%s %6d B: %8.0f msgs/s %7.1f MB/s  p50 %.0f µs  p99 %.0f µs", s.name, r.Size, r.MsgsPerSec, r.MBPerSec, r.Latency.P50, r.Latency.P99)
				}
			}
			for i := 1; i <= 3; i++ {
				if st := c.Status(i); st != nil {
					b.Logf("%s n%d: retransmits %d, token losses %d, datagrams in %d out %d", s.name, i,
						st.Counters["retransmits"], st.Counters["token_losses"], st.Counters["datagrams_in"], st.Counters["datagrams_out"])
				}
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkLatency: send-to-self-delivery latency on node 1 at 1,000
// msgs/s, and its ratio to the machine's floors measured right before and
// after pload in the same run: bench.UDPFloor (a plain UDP round trip
// between two goroutines of one process, paced the same way; issue 16
// asks for 3 × it at p50 and p99) and bench.ProcessFloor (a Unix-socket
// round trip to another process: the least any client/daemon round trip
// costs on the machine).
func BenchmarkLatency(b *testing.B) {
	dur, err := time.ParseDuration(benchEnv("RINGMASTER_BENCH_DURATION", "5s"))
	require.NoError(b, err)
	for _, s := range setups {
		b.Run(s.name, func(b *testing.B) {
			c := benchCluster(b, s, 1000)
			echo := []string{c.Bin + "/pload", "echo"}
			floors := func() (udp, proc bench.LatencyUS) {
				udp, err := bench.UDPFloor(1000, dur)
				require.NoError(b, err)
				proc, err = bench.ProcessFloor(context.Background(), 1000, dur, echo)
				require.NoError(b, err)
				return udp, proc
			}
			for range b.N {
				udp0, proc0 := floors()
				res := ploadRun(b, c, "--rate", "1000")
				udp1, proc1 := floors()
				fp50, fp99 := (udp0.P50+udp1.P50)/2, (udp0.P99+udp1.P99)/2
				pp50, pp99 := (proc0.P50+proc1.P50)/2, (proc0.P99+proc1.P99)/2
				b.Logf("%s udp floor (in-process round trip at 1000/s): p50 %.0f/%.0f µs  p99 %.0f/%.0f µs (before/after)",
					s.name, udp0.P50, udp1.P50, udp0.P99, udp1.P99)
				b.Logf("%s process floor (cross-process unix round trip at 1000/s): p50 %.0f/%.0f µs  p99 %.0f/%.0f µs (before/after)",
					s.name, proc0.P50, proc1.P50, proc0.P99, proc1.P99)
				for _, r := range res.Results {
					require.True(b, r.OrderOK, "size %d delivered out of order", r.Size)
					b.ReportMetric(r.Latency.P50, fmt.Sprintf("p50-µs-%dB", r.Size))
					b.ReportMetric(r.Latency.P99, fmt.Sprintf("p99-µs-%dB", r.Size))
					b.ReportMetric(r.Latency.P50/fp50, fmt.Sprintf("p50-x-floor-%dB", r.Size))
					b.ReportMetric(r.Latency.P99/fp99, fmt.Sprintf("p99-x-floor-%dB", r.Size))
					b.ReportMetric(r.Latency.P50/pp50, fmt.Sprintf("p50-x-procfloor-%dB", r.Size))
					b.ReportMetric(r.Latency.P99/pp99, fmt.Sprintf("p99-x-procfloor-%dB", r.Size))
					b.Logf("%s %6d B at 1000/s: p50 %.0f µs (%.1f x udp floor, %.1f x process floor)  p90 %.0f µs  p99 %.0f µs (%.1f x, %.1f x)  p99.9 %.0f µs  max %.0f µs",
						s.name, r.Size, r.Latency.P50, r.Latency.P50/fp50, r.Latency.P50/pp50, r.Latency.P90,
						r.Latency.P99, r.Latency.P99/fp99, r.Latency.P99/pp99, r.Latency.P999, r.Latency.Max)
				}
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkVerify: pload verify with one connection on every node, all
// three sending 1,600-byte messages flat out for RINGMASTER_BENCH_DURATION
// (default 5s, SAFE with RINGMASTER_BENCH_SAFE=1): every node must deliver
// the same messages in the same order, none lost or duplicated.
func BenchmarkVerify(b *testing.B) {
	for _, s := range setups {
		b.Run(s.name, func(b *testing.B) {
			c := benchCluster(b, s, 1000)
			args := []string{"verify", "--json", "--size", "1600", "--duration", benchEnv("RINGMASTER_BENCH_DURATION", "5s"),
				"--socket", c.Node(1).Socket, "--socket", c.Node(2).Socket, "--socket", c.Node(3).Socket}
			if os.Getenv("RINGMASTER_BENCH_SAFE") == "1" {
				args = append(args, "--guarantee", "safe")
			}
			for range b.N {
				out, err := exec.Command(c.Bin+"/pload", args...).Output()
				require.NoError(b, err, "pload %s:\n%s", strings.Join(args, " "), out)
				var v bench.VerifyResult
				require.NoError(b, json.Unmarshal(out, &v), string(out))
				require.True(b, v.OK(), string(out))
				b.ReportMetric(v.MsgsPerSec, "msgs/s")
				b.Logf("%s verify: sent %d, delivered %v, order ok %v, lost %d, duplicates %d, %.0f msgs/s",
					s.name, v.Sent, v.Delivered, v.OrderOK, v.Lost, v.Duplicates, v.MsgsPerSec)
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// cpuTicks is utime+stime of a process, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command may hold spaces: fields count from after its ')'.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s, nil
}

// clockTick is USER_HZ, 100 on every Linux this runs on.
const clockTick = 100

// BenchmarkIdleCPU: CPU time of each ringd of an idle 3-node ring with
// token 300 ms (issue 5: below 1 % of a core per node), over
// RINGMASTER_BENCH_IDLE (default 20s).
func BenchmarkIdleCPU(b *testing.B) {
	d, err := time.ParseDuration(benchEnv("RINGMASTER_BENCH_IDLE", "20s"))
	require.NoError(b, err)
	for _, s := range setups {
		b.Run(s.name, func(b *testing.B) {
			c := benchCluster(b, s, 300)
			time.Sleep(2 * time.Second) // let start-up traffic settle (a measurement, not a test)
			for range b.N {
				var before [3]int64
				for i := range 3 {
					before[i], err = cpuTicks(c.Node(i + 1).PID())
					require.NoError(b, err)
				}
				time.Sleep(d)
				for i := range 3 {
					after, err := cpuTicks(c.Node(i + 1).PID())
					require.NoError(b, err)
					pct := float64(after-before[i]) / clockTick / d.Seconds() * 100
					b.ReportMetric(pct, fmt.Sprintf("cpu%%-n%d", i+1))
					b.Logf("%s n%d: %.2f %% of a core", s.name, i+1, pct)
				}
			}
			c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
			b.ReportMetric(0, "ns/op")
		})
	}
}

// TestSoak: with token = 200 ms, a 3-node ring (udpu on 127.0.0.1–3) under
// saturated traffic — pload run flat out against every node at once, all
// sizes in turn — must run for RINGMASTER_SOAK (e.g. 10m) without a single
// membership change or token loss (issue 5: no false failure on a busy
// 2-core machine). Skipped unless RINGMASTER_SOAK is set:
//
//	RINGMASTER_SOAK=10m go test -run Soak -timeout 30m -v ./tests/ring
func TestSoak(t *testing.T) {
	v := os.Getenv("RINGMASTER_SOAK")
	if v == "" {
		t.Skip("set RINGMASTER_SOAK=10m to run the soak test")
	}
	d, err := time.ParseDuration(v)
	require.NoError(t, err)
	c := clustertest.New(t, clustertest.Options{Nodes: 3, Transport: "udpu", Token: 200, ExtraTotem: "token_coefficient = 0"})
	c.StartAll()
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	ring0 := c.MustStatus(t, 1).RingID

	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		runs     int
		failures []string
		best     = map[int]float64{}
	)
	for i := 1; i <= 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				// Short runs so the last one ends soon after the soak.
				out, err := exec.Command(c.Bin+"/pload", "run", "--json", "--socket", c.Node(i).Socket,
					"--sizes", "64,1600,8000,40000", "--duration", "5s").Output()
				var res bench.RunResults
				mu.Lock()
				runs++
				if err != nil || json.Unmarshal(out, &res) != nil {
					failures = append(failures, fmt.Sprintf("pload on n%d: %v: %s", i, err, out))
				}
				for _, r := range res.Results {
					if !r.OrderOK {
						failures = append(failures, fmt.Sprintf("pload on n%d: size %d not in order", i, r.Size))
					}
					best[r.Size] = max(best[r.Size], r.MsgsPerSec)
				}
				mu.Unlock()
			}
		}()
	}
	// Watch the ring once a second: the ring ID must never change.
	start := time.Now()
	changed := ""
	tick := time.NewTicker(time.Second)
watch:
	for {
		select {
		case <-ctx.Done():
			break watch
		case <-tick.C:
			for i := 1; i <= 3; i++ {
				st := c.Status(i)
				if st != nil && (st.RingID != ring0 || st.State != "operational") && changed == "" {
					changed = fmt.Sprintf("after %v node %d is %s in ring %v (was %v)", time.Since(start).Round(time.Second), i, st.State, st.RingID, ring0)
				}
			}
		}
	}
	tick.Stop()
	wg.Wait()
	for i := 1; i <= 3; i++ {
		st := c.MustStatus(t, i)
		t.Logf("n%d: ring %v, token losses %d, gathers %d, retransmits %d, datagrams in %d out %d",
			i, st.RingID, st.Counters["token_losses"], st.Counters["gathers"], st.Counters["retransmits"], st.Counters["datagrams_in"], st.Counters["datagrams_out"])
		if st.RingID != ring0 || st.Counters["token_losses"] != 0 {
			changed = fmt.Sprintf("node %d: ring %v (was %v), %d token losses", i, st.RingID, ring0, st.Counters["token_losses"])
		}
	}
	t.Logf("%v soak, token 200 ms: %d pload runs; best msgs/s per size under 3 concurrent senders: %v", d, runs, best)
	require.Empty(t, changed, "membership changed under load")
	require.Empty(t, failures)
}
