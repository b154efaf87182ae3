package stonithd

import (
	"fmt"
	"math/rand"
	"sort"
	"testing"
	"time"
)

// TestFencerRandomized drives the core with random devices, topologies,
// requests, results, lost results and cancellations, and checks after
// every step that: each operation ends exactly once, with one history
// entry; nothing runs for an operation that ended; and every operation
// ends within a bound (no fencing blocks forever). On failure it prints
// the seed; add it to a regression test.
func TestFencerRandomized(t *testing.T) {
	seeds := int64(300)
	if testing.Short() {
		seeds = 30
	}
	for seed := int64(1); seed <= seeds; seed++ {
		if err := simulate(seed); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
}

func simulate(seed int64) error {
	r := rand.New(rand.NewSource(seed))
	md := fixtures(nil)
	names := []string{"full", "nolist", "offonly", "none", "dummy"}
	nodes := []string{"n1", "n2", "n3", "n4"}
	var devs []*Device
	for i := 0; i < r.Intn(4)+1; i++ {
		p := map[string]string{"pcmk_reboot_timeout": fmt.Sprintf("%ds", r.Intn(20)+1), "pcmk_off_retries": fmt.Sprint(r.Intn(3))}
		switch r.Intn(4) {
		case 0:
			p["pcmk_host_list"] = nodes[r.Intn(4)] + "," + nodes[r.Intn(4)]
		case 1:
			p["pcmk_host_check"] = "none"
		case 2:
			p["pcmk_host_map"] = nodes[r.Intn(4)] + ":1"
		}
		if r.Intn(4) == 0 {
			p["pcmk_delay_max"] = "3s"
		}
		d, err := NewDeviceFromParams(fmt.Sprintf("d%d", i), "fence_x", p, nil, md[names[r.Intn(len(names))]], DeviceOptions{})
		if err != nil {
			return err
		}
		devs = append(devs, d)
	}
	topo := &Topology{}
	if r.Intn(2) == 0 {
		for i := 0; i < r.Intn(4); i++ {
			l := &Level{ID: fmt.Sprint("l", i), Index: r.Intn(3) + 1, Target: nodes[r.Intn(4)]}
			for j := 0; j < r.Intn(3); j++ { // 0 devices: only possible in code
				l.Devices = append(l.Devices, fmt.Sprintf("d%d", r.Intn(len(devs)+1))) // may be unknown
			}
			topo.Levels = append(topo.Levels, l)
		}
	}
	f := New(Config{Node: "n1", Rand: r.Int63n})
	f.SetDevices(devs)
	f.SetTopology(topo)

	now := t0
	open := map[OpID]time.Time{}   // op -> started
	running := map[CmdID]Command{} // commands handed out, not answered or killed
	ended := map[OpID]bool{}
	entries := 0
	// No single action is longer than 20s plus delays; an operation has
	// at most 4 devices × 3 levels × 3 attempts, plus queries.
	const bound = 20 * time.Minute

	check := func() error {
		rd := f.Ready()
		for _, id := range rd.Cancel {
			delete(running, id)
		}
		for _, c := range rd.Commands {
			if ended[c.Op] {
				return fmt.Errorf("command %d for ended op %d", c.ID, c.Op)
			}
			if c.Timeout <= 0 || !c.Deadline.After(now) {
				return fmt.Errorf("command %+v has no time", c)
			}
			running[c.ID] = c
		}
		for _, o := range rd.Done {
			if ended[o.Op] {
				return fmt.Errorf("op %d ended twice", o.Op)
			}
			if _, ok := open[o.Op]; !ok {
				return fmt.Errorf("op %d ended but was never started", o.Op)
			}
			if o.Err == nil && o.Entry.Device == "" {
				return fmt.Errorf("op %d succeeded without a device", o.Op)
			}
			if (o.Err == nil) != (o.Entry.Result == ResultSuccess) {
				return fmt.Errorf("op %d: err %v, entry %+v", o.Op, o.Err, o.Entry)
			}
			ended[o.Op] = true
			delete(open, o.Op)
		}
		for id, c := range running {
			// A shared list query may outlive the op that issued it.
			if ended[c.Op] && !(c.Kind == KindQuery && c.Action == AgentList) {
				return fmt.Errorf("command %d of ended op %d was not killed", id, c.Op)
			}
		}
		entries += len(rd.History)
		if entries != len(ended) {
			return fmt.Errorf("%d history entries for %d ended ops", entries, len(ended))
		}
		for op, start := range open {
			if now.Sub(start) > bound {
				return fmt.Errorf("op %d open for %v", op, now.Sub(start))
			}
		}
		return nil
	}

	for step := 0; step < 400; step++ {
		switch k := r.Intn(10); {
		case k < 2:
			req := Request{Target: nodes[r.Intn(4)], Action: []Action{ActionReboot, ActionOff, ActionOn}[r.Intn(3)]}
			if r.Intn(3) == 0 {
				req.Timeout = time.Duration(r.Intn(60)+1) * time.Second
			}
			id, err := f.Fence(req, now)
			if err != nil {
				return err
			}
			if ended[id] {
				return fmt.Errorf("Fence returned ended op %d", id)
			}
			if _, ok := open[id]; !ok {
				open[id] = now
			}
		case k < 7 && len(running) > 0:
			ids := make([]CmdID, 0, len(running))
			for id := range running {
				ids = append(ids, id)
			}
			sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
			id := ids[r.Intn(len(ids))]
			c := running[id]
			delete(running, id)
			if r.Intn(8) == 0 {
				break // the result is lost: only Tick will end it
			}
			res := CommandResult{RC: []int{0, 0, 1, 2}[r.Intn(4)]}
			if c.Action == AgentList {
				res.Output = nodes[r.Intn(4)] + "\n" + nodes[r.Intn(4)]
			}
			if r.Intn(10) == 0 {
				res = CommandResult{RC: -1, TimedOut: true}
			}
			f.Result(id, res, now)
		case k < 9:
			now = now.Add(time.Duration(r.Intn(5000)) * time.Millisecond)
			f.Tick(now)
		default:
			f.Cancel(nodes[r.Intn(4)], "rejoined", now)
		}
		if err := check(); err != nil {
			return fmt.Errorf("step %d: %w", step, err)
		}
	}
	// Drain: with no more answers, time alone ends everything.
	for i := 0; i < 1000 && len(open) > 0; i++ {
		now = now.Add(10 * time.Second)
		f.Tick(now)
		if err := check(); err != nil {
			return fmt.Errorf("drain: %w", err)
		}
	}
	if len(open) > 0 || len(f.Pending()) > 0 {
		return fmt.Errorf("ops never ended: %v", f.Pending())
	}
	return nil
}
