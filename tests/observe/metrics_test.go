// Package observe tests what operators see of a running cluster: the
// OpenMetrics endpoint, the live status page (in a real headless browser),
// the event log (`ringctl events`) and the log lines, on real ringd
// processes (internal/clustertest).
package observe

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/clients/cpg"
	"ringmaster/internal/clustertest"
)

const deadline = 20 * time.Second

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v: %v", what, deadline, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scrape fetches /metrics of a node in the Prometheus text format and
// parses it with Prometheus' own parser.
func scrape(addr string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// value is the value of the family's sample whose labels include want
// (name=value pairs); ok is false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func expect(fams map[string]*dto.MetricFamily, name string, want float64, labels ...string) error {
	v, ok := value(fams, name, labels...)
	if !ok {
		return fmt.Errorf("%s%v: missing", name, labels)
	}
	if v != want {
		return fmt.Errorf("%s%v = %v, want %v", name, labels, v, want)
	}
	return nil
}

// TestMetricsScrape scrapes a real 3-node cluster: ring, quorum, CPG and
// IPC families with their values, before and after a node is killed, in
// both the Prometheus text format and OpenMetrics.
func TestMetricsScrape(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Nodes: 3})
	c.StartAll()
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)

	// A CPG member on node 2, seen by every node.
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cl, err := cpg.Dial(ctx, c.Node(2).Socket)
	require.NoError(t, err)
	defer cl.Close()
	go func() {
		for range cl.Events() {
		}
	}()
	waitFor(t, "cpg join", func() error { return cl.Join(ctx, "metrics-test") })
	require.NoError(t, cl.Mcast(ctx, cpg.Agreed, []byte("hello")))

	n1 := c.Node(1).Metrics
	waitFor(t, "3 members, quorate, one CPG group with one member", func() error {
		fams, err := scrape(n1)
		if err != nil {
			return err
		}
		for _, e := range []error{
			expect(fams, "ringmaster_ring_members", 3),
			expect(fams, "ringmaster_ring_operational", 1),
			expect(fams, "ringmaster_quorum_quorate", 1),
			expect(fams, "ringmaster_quorum_votes", 3, "type", "expected_votes"),
			expect(fams, "ringmaster_quorum_votes", 3, "type", "total_votes"),
			expect(fams, "ringmaster_quorum_votes", 2, "type", "quorum"),
			expect(fams, "ringmaster_quorum_member_votes", 1, "node_id", "1", "node", "n1", "local", "true"),
			expect(fams, "ringmaster_quorum_member_votes", 1, "node_id", "3", "node", "n3", "local", "false"),
			expect(fams, "ringmaster_cpg_groups", 1),
			expect(fams, "ringmaster_cpg_group_members", 1, "group", "metrics-test"),
			expect(fams, "ringmaster_cpg_messages_total", 1),
		} {
			if e != nil {
				return e
			}
		}
		return nil
	})

	fams, err := scrape(n1)
	require.NoError(t, err)
	rs := c.MustStatus(t, 1)
	seq, _ := value(fams, "ringmaster_ring_id_seq")
	assert.Equal(t, float64(rs.RingID.Seq), seq, "ring id seq")
	rep, _ := value(fams, "ringmaster_ring_id_representative")
	assert.Equal(t, float64(rs.RingID.Rep), rep, "ring id representative")
	ringID := fmt.Sprintf("%d.%x", rs.RingID.Rep, rs.RingID.Seq)
	assert.NoError(t, expect(fams, "ringmaster_rings", 1, "ring_id", ringID, "node_id", "1", "address", "127.0.0.1"))
	changes, _ := value(fams, "ringmaster_ring_membership_changes_total")
	assert.GreaterOrEqual(t, changes, 1.0)
	for _, name := range []string{
		"ringmaster_ring_token_rotations_total", "ringmaster_ring_datagrams_in_total",
		"ringmaster_ring_datagrams_out_total", "ringmaster_ring_messages_in_total",
		"ringmaster_ring_bytes_in_total", "ringmaster_ring_bytes_out_total",
	} {
		v, ok := value(fams, name)
		assert.True(t, ok && v > 0, "%s = %v (present %v), want > 0", name, v, ok)
	}
	din, _ := value(fams, "ringmaster_ring_datagrams_in_total")
	bin, _ := value(fams, "ringmaster_ring_bytes_in_total")
	assert.GreaterOrEqual(t, bin, 30*din, "bytes in: at least the envelope of every datagram")
	for _, name := range []string{
		"ringmaster_ring_token_losses_total", "ringmaster_ring_retransmits_total", "ringmaster_cpg_try_again_total",
		"ringmaster_ring_send_queue_messages", "ringmaster_ring_send_queue_bytes", "ringmaster_ring_srp_queue_frames", "ringmaster_ring_backlog",
	} {
		_, ok := value(fams, name)
		assert.True(t, ok, "%s missing", name)
	}
	for _, reason := range []string{"auth", "malformed"} {
		assert.NoError(t, expect(fams, "ringmaster_ring_datagrams_rejected_total", 0, "reason", reason))
	}
	assert.Equal(t, dto.MetricType_HISTOGRAM, fams["ringmaster_delivery_latency_seconds"].GetType())
	n, _ := value(fams, "ringmaster_delivery_latency_seconds")
	assert.Greater(t, n, 0.0, "delivery latency observations")

	// IPC on node 2: the CPG client's connection and requests.
	f2, err := scrape(c.Node(2).Metrics)
	require.NoError(t, err)
	assert.NoError(t, expect(f2, "ringmaster_ipc_connections", 1, "service", "cpg"))
	reqs, _ := value(f2, "ringmaster_ipc_requests_total", "service", "cpg")
	assert.GreaterOrEqual(t, reqs, 2.0, "cpg requests on node 2 (join, mcast)")
	// The group as node 2 delivered it: n1 having delivered the join
	// says nothing about node 2's delivery.
	waitFor(t, "node 2 shows metrics-test with one member", func() error {
		f2, err := scrape(c.Node(2).Metrics)
		if err != nil {
			return err
		}
		return expect(f2, "ringmaster_cpg_group_members", 1, "group", "metrics-test")
	})

	// Node 3 dies: two members, still quorate with 2 of 3 votes.
	c.Kill(3)
	c.MustRing(deadline, []int{1, 2}, 1, 2)
	waitFor(t, "2 members after kill", func() error {
		fams, err := scrape(n1)
		if err != nil {
			return err
		}
		for _, e := range []error{
			expect(fams, "ringmaster_ring_members", 2),
			expect(fams, "ringmaster_quorum_quorate", 1),
			expect(fams, "ringmaster_quorum_votes", 2, "type", "total_votes"),
		} {
			if e != nil {
				return e
			}
		}
		if _, ok := value(fams, "ringmaster_quorum_member_votes", "node_id", "3"); ok {
			return fmt.Errorf("node 3 still has member votes")
		}
		return nil
	})

	// OpenMetrics when asked for, ending in # EOF.
	req, _ := http.NewRequest("GET", "http://"+n1+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0; charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, resp.Header.Get("Content-Type"), "application/openmetrics-text")
	assert.True(t, strings.HasSuffix(string(body), "# EOF\n"), "OpenMetrics ends with # EOF")
	assert.Contains(t, string(body), "# TYPE ringmaster_ring_membership_changes counter")
	assert.Contains(t, string(body), "ringmaster_ring_members 2")
}

const dummyTOML = `
[cluster]
stonith-enabled = false

[rsc_defaults]
migration-threshold = 3

[[resource]]
id = "d1"
agent = "builtin:dummy"
[[resource.op]]
name = "monitor"
interval = "500ms"
`

// TestMetricsResourceManager scrapes the resource manager's families on a
// real cluster running one builtin:dummy resource (no root): nodes,
// resources by state and node, the DC, stonith, transitions, operations,
// then a fail count after the resource's state file is removed (its
// monitor fails once and it recovers in place).
func TestMetricsResourceManager(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Nodes: 3, Token: 300, Resources: "startup_wait = 2000"})
	c.StartAll()
	c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
	f := filepath.Join(c.Dir, "resources.toml")
	require.NoError(t, os.WriteFile(f, []byte(dummyTOML), 0o644))
	out, code := c.Ctl(1, "crm", "apply", "-f", f)
	require.Equal(t, 0, code, out)

	n1 := c.Node(1).Metrics
	var on string // the node running d1
	waitFor(t, "d1 active, three online nodes, n1 the DC", func() error {
		fams, err := scrape(n1)
		if err != nil {
			return err
		}
		on = ""
		for _, n := range []string{"n1", "n2", "n3"} {
			if e := expect(fams, "ringmaster_crm_nodes", 1, "node", n, "status", "online", "type", "member"); e != nil {
				return e
			}
			if v, _ := value(fams, "ringmaster_crm_resources", "resource", "d1", "node", n, "status", "active"); v == 1 {
				on = n
			}
		}
		if on == "" {
			return fmt.Errorf("d1 not active anywhere yet")
		}
		for _, e := range []error{
			expect(fams, "ringmaster_crm_resources", 1, "resource", "d1", "node", on, "role", "started", "managed", "true",
				"agent", "builtin:dummy", "status", "active"),
			expect(fams, "ringmaster_crm_resources", 0, "resource", "d1", "node", on, "status", "failed"),
			expect(fams, "ringmaster_crm_nodes", 1, "node", "n1", "status", "dc"),
			expect(fams, "ringmaster_crm_is_dc", 1),
			expect(fams, "ringmaster_crm_stonith_enabled", 0),
			expect(fams, "ringmaster_crm_migration_threshold", 3, "resource", "d1", "node", on),
			expect(fams, "ringmaster_crm_fail_count", 0, "resource", "d1", "node", on),
		} {
			if e != nil {
				return e
			}
		}
		if v, _ := value(fams, "ringmaster_crm_transitions_total"); v < 1 {
			return fmt.Errorf("crm_transitions_total = %v", v)
		}
		return nil
	})
	fams, err := scrape(n1)
	require.NoError(t, err)
	epoch, ok := value(fams, "ringmaster_crm_config_version", "part", "epoch")
	assert.True(t, ok && epoch >= 1, "config epoch %v", epoch)
	last, ok := value(fams, "ringmaster_crm_config_last_change")
	assert.True(t, ok && last > 0, "config_last_change %v", last)

	// The node running d1 counted its start, with a duration. n1 seeing
	// d1 active says nothing about when that node's own counters moved
	// (it hands the result on, then counts it): wait on that node.
	i := int(on[1] - '0')
	waitFor(t, on+" counted d1's start", func() error {
		fon, err := scrape(c.Node(i).Metrics)
		if err != nil {
			return err
		}
		if err := expect(fon, "ringmaster_crm_operations_total", 1, "operation", "start", "result", "ok"); err != nil {
			return err
		}
		if n, _ := value(fon, "ringmaster_crm_operation_duration_seconds", "operation", "start"); n != 1 {
			return fmt.Errorf("%v start durations observed, want 1", n)
		}
		return expect(fon, "ringmaster_crm_is_dc", 0.0+boolf(i == 1))
	})

	// The monitor finds d1 gone: a fail count of 1 on that node, seen by
	// every node (it is in the replicated CIB).
	require.NoError(t, os.Remove(filepath.Join(c.Node(i).Dir, "run", "dummy-d1.state")))
	waitFor(t, "fail count 1 for d1", func() error {
		fams, err := scrape(c.Node(1 + i%3).Metrics)
		if err != nil {
			return err
		}
		return expect(fams, "ringmaster_crm_fail_count", 1, "resource", "d1", "node", on)
	})
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
