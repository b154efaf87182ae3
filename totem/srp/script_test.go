package srp_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"ringmaster/internal/golden"
	"ringmaster/totem"
	"ringmaster/totem/sim"
	"ringmaster/totem/srp"
)

// TestScripts runs the scripted scenarios in testdata/*.txt with the
// repository's golden harness (internal/golden): each command is followed
// by a line "----" and the output it must produce, ending at a blank line.
// Run with -rewrite to regenerate the outputs (then read the diff before
// committing it). Commands:
//
//	nodes 1 2 3 [token=300ms] [seed=N] [down=3,4]   new cluster (down: not started)
//	run +500ms | run +3tokens advance time by a duration or by a number of the
//	                          cluster's token timeouts; prints configuration changes
//	wait-ring 1 2             run until exactly these nodes form one ring; prints it and how long it took
//	send 1 agreed|safe m1     node 1 sends a message labelled m1
//	print-rings               state, ring and members of every node
//	print-deliveries          what each node delivered since the last print
//	partition 1 2 | 3         split the network; heal reconnects it
//	drop 3                    isolate node 3 (partition 3 | the rest)
//	loss 0.2                  drop 20% of datagrams from now on
//	crash 2, restart 2, leave 2
//	counters 1                a node's counters of interest
//
// Time is never absolute: run states how long to advance from where the
// previous command left the clock, and every configuration change is
// printed with its time since the start of the command that prints it
// ("+1.8ms"). A change of a timer constant therefore rewrites only the
// outputs of the commands whose timing it changes, not every line after.
//
// The simulator's invariant checker runs throughout: a violation fails the
// script with the seed and the trace.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s := &script{t: t}
			golden.Script(t, f, func(c *golden.Cmd) string {
				got, err := s.do(c)
				if err != nil {
					c.Fatalf(t, "%v", err)
				}
				if s.c != nil && s.c.Err() != nil {
					c.Fatalf(t, "invariant violated: %v", s.c.Err())
				}
				if got == "" {
					got = "ok"
				}
				return got
			})
		})
	}
}

type script struct {
	t      *testing.T
	c      *sim.Cluster
	token  time.Duration // the cluster's token timeout, the unit of run +Ntokens
	start  time.Duration // when the running command began: configuration changes are printed relative to it
	labels map[uint64]string
	ids    map[string]uint64
	confs  []string
	deliv  map[totem.NodeID][]uint64 // message IDs: labelled at print time (a sender may deliver inside Send)
}

func (s *script) do(c *golden.Cmd) (string, error) {
	f := append([]string{c.Name}, c.Args...)
	if f[0] != "nodes" && s.c == nil {
		return "", fmt.Errorf("no cluster yet (use nodes)")
	}
	if s.c != nil {
		s.start = s.c.Now
	}
	switch f[0] {
	case "nodes":
		return s.nodes(f[1:])
	case "run":
		if len(f) != 2 {
			return "", fmt.Errorf("run +DURATION or run +Ntokens")
		}
		d, err := s.duration(f[1])
		if err != nil {
			return "", err
		}
		s.c.RunFor(d)
		return s.flushConfs(), nil
	case "wait-ring":
		return s.waitRing(f[1:])
	case "send":
		if len(f) != 4 {
			return "", fmt.Errorf("send NODE agreed|safe LABEL")
		}
		g := totem.Agreed
		if f[2] == "safe" {
			g = totem.Safe
		}
		id := s.c.Send(s.node(f[1]), g)
		if id == 0 {
			return "try again", nil
		}
		s.labels[id], s.ids[f[3]] = f[3], id
		return "", nil
	case "print-rings":
		var out []string
		for _, n := range s.c.Nodes {
			if !n.Up {
				out = append(out, fmt.Sprintf("n%d down (persisted seq %d)", n.ID, n.Persisted))
				continue
			}
			st := n.P.Status()
			out = append(out, fmt.Sprintf("n%d %s ring=%v members=%v", n.ID, st.State, st.Ring, st.Members))
		}
		return strings.Join(out, "\n"), nil
	case "print-deliveries":
		var out []string
		for _, n := range s.c.Nodes {
			var ls []string
			for _, id := range s.deliv[n.ID] {
				ls = append(ls, s.labels[id])
			}
			out = append(out, fmt.Sprintf("n%d: %s", n.ID, strings.Join(ls, " ")))
		}
		clear(s.deliv)
		return strings.Join(out, "\n"), nil
	case "partition":
		var groups [][]totem.NodeID
		var g []totem.NodeID
		for _, a := range f[1:] {
			if a == "|" {
				groups, g = append(groups, g), nil
				continue
			}
			g = append(g, s.node(a))
		}
		s.c.Partition(append(groups, g)...)
		return "", nil
	case "drop":
		s.c.Partition([]totem.NodeID{s.node(f[1])})
		return "", nil
	case "heal":
		s.c.Heal()
		n := s.c.Net()
		n.Loss = 0
		s.c.SetNet(n)
		return "", nil
	case "loss":
		p, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return "", err
		}
		n := s.c.Net()
		n.Loss = p
		s.c.SetNet(n)
		return "", nil
	case "crash":
		s.c.Crash(s.node(f[1]))
		return "", nil
	case "restart":
		n := s.c.Node(s.node(f[1]))
		seq := n.Persisted
		s.c.Restart(n.ID)
		return fmt.Sprintf("n%d starts with persisted seq %d", n.ID, seq) + s.flushConfsNL(), nil
	case "leave":
		s.c.Leave(s.node(f[1]))
		return "", nil
	case "counters":
		n := s.c.Node(s.node(f[1]))
		k := n.P.Counters()
		return fmt.Sprintf("token_losses=%d gathers=%d", k.TokenLosses, k.Gathers), nil
	}
	return "", fmt.Errorf("unknown command %q", f[0])
}

// duration reads run's argument: "+500ms" or "+3tokens" ("+1token"). The
// "+" is required so that a script reads as relative time.
func (s *script) duration(a string) (time.Duration, error) {
	rel, ok := strings.CutPrefix(a, "+")
	if !ok {
		return 0, fmt.Errorf("run %s: time is relative to the previous command, write +%s", a, a)
	}
	if n, ok := strings.CutSuffix(strings.TrimSuffix(rel, "s"), "token"); ok {
		k, err := strconv.Atoi(n)
		if err != nil || k <= 0 {
			return 0, fmt.Errorf("run %s: want +Ntokens with N > 0", a)
		}
		return time.Duration(k) * s.token, nil
	}
	d, err := time.ParseDuration(rel)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, fmt.Errorf("run %s: want a positive duration", a)
	}
	return d, nil
}

func (s *script) node(a string) totem.NodeID {
	n, err := strconv.Atoi(a)
	if err != nil || s.c.Node(totem.NodeID(n)) == nil {
		s.t.Fatalf("no node %q", a)
	}
	return totem.NodeID(n)
}

func (s *script) nodes(args []string) (string, error) {
	cfg := sim.Config{Seed: 1, Timings: srp.DefaultTimings(300 * time.Millisecond),
		Net: sim.Net{Latency: 100 * time.Microsecond, Jitter: 100 * time.Microsecond}, TraceLen: 2000}
	var down []totem.NodeID
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			n, err := strconv.Atoi(a)
			if err != nil {
				return "", err
			}
			cfg.Nodes = append(cfg.Nodes, totem.NodeID(n))
			continue
		}
		switch k {
		case "token":
			d, err := time.ParseDuration(v)
			if err != nil {
				return "", err
			}
			cfg.Timings = srp.DefaultTimings(d)
		case "seed":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return "", err
			}
			cfg.Seed = n
		case "down":
			for _, x := range strings.Split(v, ",") {
				n, err := strconv.Atoi(x)
				if err != nil {
					return "", err
				}
				down = append(down, totem.NodeID(n))
			}
		default:
			return "", fmt.Errorf("unknown option %s", k)
		}
	}
	s.labels, s.ids, s.deliv, s.confs = map[uint64]string{}, map[string]uint64{}, map[totem.NodeID][]uint64{}, nil
	s.token = cfg.Timings.Token
	cfg.Down = down
	s.c = sim.New(cfg)
	s.start = s.c.Now
	s.c.OnEvent = func(n *sim.Node, ev srp.Event) {
		if ev.Kind == srp.EventDeliver {
			s.deliv[n.ID] = append(s.deliv[n.ID], sim.MsgID(ev.Payload))
			return
		}
		c := ev.Conf
		at := fmt.Sprintf("+%.1fms", float64(s.c.Now-s.start)/1e6)
		line := fmt.Sprintf("%9s n%d %v ring=%v members=%v", at, n.ID, c.Kind, c.Ring, c.Members)
		if len(c.Left) > 0 {
			line += fmt.Sprintf(" left=%v", c.Left)
		}
		if len(c.Joined) > 0 {
			line += fmt.Sprintf(" joined=%v", c.Joined)
		}
		s.confs = append(s.confs, line)
	}
	s.confs = nil // the one-node rings every processor starts with
	return "", nil
}

func (s *script) flushConfs() string {
	out := strings.Join(s.confs, "\n")
	s.confs = nil
	return out
}

func (s *script) flushConfsNL() string {
	if len(s.confs) == 0 {
		return ""
	}
	return "\n" + s.flushConfs()
}

// waitRing runs until the named nodes are operational in one ring made of
// exactly them, for at most 10 s.
func (s *script) waitRing(args []string) (string, error) {
	var want []totem.NodeID
	for _, a := range args {
		want = append(want, s.node(a))
	}
	slices.Sort(want)
	start := s.c.Now
	for s.c.Now-start < 10*time.Second {
		var ring totem.RingID
		ok := true
		for _, id := range want {
			n := s.c.Node(id)
			if !n.Up {
				return "", fmt.Errorf("n%d is down", id)
			}
			st := n.P.Status()
			if st.State != totem.StateOperational || !slices.Equal(st.Members, want) || (ring != totem.RingID{} && st.Ring != ring) {
				ok = false
				break
			}
			ring = st.Ring
		}
		if ok {
			return fmt.Sprintf("ring %v members=%v after %v", ring, want, (s.c.Now-start).Round(time.Millisecond)) + s.flushConfsNL(), nil
		}
		s.c.RunFor(time.Millisecond)
	}
	return "", fmt.Errorf("no ring of %v within 10s\n%s", want, s.c.Trace)
}

// TestScriptRunTime checks run's relative time: tokens scale with the
// cluster's token timeout, and an absolute-looking "50ms" is refused.
func TestScriptRunTime(t *testing.T) {
	s := &script{token: 300 * time.Millisecond}
	for in, want := range map[string]time.Duration{
		"+50ms": 50 * time.Millisecond, "+1s": time.Second,
		"+1token": 300 * time.Millisecond, "+10tokens": 3 * time.Second,
	} {
		if got, err := s.duration(in); err != nil || got != want {
			t.Errorf("duration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"50ms", "+0ms", "+-5ms", "+0tokens", "+xtokens", "+3"} {
		if d, err := s.duration(in); err == nil {
			t.Errorf("duration(%q) = %v, want an error", in, d)
		}
	}
}
