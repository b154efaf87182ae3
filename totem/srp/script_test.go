package srp_test

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"ringmaster/totem"
	"ringmaster/totem/sim"
	"ringmaster/totem/srp"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden output of testdata/*.txt scripts")

// TestScripts runs the scripted scenarios in testdata/*.txt. Each command
// is followed by a line "----" and the output it must produce, ending at a
// blank line. Run with -rewrite to regenerate the outputs (then read the
// diff before committing it). Commands:
//
//	nodes 1 2 3 [token=300ms] [seed=N] [down=3,4]   new cluster (down: not started)
//	run 500ms                 advance time; prints configuration changes
//	wait-ring 1 2           run until exactly these nodes form one ring; prints it and how long it took
//	send 1 agreed|safe m1     node 1 sends a message labelled m1
//	print-rings               state, ring and members of every node
//	print-deliveries          what each node delivered since the last print
//	partition 1 2 | 3         split the network; heal reconnects it
//	drop 3                    isolate node 3 (partition 3 | the rest)
//	loss 0.2                  drop 20% of datagrams from now on
//	crash 2, restart 2, leave 2
//	counters 1                a node's counters of interest
//
// The simulator's invariant checker runs throughout: a violation fails the
// script with the seed and the trace.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runScript(t, f) })
	}
}

type scriptCmd struct {
	line int
	cmd  string
	want string
}

func parseScript(t *testing.T, path string) []scriptCmd {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []scriptCmd
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		c := scriptCmd{line: n, cmd: line}
		if !sc.Scan() || sc.Text() != "----" {
			t.Fatalf("%s:%d: command without ---- line", path, n)
		}
		n++
		var out []string
		for sc.Scan() {
			n++
			if sc.Text() == "" {
				break
			}
			out = append(out, sc.Text())
		}
		c.want = strings.Join(out, "\n")
		cmds = append(cmds, c)
	}
	return cmds
}

func runScript(t *testing.T, path string) {
	cmds := parseScript(t, path)
	s := &script{t: t}
	var b strings.Builder
	failed := false
	for _, c := range cmds {
		got, err := s.do(c.cmd)
		if err != nil {
			t.Fatalf("%s:%d: %s: %v", path, c.line, c.cmd, err)
		}
		if s.c != nil && s.c.Err() != nil {
			t.Fatalf("%s:%d: %s: invariant violated: %v", path, c.line, c.cmd, s.c.Err())
		}
		if got == "" {
			got = "ok"
		}
		if got != c.want && !*rewrite {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", path, c.line, c.cmd, got, c.want)
			failed = true
		}
		fmt.Fprintf(&b, "%s\n----\n%s\n\n", c.cmd, got)
	}
	if *rewrite && !failed {
		header := leadingComments(path)
		if err := os.WriteFile(path, []byte(header+strings.TrimRight(b.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// leadingComments keeps a script's introductory comment across -rewrite.
func leadingComments(path string) string {
	data, _ := os.ReadFile(path)
	var b strings.Builder
	for _, l := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(l, "#") {
			break
		}
		b.WriteString(l + "\n")
	}
	if b.Len() > 0 {
		b.WriteString("\n")
	}
	return b.String()
}

type script struct {
	t      *testing.T
	c      *sim.Cluster
	labels map[uint64]string
	ids    map[string]uint64
	confs  []string
	deliv  map[totem.NodeID][]uint64 // message IDs: labelled at print time (a sender may deliver inside Send)
}

func (s *script) do(line string) (string, error) {
	f := strings.Fields(line)
	if f[0] != "nodes" && s.c == nil {
		return "", fmt.Errorf("no cluster yet (use nodes)")
	}
	switch f[0] {
	case "nodes":
		return s.nodes(f[1:])
	case "run", "tick":
		d, err := time.ParseDuration(f[1])
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
	cfg.Down = down
	s.c = sim.New(cfg)
	s.c.OnEvent = func(n *sim.Node, ev srp.Event) {
		if ev.Kind == srp.EventDeliver {
			s.deliv[n.ID] = append(s.deliv[n.ID], sim.MsgID(ev.Payload))
			return
		}
		c := ev.Conf
		line := fmt.Sprintf("%7.1fms n%d %v ring=%v members=%v", float64(s.c.Now)/1e6, n.ID, c.Kind, c.Ring, c.Members)
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
