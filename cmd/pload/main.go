// Command pload is ringmaster's load generator and latency meter for CPG
// (cpgbench/pload style). The engine lives in bench/.
//
//	pload run --socket S [--group NAME] [--sizes 64,1600,...] [--duration 10s]
//	          [--senders K] [--rate R] [--guarantee agreed|safe] [--json]
//	pload verify --socket S1 --socket S2 --socket S3 [--size N] [--duration D] [--json]
//	pload floor [--rate R] [--duration D] [--json]
//
// run exits 1 when a size could not be measured or delivered out of order;
// verify exits 1 when any node lost, duplicated or reordered a message.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"ringmaster/bench"
	"ringmaster/totem"
)

const defaultSocket = "/run/ringmaster/ringd.sock"

// exitError carries an exit status out of a command without more output.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	// pload allocates every message it receives; a larger GC target
	// keeps the collector from eating the CPU that it measures with.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err == nil {
		return
	}
	var ee exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "pload:", err)
	os.Exit(1)
}

func newRootCmd() *cobra.Command {
	var cpuProfile string
	var stopProfile func()
	root := &cobra.Command{
		Use: "pload", Short: "CPG load generator and latency meter", SilenceUsage: true, SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if cpuProfile == "" {
				return nil
			}
			f, err := os.Create(cpuProfile)
			if err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				f.Close()
				return err
			}
			stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
			return nil
		},
		PersistentPostRun: func(*cobra.Command, []string) {
			if stopProfile != nil {
				stopProfile()
			}
		},
	}
	root.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write pload's own CPU profile to FILE (go tool pprof)")
	root.AddCommand(newRunCmd(), newVerifyCmd(), newFloorCmd(), newEchoCmd())
	return root
}

func envSocket() string {
	if s := os.Getenv("RINGMASTER_SOCKET"); s != "" {
		return s
	}
	return defaultSocket
}

func parseGuarantee(s string) (totem.Guarantee, error) {
	switch strings.ToLower(s) {
	case "agreed", "fifo":
		return totem.Agreed, nil
	case "safe":
		return totem.Safe, nil
	}
	return 0, fmt.Errorf("--guarantee: want agreed, fifo or safe, got %q", s)
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("--sizes: %q is not a number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// isTerminal reports whether f is a terminal (progress lines go there only).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progressLine returns a Progress callback drawing one updating line on
// w, or nil when w is not a terminal; clear erases the line.
func progressLine(w io.Writer, tty bool) (show func(bench.Progress), clear func()) {
	if !tty {
		return nil, func() {}
	}
	show = func(p bench.Progress) {
		fmt.Fprintf(w, "\r\033[K  size %d: %.1fs, %d delivered, %.0f msg/s", p.Size, p.Elapsed.Seconds(), p.Delivered, p.MsgsPerSec)
	}
	return show, func() { fmt.Fprint(w, "\r\033[K") }
}

func newRunCmd() *cobra.Command {
	var (
		cfg              bench.RunConfig
		sizes, guarantee string
		asJSON           bool
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Measure throughput and send-to-self-delivery latency per message size",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.Sizes, err = parseSizes(sizes); err != nil {
				return err
			}
			if cfg.Guarantee, err = parseGuarantee(guarantee); err != nil {
				return err
			}
			show, clear := progressLine(os.Stderr, isTerminal(os.Stderr))
			if show != nil {
				cfg.Progress = func(p bench.Progress) { show(p) }
			}
			out := cmd.OutOrStdout()
			// The header waits for the first result, so a ringd that
			// cannot be reached gives only the error.
			header := sync.OnceFunc(func() {
				fmt.Fprintf(out, "pload run: %s, %d sender(s), %s per size, %s, rate %s\n", cfg.Socket, max(cfg.Senders, 1), cfg.Duration, cfg.Guarantee, rateText(cfg.Rate))
				// Written out: "µ" is two bytes, which %9s would miscount.
				fmt.Fprintln(out, "    size     msgs/s      MB/s    p50 µs    p90 µs    p99 µs  p99.9 µs    max µs  delivered  order")
			})
			res := &bench.RunResults{}
			var runErr error
			for _, size := range cfg.Sizes {
				one := cfg
				one.Sizes = []int{size}
				r, err := bench.Run(cmd.Context(), one)
				clear()
				if err != nil {
					runErr = err
					break
				}
				res.Results = append(res.Results, r.Results...)
				if !asJSON {
					header()
					printRow(out, r.Results[0])
				}
			}
			if asJSON {
				if err := printJSON(out, res); err != nil {
					return err
				}
			}
			if runErr != nil {
				return runErr
			}
			for _, r := range res.Results {
				if !r.OrderOK {
					return exitError{1}
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Socket, "socket", envSocket(), "ringd IPC socket (env RINGMASTER_SOCKET)")
	f.StringVar(&cfg.Group, "group", "pload", "CPG group to use")
	f.StringVar(&sizes, "sizes", "64,320,1600,8000,40000,200000,1000000", "message sizes in bytes, comma-separated")
	f.DurationVar(&cfg.Duration, "duration", 10*time.Second, "sending time per size")
	f.IntVar(&cfg.Senders, "senders", 1, "connections sending (and receiving) at once")
	f.Float64Var(&cfg.Rate, "rate", 0, "total messages per second (0: as fast as allowed)")
	f.StringVar(&guarantee, "guarantee", "agreed", "agreed (= fifo) or safe")
	f.IntVar(&cfg.Window, "window", 0, "messages in flight per sender (0: by size)")
	f.IntVar(&cfg.Batch, "batch", 0, "messages per IPC request, at most (0: by size)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func rateText(r float64) string {
	if r <= 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%.0f msg/s", r)
}

func printRow(w io.Writer, r bench.SizeResult) {
	order := "ok"
	if !r.OrderOK {
		order = "BAD"
	}
	l := r.Latency
	fmt.Fprintf(w, "%8d %10.0f %9.2f %9.1f %9.1f %9.1f %9.1f %9.1f %10d %6s\n", r.Size, r.MsgsPerSec, r.MBPerSec, l.P50, l.P90, l.P99, l.P999, l.Max, r.Delivered, order)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newVerifyCmd() *cobra.Command {
	var (
		cfg       bench.VerifyConfig
		guarantee string
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "verify --socket S1 --socket S2 ...",
		Short: "Check that every node delivers the same messages in the same order, none lost or duplicated",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.Guarantee, err = parseGuarantee(guarantee); err != nil {
				return err
			}
			if len(cfg.Sockets) == 0 {
				cfg.Sockets = []string{envSocket()}
			}
			show, clear := progressLine(os.Stderr, isTerminal(os.Stderr))
			if show != nil {
				cfg.Progress = func(p bench.Progress) { show(p) }
			}
			res, err := bench.Verify(cmd.Context(), cfg)
			clear()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := printJSON(out, res); err != nil {
					return err
				}
			} else {
				verdict := "OK"
				if !res.OK() {
					verdict = "FAILED"
				}
				fmt.Fprintf(out, "pload verify: %s\n  nodes %d, sent %d, delivered %v, %.0f msg/s\n  order_ok %v, lost %d, duplicates %d\n",
					verdict, res.Nodes, res.Sent, res.Delivered, res.MsgsPerSec, res.OrderOK, res.Lost, res.Duplicates)
				if len(res.Departed) > 0 {
					fmt.Fprintf(out, "  departed during the run: %v\n", res.Departed)
				}
				for _, p := range res.Problems {
					fmt.Fprintf(out, "  problem: %s\n", p)
				}
			}
			if !res.OK() {
				return exitError{1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&cfg.Sockets, "socket", nil, "a node's ringd socket (repeat, one per node)")
	f.StringVar(&cfg.Group, "group", "", "CPG group (default: a fresh one)")
	f.IntVar(&cfg.Size, "size", 1024, "message size in bytes")
	f.DurationVar(&cfg.Duration, "duration", 5*time.Second, "sending time")
	f.Float64Var(&cfg.Rate, "rate", 0, "total messages per second (0: as fast as allowed)")
	f.StringVar(&guarantee, "guarantee", "agreed", "agreed (= fifo) or safe")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// floorResult is what `pload floor --json` prints.
type floorResult struct {
	Rate int `json:"rate"`
	// UDP is a UDP round trip between two goroutines of one process
	// (../shared/checks/udprtt), Process a Unix-socket round trip to
	// another process (the floor of any client/daemon round trip).
	UDP     bench.LatencyUS `json:"udp_in_process_us"`
	Process bench.LatencyUS `json:"unix_cross_process_us"`
}

func newFloorCmd() *cobra.Command {
	var (
		rate   int
		dur    time.Duration
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "floor",
		Short: "Measure this machine's latency floors: an in-process UDP round trip and a cross-process Unix-socket round trip",
		Long: `floor measures the yardsticks for pload run --rate latencies, paced the same way:
a 64-byte UDP round trip between two goroutines of one process (what
../shared/checks/udprtt measures), then a 64-byte round trip over a Unix
socket to another process (pload echo), the least any client/daemon round
trip can take on this machine without busy-polling.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			res := floorResult{Rate: rate}
			if res.UDP, err = bench.UDPFloor(rate, dur); err != nil {
				return err
			}
			if res.Process, err = bench.ProcessFloor(cmd.Context(), rate, dur, []string{self, "echo"}); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, res)
			}
			fmt.Fprintf(out, "floor at %d round trips/s, 64 B:\n", rate)
			fmt.Fprintf(out, "  udp, in-process:     p50 %7.1f µs  p99 %7.1f µs\n", res.UDP.P50, res.UDP.P99)
			fmt.Fprintf(out, "  unix, cross-process: p50 %7.1f µs  p99 %7.1f µs  (%.1f x / %.1f x the udp floor)\n",
				res.Process.P50, res.Process.P99, res.Process.P50/res.UDP.P50, res.Process.P99/res.UDP.P99)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&rate, "rate", 1000, "round trips per second")
	f.DurationVar(&dur, "duration", 5*time.Second, "measuring time per floor")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// newEchoCmd is the other process of pload floor.
func newEchoCmd() *cobra.Command {
	return &cobra.Command{
		Use: "echo SOCKET", Hidden: true, Args: cobra.ExactArgs(1),
		Short: "Echo what arrives on a Unix socket (the other process of pload floor)",
		RunE:  func(_ *cobra.Command, args []string) error { return bench.ServeEcho(args[0]) },
	}
}
