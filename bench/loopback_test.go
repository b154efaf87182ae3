package bench

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"ringmaster/cpg"
	"ringmaster/ipc"
	"ringmaster/totem/exec"
)

// BenchmarkLoopback runs pload against a one-node ringd stack (loopback
// ring, executive, cpg, ipc socket) in this process, for profiling:
//
//	go test -run=^$ -bench=Loopback/1600 -cpuprofile=cpu.out ./bench
//
// It reports pload's figures; they are lower than against a separate
// ringd process because the client shares the CPUs and the heap.
func BenchmarkLoopback(b *testing.B) {
	dir, err := os.MkdirTemp("", "bl")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	lb := exec.NewLoopback(1, 4096)
	e := exec.New(1, lb, nil)
	if err := e.Register(cpg.New()); err != nil {
		b.Fatal(err)
	}
	if err := e.Start(); err != nil {
		b.Fatal(err)
	}
	go lb.Run(e)
	defer lb.Close()
	sock := filepath.Join(dir, "s")
	srv, err := ipc.Listen(sock, e, ipc.Options{})
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve()
	defer srv.Close()
	for _, size := range []int{64, 1600, 8000, 40000} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			ctx := context.Background()
			for range b.N {
				res, err := Run(ctx, RunConfig{Socket: sock, Sizes: []int{size}, Duration: 2 * time.Second})
				if err != nil {
					b.Fatal(err)
				}
				r := res.Results[0]
				b.ReportMetric(r.MsgsPerSec, "msgs/s")
				b.ReportMetric(r.MBPerSec, "MB/s")
				b.ReportMetric(r.Latency.P50, "p50-µs")
			}
		})
	}
}
