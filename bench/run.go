package bench

import (
	"context"
	"fmt"
	"math"
	"time"

	cpgc "ringmaster/clients/cpg"
	"ringmaster/totem"
)

// RunConfig configures Run (`pload run`).
type RunConfig struct {
	Socket string
	// Group is the CPG group to use (default "pload").
	Group string
	// Sizes are the message sizes to measure, one after the other; each
	// at least HeaderSize.
	Sizes []int
	// Duration is how long each size sends.
	Duration time.Duration
	// Senders is the number of connections, each sending and receiving
	// (default 1).
	Senders int
	// Rate is the total messages per second to send; 0 sends as fast as
	// flow control allows.
	Rate float64
	// Guarantee of every message.
	Guarantee totem.Guarantee
	// Window is the number of messages each sender keeps in flight (0:
	// derived from the size: 2048, fewer for big messages so that at
	// most ~16 MiB is in flight).
	Window int
	// Batch is the largest number of messages per IPC request (0:
	// derived from the size, about 256 KiB per request).
	Batch int
	// Progress, when set, is called about twice a second while sending.
	Progress func(Progress)
}

// Progress is a live view of a run.
type Progress struct {
	Size       int
	Elapsed    time.Duration
	Delivered  uint64
	MsgsPerSec float64
}

// SizeResult is one size's figures (`pload run --json`).
type SizeResult struct {
	Size       int       `json:"size"`
	MsgsPerSec float64   `json:"msgs_per_sec"`
	MBPerSec   float64   `json:"mb_per_sec"` // 10^6 bytes of payload
	Latency    LatencyUS `json:"latency_us"`
	Delivered  uint64    `json:"delivered"`
	OrderOK    bool      `json:"order_ok"`
	Sent       uint64    `json:"sent"`
	TryAgain   uint64    `json:"try_again"`
	Senders    int       `json:"senders"`
}

// RunResults is the JSON of `pload run`.
type RunResults struct {
	Results []SizeResult `json:"results"`
}

func (cfg *RunConfig) defaults() error {
	if cfg.Group == "" {
		cfg.Group = "pload"
	}
	if cfg.Senders <= 0 {
		cfg.Senders = 1
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if len(cfg.Sizes) == 0 {
		return fmt.Errorf("no message sizes")
	}
	for _, s := range cfg.Sizes {
		if s < HeaderSize || s > MaxSize {
			return fmt.Errorf("message size %d: must be %d..%d bytes", s, HeaderSize, MaxSize)
		}
	}
	if cfg.Senders > 1<<9 {
		return fmt.Errorf("at most %d senders", 1<<9)
	}
	return nil
}

// windowFor is the default window: deep enough to keep ringd busy, small
// enough that a size's in-flight bytes (which ringd also queues to each
// receiver) stay far below ipc's per-client output budget.
func windowFor(size, senders int) int {
	return max(2, min(2048, (16<<20)/senders/size))
}

// batchFor is the default batch: about 256 KiB or 256 messages per IPC
// request, whichever is fewer.
func batchFor(size int) int { return max(1, min(256, (256<<10)/size)) }

// Run measures every size in turn.
func Run(ctx context.Context, cfg RunConfig) (*RunResults, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	out := &RunResults{}
	for _, size := range cfg.Sizes {
		r, err := runSize(ctx, cfg, size)
		if err != nil {
			return out, fmt.Errorf("size %d: %w", size, err)
		}
		out.Results = append(out.Results, *r)
	}
	return out, nil
}

func runSize(ctx context.Context, cfg RunConfig, size int) (*SizeResult, error) {
	sc := sessionConfig{
		group:     cfg.Group,
		size:      size,
		rate:      cfg.Rate,
		guarantee: cfg.Guarantee,
		window:    cfg.Window,
		batch:     cfg.Batch,
	}
	for range cfg.Senders {
		sc.sockets = append(sc.sockets, cfg.Socket)
	}
	if sc.window <= 0 {
		sc.window = windowFor(size, cfg.Senders)
	}
	if sc.batch <= 0 {
		sc.batch = batchFor(size)
	}
	sc.batch = min(sc.batch, sc.window)
	jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	s, err := open(jctx, sc)
	cancel()
	if err != nil {
		return nil, err
	}
	defer s.close()
	first := s.conns[0]
	var progress func(start int64)
	if cfg.Progress != nil {
		progress = func(start int64) {
			el := time.Duration(s.now() - start)
			d := first.delivered.Load()
			cfg.Progress(Progress{Size: size, Elapsed: el, Delivered: d, MsgsPerSec: float64(d) / el.Seconds()})
		}
	}
	start, drained := s.blast(ctx, cfg.Duration, 10*time.Second+cfg.Duration, progress)
	for _, c := range s.conns {
		if c.sendErr != nil {
			return nil, c.sendErr
		}
	}
	s.close() // ends the receivers: their counters are final
	res := &SizeResult{Size: size, Senders: cfg.Senders, OrderOK: drained, Delivered: first.delivered.Load()}
	var lat Histogram
	for _, c := range s.conns {
		lat.Merge(&c.lat)
		res.Sent += c.sent.Load()
		res.TryAgain += c.tryAgain.Load()
		if c.dups != 0 || c.gaps != 0 || c.hash != first.hash || c.delivered.Load() != first.delivered.Load() {
			res.OrderOK = false
		}
	}
	if res.Delivered != res.Sent {
		res.OrderOK = false
	}
	if res.Delivered == 0 {
		return nil, errNoMessages
	}
	elapsed := time.Duration(first.lastAt.Load() - start).Seconds()
	res.MsgsPerSec = math.Round(float64(res.Delivered) / elapsed)
	res.MBPerSec = math.Round(res.MsgsPerSec*float64(size)/1e4) / 100
	res.Latency = lat.Summary()
	return res, nil
}

// MaxSize is the largest message pload sends (the CPG maximum).
const MaxSize = cpgc.MaxMessageSize
