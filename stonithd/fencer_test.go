package stonithd

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"ringmaster/internal/golden"
)

// fixtures are agent meta-data the scripts refer to with md=NAME.
func fixtures(t testing.TB) map[string]*Metadata {
	b, err := os.ReadFile("testdata/fence_dummy.xml")
	if err != nil {
		t.Fatal(err)
	}
	dummy, err := ParseMetadata(b)
	if err != nil {
		t.Fatal(err)
	}
	acts := func(names ...string) []MetaAction {
		var out []MetaAction
		for _, n := range names {
			out = append(out, MetaAction{Name: n})
		}
		return out
	}
	return map[string]*Metadata{
		"dummy": dummy,
		// An IPMI/PDU-like agent: port, every action.
		"full": {Name: "fence_full", Params: []MetaParam{{Name: "port"}, {Name: "plug"}, {Name: "ip", Required: true}},
			Actions: acts("reboot", "off", "on", "status", "list", "monitor", "metadata")},
		// No list action: pcmk_host_check defaults to status.
		"nolist": {Name: "fence_nolist", Params: []MetaParam{{Name: "plug"}},
			Actions: acts("reboot", "off", "on", "status", "monitor", "metadata")},
		// Off only (no reboot, no on): reboot is done as off.
		"offonly": {Name: "fence_offonly", Params: []MetaParam{{Name: "port"}},
			Actions: acts("off", "status", "monitor", "metadata")},
		"none": nil,
	}
}

// fencerScript drives a Fencer from a golden script (testdata/fencer/*.txt):
//
//	device ID md=NAME [key=value ...]     add a device (agent fence_ID's md)
//	level TARGET INDEX DEV[,DEV...]       add a fencing level
//	attrs NODE key=value ...              node attributes (target-attribute levels)
//	fence TARGET ACTION                   request; prints what the core asks
//	result CMD rc=N [out=a,b] | timeout | err=TEXT
//	timeout DURATION                      Request.Timeout of later fences
//	advance DURATION                      move the clock
//	tick                                  Tick at the current time
//	cancel TARGET
//	history
type fencerScript struct {
	t     *testing.T
	md    map[string]*Metadata
	f     *Fencer
	now   time.Time
	devs  []*Device
	topo  *Topology
	attrs map[string]map[string]string
	rnd   int64
	// timeout is the Request.Timeout of later fence commands.
	timeout time.Duration
}

func (s *fencerScript) fencer() *Fencer {
	if s.f == nil {
		s.f = New(Config{
			Node: "n1",
			Rand: func(n int64) int64 { s.rnd = (s.rnd*1103515245 + 12345) % (1 << 31); return s.rnd % n },
			NodeAttrs: func(node string) map[string]string {
				return s.attrs[node]
			},
		})
		s.f.SetDevices(s.devs)
		s.f.SetTopology(s.topo)
	}
	return s.f
}

func kv(args []string) map[string]string {
	m := map[string]string{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		m[k] = strings.ReplaceAll(v, "\\s", " ")
	}
	return m
}

func (s *fencerScript) exec(c *golden.Cmd) string {
	switch c.Name {
	case "device":
		p := kv(c.Args[1:])
		md, ok := s.md[p["md"]]
		if !ok {
			c.Fatalf(s.t, "unknown md %q", p["md"])
		}
		delete(p, "md")
		meta := map[string]string{}
		for k, v := range p {
			if strings.HasPrefix(k, "meta:") {
				meta[strings.TrimPrefix(k, "meta:")] = v
				delete(p, k)
			}
		}
		d, err := NewDeviceFromParams(c.Args[0], "fence_"+c.Args[0], p, meta, md, DeviceOptions{})
		if err != nil {
			return "error: " + err.Error()
		}
		s.devs = append(s.devs, d)
		if s.f != nil {
			s.f.SetDevices(s.devs)
		}
		return fmt.Sprintf("check=%s arg=%s", d.HostCheck, d.HostArgument)
	case "level":
		if s.topo == nil {
			s.topo = &Topology{}
		}
		idx, _ := strconv.Atoi(c.Args[1])
		l := &Level{ID: "l" + strconv.Itoa(len(s.topo.Levels)+1), Index: idx, Devices: strings.Split(c.Args[2], ",")}
		if k, v, ok := strings.Cut(c.Args[0], "="); ok {
			l.TargetAttribute, l.TargetValue = k, v
		} else {
			l.Target = c.Args[0]
		}
		s.topo.Levels = append(s.topo.Levels, l)
		if s.f != nil {
			s.f.SetTopology(s.topo)
		}
		return ""
	case "attrs":
		if s.attrs == nil {
			s.attrs = map[string]map[string]string{}
		}
		s.attrs[c.Args[0]] = kv(c.Args[1:])
		return ""
	case "fence":
		id, err := s.fencer().Fence(Request{Target: c.Args[0], Action: Action(c.Args[1]), Client: "test", Timeout: s.timeout}, s.now)
		if err != nil {
			return "error: " + err.Error()
		}
		return fmt.Sprintf("op %d\n", id) + s.ready()
	case "result":
		id, _ := strconv.Atoi(c.Args[0])
		var r CommandResult
		p := kv(c.Args[1:])
		if _, ok := p["timeout"]; ok {
			r = CommandResult{RC: -1, TimedOut: true}
		}
		if v, ok := p["rc"]; ok {
			r.RC, _ = strconv.Atoi(v)
		}
		if v, ok := p["out"]; ok {
			r.Output = strings.ReplaceAll(v, ",", "\n")
		}
		if v, ok := p["err"]; ok {
			r.Err, r.RC = v, -1
		}
		s.fencer().Result(CmdID(id), r, s.now)
		return s.ready()
	case "timeout":
		d, err := time.ParseDuration(c.Args[0])
		if err != nil {
			c.Fatalf(s.t, "%v", err)
		}
		s.timeout = d
		return ""
	case "advance":
		d, err := time.ParseDuration(c.Args[0])
		if err != nil {
			c.Fatalf(s.t, "%v", err)
		}
		s.now = s.now.Add(d)
		return ""
	case "tick":
		s.fencer().Tick(s.now)
		return s.ready()
	case "cancel":
		n := s.fencer().Cancel(c.Args[0], "node rejoined", s.now)
		return fmt.Sprintf("cancelled %d\n", n) + s.ready()
	case "history":
		var b strings.Builder
		for _, e := range s.fencer().History() {
			fmt.Fprintf(&b, "%s %s %s device=%q at=%s origin=%s\n", e.Target, e.Action, e.Result, e.Device, e.Time.Sub(t0), e.Origin)
		}
		return b.String()
	}
	c.Fatalf(s.t, "unknown command")
	return ""
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (s *fencerScript) ready() string {
	r := s.f.Ready()
	var b strings.Builder
	for _, id := range r.Cancel {
		fmt.Fprintf(&b, "kill %d\n", id)
	}
	for _, c := range r.Commands {
		keys := make([]string, 0, len(c.Args))
		for k := range c.Args {
			keys = append(keys, k+"="+c.Args[k])
		}
		sort.Strings(keys)
		fmt.Fprintf(&b, "run %d %s %s %s", c.ID, c.Kind, c.Device, c.Action)
		if c.AgentAction != c.Action {
			fmt.Fprintf(&b, " (agent %s)", c.AgentAction)
		}
		fmt.Fprintf(&b, " attempt=%d timeout=%s", c.Attempt, c.Timeout)
		if c.Delay > 0 {
			fmt.Fprintf(&b, " delay=%s", c.Delay)
		}
		fmt.Fprintf(&b, " [%s]\n", strings.Join(keys, " "))
	}
	for _, o := range r.Done {
		fmt.Fprintf(&b, "done op %d %s %s: %s device=%q", o.Op, o.Request.Target, o.Request.Action, o.Entry.Result, o.Entry.Device)
		if o.Entry.Reason != "" {
			fmt.Fprintf(&b, " reason=%q", o.Entry.Reason)
		}
		b.WriteString("\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// TestFencerScripts runs the core's golden scripts; rewrite their outputs
// with -rewrite once a diff is understood.
func TestFencerScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/fencer/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			s := &fencerScript{t: t, md: fixtures(t), now: t0}
			golden.Script(t, file, func(c *golden.Cmd) string { return strings.TrimSuffix(s.exec(c), "\n") })
		})
	}
}
