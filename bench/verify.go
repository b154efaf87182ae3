package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"ringmaster/totem"
)

// VerifyConfig configures Verify (`pload verify`).
type VerifyConfig struct {
	// Sockets: one connection per entry, normally one per node.
	Sockets []string
	// Group (default: a fresh "pload-verify-N" so nothing else mixes in).
	Group string
	// Size of every message (default 1024).
	Size int
	// Duration of sending (default 5 s).
	Duration time.Duration
	// Rate is the total messages per second; 0: as fast as allowed.
	Rate      float64
	Guarantee totem.Guarantee
	Progress  func(Progress)
}

// VerifyResult is the JSON of `pload verify`.
type VerifyResult struct {
	Nodes      int      `json:"nodes"`
	Sent       uint64   `json:"sent"`
	Delivered  []uint64 `json:"delivered"`
	OrderOK    bool     `json:"order_ok"`
	Lost       uint64   `json:"lost"`
	Duplicates uint64   `json:"duplicates"`
	MsgsPerSec float64  `json:"msgs_per_sec"`
	// Departed lists the connections whose node left or died during the
	// run (checked up to their departure, per configuration).
	Departed []int `json:"departed,omitempty"`
	// Problems says what was wrong, in words.
	Problems []string `json:"problems,omitempty"`
}

// OK reports whether the run found nothing wrong.
func (r *VerifyResult) OK() bool {
	return r.OrderOK && r.Lost == 0 && r.Duplicates == 0 && len(r.Problems) == 0
}

// Verify connects to every socket, joins one group on each, sends from
// every connection at once, and checks what each delivered:
//
//   - connections that stayed must deliver identical sequences (messages
//     and the group's membership changes, in the same order);
//   - a connection whose node left or died must have delivered a prefix
//     of that sequence, except for trailing messages of its own node
//     (virtual synchrony: they may die with it);
//   - every message a surviving sender had accepted must reach every
//     surviving connection once (no loss, no duplicates, per-sender FIFO).
func Verify(ctx context.Context, cfg VerifyConfig) (*VerifyResult, error) {
	if len(cfg.Sockets) == 0 {
		return nil, fmt.Errorf("no sockets")
	}
	if cfg.Group == "" {
		cfg.Group = fmt.Sprintf("pload-verify-%d", rand.Uint32())
	}
	if cfg.Size == 0 {
		cfg.Size = 1024
	}
	if cfg.Size < HeaderSize || cfg.Size > MaxSize {
		return nil, fmt.Errorf("message size %d: must be %d..%d bytes", cfg.Size, HeaderSize, MaxSize)
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	n := len(cfg.Sockets)
	sc := sessionConfig{
		sockets:   cfg.Sockets,
		group:     cfg.Group,
		size:      cfg.Size,
		rate:      cfg.Rate,
		guarantee: cfg.Guarantee,
		window:    windowFor(cfg.Size, n),
		batch:     batchFor(cfg.Size),
		keepLog:   true,
	}
	sc.batch = min(sc.batch, sc.window)
	jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	s, err := open(jctx, sc)
	cancel()
	if err != nil {
		return nil, err
	}
	defer s.close()
	var progress func(int64)
	if cfg.Progress != nil {
		progress = func(start int64) {
			el := time.Duration(s.now() - start)
			d := s.conns[0].delivered.Load()
			cfg.Progress(Progress{Size: cfg.Size, Elapsed: el, Delivered: d, MsgsPerSec: float64(d) / el.Seconds()})
		}
	}
	start, drained := s.blast(ctx, cfg.Duration, 10*time.Second+cfg.Duration, progress)
	departed := make([]bool, n)
	res := &VerifyResult{Nodes: n, OrderOK: true}
	for i, c := range s.conns {
		if !c.alive() || c.sendErr != nil {
			departed[i] = true
			res.Departed = append(res.Departed, i)
		}
	}
	if !drained {
		res.Problems = append(res.Problems, "not every message came back within the drain time")
	}
	s.close() // ends the receivers: their logs are final
	sent := make([]uint64, n)
	for i, c := range s.conns {
		sent[i] = c.sent.Load()
		res.Sent += sent[i]
	}
	analyse(res, s.conns, sent, departed)
	ref := -1
	for i := range s.conns {
		if !departed[i] && (ref < 0 || len(s.conns[i].log) > len(s.conns[ref].log)) {
			ref = i
		}
	}
	if ref >= 0 {
		r := s.conns[ref]
		if el := time.Duration(r.lastAt.Load() - start).Seconds(); el > 0 {
			res.MsgsPerSec = math.Round(float64(r.delivered.Load()) / el)
		}
	}
	return res, nil
}

// analyse fills the verdict from the delivery logs.
func analyse(res *VerifyResult, conns []*conn, sent []uint64, departed []bool) {
	n := len(conns)
	logs := make([][]uint64, n)
	for i, c := range conns {
		// The session closes connections one by one at the end: the
		// membership changes that causes are not part of the run.
		l := c.log
		for len(l) > 0 && l[len(l)-1]&confMark != 0 {
			l = l[:len(l)-1]
		}
		logs[i] = l
		var msgs uint64
		for _, e := range l {
			if e&confMark == 0 {
				msgs++
			}
		}
		res.Delivered = append(res.Delivered, msgs)
	}
	ref := -1
	for i := range conns {
		if !departed[i] && (ref < 0 || len(logs[i]) > len(logs[ref])) {
			ref = i
		}
	}
	if ref < 0 {
		res.OrderOK = false
		res.Problems = append(res.Problems, "every connection departed")
		return
	}
	for i := range conns {
		if i == ref {
			continue
		}
		a, b := logs[i], logs[ref]
		k := 0
		for k < len(a) && k < len(b) && a[k] == b[k] {
			k++
		}
		if !departed[i] {
			if k != len(a) || k != len(b) {
				res.OrderOK = false
				res.Problems = append(res.Problems, fmt.Sprintf("connections %d and %d differ from delivery %d on", i, ref, k))
			}
			continue
		}
		for _, e := range a[k:] {
			if e&confMark == 0 && int(e>>48) != i {
				res.OrderOK = false
				res.Problems = append(res.Problems, fmt.Sprintf("departed connection %d delivered others' messages that connection %d did not, from delivery %d on", i, ref, k))
				break
			}
		}
	}
	// Loss and duplicates, per receiver and sender.
	for i, l := range logs {
		next := make([]uint64, n)
		for _, e := range l {
			if e&confMark != 0 {
				continue
			}
			snd, seq := int(e>>48), e&(1<<48-1)
			switch {
			case seq == next[snd]:
				next[snd]++
			case seq < next[snd]:
				res.Duplicates++
			default:
				res.Lost += seq - next[snd]
				next[snd] = seq + 1
			}
		}
		if departed[i] {
			continue
		}
		for snd := range n {
			if !departed[snd] && next[snd] < sent[snd] {
				res.Lost += sent[snd] - next[snd]
			}
		}
	}
	if res.Lost > 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("%d messages lost", res.Lost))
	}
	if res.Duplicates > 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("%d messages delivered twice", res.Duplicates))
	}
}
