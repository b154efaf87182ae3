package observe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/clients/cpg"
	"ringmaster/internal/clustertest"
	"ringmaster/internal/events"
)

// ctlEvents runs `ringctl events --json ARGS` on node i and decodes it.
func ctlEvents(t *testing.T, c *clustertest.Cluster, i int, args ...string) []events.Event {
	t.Helper()
	out, code := c.Ctl(i, append([]string{"--json", "events"}, args...)...)
	require.Equal(t, 0, code, out)
	var evs []events.Event
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var e events.Event
		require.NoError(t, dec.Decode(&e), out)
		evs = append(evs, e)
	}
	return evs
}

func findEvent(evs []events.Event, kind events.Kind, match func(events.Event) bool) *events.Event {
	for i := range evs {
		if evs[i].Kind == kind && (match == nil || match(evs[i])) {
			return &evs[i]
		}
	}
	return nil
}

// nums reads a JSON list of numbers from an event field.
func nums(v any) []int {
	var out []int
	l, _ := v.([]any)
	for _, x := range l {
		if f, ok := x.(float64); ok {
			out = append(out, int(f))
		}
	}
	return out
}

// TestEventLog: ringctl events shows the membership changes with who
// joined and left, quorum, CPG joins and configuration reloads, in order,
// as text and JSON, filtered by --since, and --follow prints a node's
// departure as it happens. The same events are in the log as fields, no
// log line repeats a key, and SIGHUP re-applies [logging] (format, level)
// with cmap's logging.* following.
func TestEventLog(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Nodes: 3, Logging: `format = "json"`})
	c.StartAll()
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cl, err := cpg.Dial(ctx, c.Node(2).Socket)
	require.NoError(t, err)
	defer cl.Close()
	go func() {
		for range cl.Events() {
		}
	}()
	waitFor(t, "cpg join", func() error { return cl.Join(ctx, "events-test") })
	// A votequorum reconfiguration: its log line names the target node
	// next to the logger's own node field.
	out, code := c.Ctl(1, "quorum", "votes", "--node", "2", "1")
	require.Equal(t, 0, code, out)

	var evs []events.Event
	waitFor(t, "events of the 3-node ring and the CPG join on node 1", func() error {
		evs = ctlEvents(t, c, 1)
		if findEvent(evs, events.Membership, func(e events.Event) bool { return len(nums(e.Fields["members"])) == 3 }) == nil {
			return fmt.Errorf("no 3-member membership event in %v", evs)
		}
		if findEvent(evs, events.CPGJoin, func(e events.Event) bool {
			return e.Fields["group"] == "events-test" && e.Fields["member_node"] == 2.0
		}) == nil {
			return fmt.Errorf("no cpg_join of events-test from node 2")
		}
		if findEvent(evs, events.Quorum, func(e events.Event) bool { return e.Fields["quorate"] == true }) == nil {
			return fmt.Errorf("no quorate event")
		}
		return nil
	})
	for i := 1; i < len(evs); i++ {
		require.Equal(t, evs[i-1].Seq+1, evs[i].Seq, "seq without gaps")
		require.False(t, evs[i].Time.Before(evs[i-1].Time), "time order")
	}
	require.NotNil(t, findEvent(evs, events.Daemon, func(e events.Event) bool { return e.Message == "ringd started" }))
	// Every node joined once from node 1's point of view, nobody left.
	var joined []int
	for _, e := range evs {
		if e.Kind == events.Membership {
			joined = append(joined, nums(e.Fields["joined"])...)
			assert.Empty(t, nums(e.Fields["left"]))
			assert.NotEmpty(t, e.Fields["ring"])
		}
	}
	slices.Sort(joined)
	assert.Equal(t, []int{1, 2, 3}, joined)

	// Text output.
	text, code := c.Ctl(1, "events")
	require.Equal(t, 0, code, text)
	assert.Contains(t, text, "membership")
	assert.Contains(t, text, "joined=[")
	assert.Contains(t, text, "group=events-test")

	// --since: a window in the future of every event so far is empty;
	// a wide one has them all.
	// ringctl's now is later than ours, so now-d is after last.
	last := evs[len(evs)-1].Time
	recent := ctlEvents(t, c, 1, "--since", time.Since(last).Truncate(time.Millisecond).String())
	for _, e := range recent {
		assert.False(t, e.Time.Before(last), "event %d at %v is older than --since", e.Seq, e.Time)
	}
	assert.Less(t, len(recent), len(evs), "--since left the older events out")
	assert.GreaterOrEqual(t, len(ctlEvents(t, c, 1, "--since", "1h")), len(evs))
	_, code = c.Ctl(1, "events", "--since", "-5m")
	assert.NotEqual(t, 0, code, "negative --since")

	// --follow prints node 3's departure when it happens.
	fctx, fcancel := context.WithCancel(context.Background())
	defer fcancel()
	follow := exec.CommandContext(fctx, c.Bin+"/ringctl", "--socket", c.Node(1).Socket, "--json", "events", "--follow")
	stdout, err := follow.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, follow.Start())
	defer func() { fcancel(); _ = follow.Wait() }()
	lines := make(chan events.Event, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e events.Event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				lines <- e
			}
		}
		close(lines)
	}()
	// Wait until --follow has printed the history, then kill node 3.
	seen := 0
	for seen < len(evs) {
		select {
		case _, ok := <-lines:
			require.True(t, ok, "ringctl events --follow ended")
			seen++
		case <-time.After(deadline):
			t.Fatalf("--follow printed %d of %d past events", seen, len(evs))
		}
	}
	c.Kill(3)
	end := time.After(deadline)
	for gotLeave := false; !gotLeave; {
		select {
		case e, ok := <-lines:
			require.True(t, ok, "ringctl events --follow ended")
			gotLeave = e.Kind == events.Membership && slices.Equal(nums(e.Fields["left"]), []int{3})
		case <-end:
			t.Fatal("--follow did not print node 3 leaving")
		}
	}

	// SIGHUP with [logging] changed: console format and debug on.
	cfg, err := os.ReadFile(c.Node(1).Config)
	require.NoError(t, err)
	newCfg := strings.Replace(string(cfg), `format = "json"`, `format = "console"`, 1)
	newCfg = strings.Replace(newCfg, "debug = false", "debug = true", 1)
	require.NotEqual(t, string(cfg), newCfg)
	require.NoError(t, os.WriteFile(c.Node(1).Config, []byte(newCfg), 0o644))
	require.NoError(t, syscall.Kill(c.Node(1).PID(), syscall.SIGHUP))
	waitFor(t, "the reload event", func() error {
		if findEvent(ctlEvents(t, c, 1), events.ConfigReload, func(e events.Event) bool {
			a, _ := e.Fields["applied"].([]any)
			return slices.Contains(a, any("logging.format")) && slices.Contains(a, any("logging.debug"))
		}) == nil {
			return fmt.Errorf("no config_reload event applying logging.format and logging.debug")
		}
		return nil
	})
	for key, want := range map[string]string{"logging.format": "console", "logging.debug": "on"} {
		out, code := c.Ctl(1, "cmap", "get", key)
		require.Equal(t, 0, code, out)
		assert.Contains(t, out, want, key)
	}
	// New lines are in the console format, debug lines included (node 3
	// coming back makes the executive log its sync at debug level).
	c.Start(3)
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	waitFor(t, "console-format debug lines after the reload", func() error {
		if !strings.Contains(c.Log(1), "\tDEBUG\t") {
			return fmt.Errorf("no console DEBUG line yet")
		}
		return nil
	})

	// Every JSON log line of every node: no key twice, and the events are
	// there as fields.
	var sawEvent bool
	for i := 1; i <= 3; i++ {
		for _, line := range strings.Split(c.Log(i), "\n") {
			if !strings.HasPrefix(line, "{") {
				continue
			}
			keys, err := topKeys([]byte(line))
			require.NoError(t, err, line)
			counts := map[string]int{}
			for _, k := range keys {
				counts[k]++
				require.Equal(t, 1, counts[k], "key %q twice in n%d's line %s", k, i, line)
			}
			if strings.Contains(line, `"event":"cpg_join"`) && strings.Contains(line, `"group":"events-test"`) {
				sawEvent = true
			}
		}
	}
	assert.True(t, sawEvent, "a cpg_join event with its fields in the JSON log")
	assert.Contains(t, c.Log(1), `"target_node":2`, "votequorum's reconfiguration line")
}

// topKeys lists the keys of a JSON object in order, duplicates included
// (encoding/json's maps would hide them).
func topKeys(b []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not an object: %v", err)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, k.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
	}
	_, err := dec.Token()
	if err != nil && err != io.EOF {
		return nil, err
	}
	return keys, nil
}
