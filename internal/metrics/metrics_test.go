package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/cpg"
	cpgwire "ringmaster/cpg/wire"
	"ringmaster/ipc"
	"ringmaster/totem"
	vqwire "ringmaster/votequorum/wire"
)

func gather(t *testing.T, cs ...prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(cs...)
	fams, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

func sample(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	f := fams[name]
	require.NotNil(t, f, name)
next:
	for _, m := range f.Metric {
		for _, l := range m.Label {
			if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
				continue next
			}
		}
		return m
	}
	t.Fatalf("%s%v: no sample", name, labels)
	return nil
}

func TestCollector(t *testing.T) {
	snap := Snapshot{
		Node: 1, Address: "10.0.0.1",
		Ring: totem.Status{Ring: totem.RingID{Rep: 1, Seq: 0x1c}, State: totem.StateOperational, Members: []totem.NodeID{1, 2, 3},
			Counters: totem.Counters{TokenRotation: 40, AuthFailures: 2, Replayed: 5, DatagramsIn: 100, BytesOut: 4096},
			Backlog:  totem.Backlog{Messages: 3, Bytes: 300, Frames: 2, Ring: 7}},
		MembershipChanges: 3,
		Quorum: &vqwire.Status{Quorate: true, ExpectedVotes: 3, TotalVotes: 3, Quorum: 2,
			Members: []vqwire.Member{{NodeID: 1, Votes: 1, Name: "n1"}, {NodeID: 2, Votes: 2, Name: "n2", NotCounted: true}}},
		CPG:       cpg.Stats{Mcasts: 7, TryAgain: 1},
		CPGGroups: []cpgwire.Group{{Name: "g", Members: []cpgwire.Address{{NodeID: 1, PID: 10}, {NodeID: 2, PID: 11}}}},
		IPC:       []IPCService{{Service: "cpg", Connections: 2, Requests: 9}},
	}
	fams := gather(t, NewCollector(func() Snapshot { return snap }))
	assert.Equal(t, 3.0, sample(t, fams, "ringmaster_ring_members", nil).Gauge.GetValue())
	assert.Equal(t, 28.0, sample(t, fams, "ringmaster_ring_id_seq", nil).Gauge.GetValue())
	assert.Equal(t, 1.0, sample(t, fams, "ringmaster_rings", map[string]string{"ring_id": "1.1c", "address": "10.0.0.1", "number": "0"}).Gauge.GetValue())
	assert.Equal(t, 40.0, sample(t, fams, "ringmaster_ring_token_rotations_total", nil).Counter.GetValue())
	assert.Equal(t, 100.0, sample(t, fams, "ringmaster_ring_datagrams_in_total", nil).Counter.GetValue())
	assert.Equal(t, 4096.0, sample(t, fams, "ringmaster_ring_bytes_out_total", nil).Counter.GetValue())
	assert.Equal(t, 3.0, sample(t, fams, "ringmaster_ring_send_queue_messages", nil).Gauge.GetValue())
	assert.Equal(t, 300.0, sample(t, fams, "ringmaster_ring_send_queue_bytes", nil).Gauge.GetValue())
	assert.Equal(t, 2.0, sample(t, fams, "ringmaster_ring_srp_queue_frames", nil).Gauge.GetValue())
	assert.Equal(t, 7.0, sample(t, fams, "ringmaster_ring_backlog", nil).Gauge.GetValue())
	assert.Equal(t, 2.0, sample(t, fams, "ringmaster_ring_datagrams_rejected_total", map[string]string{"reason": "auth"}).Counter.GetValue())
	assert.Equal(t, 5.0, sample(t, fams, "ringmaster_ring_datagrams_rejected_total", map[string]string{"reason": "replay"}).Counter.GetValue())
	assert.Nil(t, fams["ringmaster_ring_auth_failures_total"], "rejections only by reason")
	assert.Equal(t, 3.0, sample(t, fams, "ringmaster_ring_membership_changes_total", nil).Counter.GetValue())
	assert.Equal(t, 1.0, sample(t, fams, "ringmaster_quorum_quorate", nil).Gauge.GetValue())
	assert.Equal(t, 2.0, sample(t, fams, "ringmaster_quorum_votes", map[string]string{"type": "quorum"}).Gauge.GetValue())
	assert.Equal(t, 1.0, sample(t, fams, "ringmaster_quorum_member_votes", map[string]string{"node_id": "1", "local": "true", "node": "n1"}).Gauge.GetValue())
	assert.Equal(t, 0.0, sample(t, fams, "ringmaster_quorum_member_votes", map[string]string{"node_id": "2", "local": "false"}).Gauge.GetValue(), "not counted")
	assert.Equal(t, 1.0, sample(t, fams, "ringmaster_cpg_groups", nil).Gauge.GetValue())
	assert.Equal(t, 2.0, sample(t, fams, "ringmaster_cpg_group_members", map[string]string{"group": "g"}).Gauge.GetValue())
	assert.Equal(t, 7.0, sample(t, fams, "ringmaster_cpg_messages_total", nil).Counter.GetValue())
	assert.Equal(t, 1.0, sample(t, fams, "ringmaster_cpg_try_again_total", nil).Counter.GetValue())
	assert.Equal(t, 9.0, sample(t, fams, "ringmaster_ipc_requests_total", map[string]string{"service": "cpg"}).Counter.GetValue())

	// No quorum service: no quorum families.
	snap.Quorum = nil
	fams = gather(t, NewCollector(func() Snapshot { return snap }))
	assert.Nil(t, fams["ringmaster_quorum_quorate"])
}

// Counters of closed connections stay in the totals.
func TestIPCTotalsMonotonic(t *testing.T) {
	var tot IPCTotals
	names := func(id uint16) string { return map[uint16]string{1: "cpg"}[id] }
	live := []ipc.ConnStat{{ConnID: 1, Service: 1, Requests: 5}, {ConnID: 2, Service: 1, Requests: 2}, {ConnID: 2, Service: 9, Errors: 1}}
	got := tot.Sum(live, names)
	require.Len(t, got, 2)
	assert.Equal(t, IPCService{Service: "cpg", Connections: 2, Requests: 7}, got[0])
	assert.Equal(t, IPCService{Service: "9", Connections: 1, Errors: 1}, got[1])
	tot.Retire(live[:1])
	got = tot.Sum(live[1:2], names)
	assert.Equal(t, IPCService{Service: "cpg", Connections: 1, Requests: 7}, got[0])
}

// Own deliveries match own sends in order; sends beyond the window are
// counted, not timed, and never shift the matching.
func TestLatencyMatchesInOrder(t *testing.T) {
	l := NewLatency()
	now := time.Unix(0, 0)
	l.now = func() time.Time { return now }
	l.Sent() // t=0
	now = now.Add(time.Millisecond)
	l.Sent() // t=1ms
	now = now.Add(2 * time.Millisecond)
	l.Delivered() // first: 3 ms
	now = now.Add(time.Millisecond)
	l.Delivered() // second: 3 ms
	fams := gather(t, l.Histogram())
	h := sample(t, fams, "ringmaster_delivery_latency_seconds", nil).Histogram
	assert.Equal(t, uint64(2), h.GetSampleCount())
	assert.InDelta(t, 0.006, h.GetSampleSum(), 1e-9)

	l.pending = nil
	l.sent, l.delivered = 0, 0
	for range maxPending + 3 {
		l.Sent()
	}
	for range maxPending + 3 {
		l.Delivered()
	}
	assert.Empty(t, l.pending)
	h = sample(t, gather(t, l.Histogram()), "ringmaster_delivery_latency_seconds", nil).Histogram
	assert.Equal(t, uint64(2+maxPending), h.GetSampleCount(), "the untimed three are skipped")
}
