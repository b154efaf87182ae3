// Package metrics exports ringd's state as Prometheus/OpenMetrics families.
//
// Nothing is counted here on the hot path: the Collector reads the
// counters the ring, the services and the IPC server already keep, once
// per scrape, from a Snapshot the daemon takes under the executive's lock
// (so the families of one scrape agree with each other). The one
// exception is the delivery latency histogram (Latency), which must see
// every message it measures.
//
// Families (prefix ringmaster_):
//
//	ring_*      members, ring id, state, membership changes, and every
//	            counter of totem.Counters (read by their JSON names, so a
//	            counter added there appears here without a change):
//	            rejected_* and the authentication/malformed counts become
//	            ring_datagrams_rejected_total{reason}; the flow-control
//	            levels of totem.Backlog (send queue, srp queue, ring
//	            backlog) are gauges
//	link_*      redundant links (ring1_addr …): up, up/down events and
//	            heartbeat round trip per peer and link; the totals are
//	            ring_link_up_events_total and ring_link_down_events_total
//	delivery_latency_seconds   histogram, this node's own messages
//	cpg_*       groups, members per group, messages, TRY_AGAIN answers
//	quorum_*    quorate, votes by type, per-member votes
//	ipc_*       connections and requests per service
//	crm_*       the resource manager (crm.go): controller, configuration
//	            version, nodes and resources by state, fail counts,
//	            migration thresholds, location constraints, node
//	            attributes; with Activity, transitions, operations and
//	            fencing counted from the event log
//
// The names next to ha_cluster_exporter's are in the README ("Metrics").
package metrics

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"ringmaster/cpg"
	cpgwire "ringmaster/cpg/wire"
	"ringmaster/ipc"
	"ringmaster/totem"
	vqwire "ringmaster/votequorum/wire"
)

// Namespace prefixes every family.
const Namespace = "ringmaster"

// Snapshot is the node's state as one scrape sees it.
type Snapshot struct {
	Node    totem.NodeID
	Address string // the local ring address (ring0_addr)
	Ring    totem.Status
	// MembershipChanges counts the regular configurations delivered
	// since ringd started.
	MembershipChanges uint64
	// Quorum is nil when the node runs no quorum service.
	Quorum    *vqwire.Status
	CPG       cpg.Stats
	CPGGroups []cpgwire.Group
	IPC       []IPCService
	// CRM is nil when the node runs no resource manager.
	CRM *CRM
}

// IPCService is one IPC service's clients, summed over connections.
type IPCService struct {
	Service     string
	Connections int
	Requests    uint64
	Replies     uint64
	Events      uint64
	Errors      uint64
}

// Collector is a prometheus.Collector over Snapshots. It is "unchecked"
// (Describe sends nothing) because the ring counter families follow
// whatever totem.Counters holds.
type Collector struct {
	snap func() Snapshot
}

// NewCollector returns a collector calling snap at every scrape (from the
// HTTP server's goroutines, possibly concurrently).
func NewCollector(snap func() Snapshot) *Collector { return &Collector{snap: snap} }

// Describe implements prometheus.Collector (unchecked).
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

func name(sub, n string) string { return prometheus.BuildFQName(Namespace, sub, n) }

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snap()
	gauge := func(fq, help string, v float64, labels ...string) {
		var keys, vals []string
		for i := 0; i+1 < len(labels); i += 2 {
			keys, vals = append(keys, labels[i]), append(vals, labels[i+1])
		}
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(fq, help, keys, nil), prometheus.GaugeValue, v, vals...)
	}
	counter := func(fq, help string, v uint64, labels ...string) {
		var keys, vals []string
		for i := 0; i+1 < len(labels); i += 2 {
			keys, vals = append(keys, labels[i]), append(vals, labels[i+1])
		}
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(fq, help, keys, nil), prometheus.CounterValue, float64(v), vals...)
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	node := strconv.FormatUint(uint64(s.Node), 10)

	// --- ring ---
	r := s.Ring
	operational := r.State == totem.StateOperational
	gauge(name("ring", "members"), "Members of the current ring.", float64(len(r.Members)))
	gauge(name("ring", "id_seq"), "Sequence number of the current ring id.", float64(r.Ring.Seq))
	gauge(name("ring", "id_representative"), "Node id of the current ring's representative.", float64(r.Ring.Rep))
	gauge(name("ring", "operational"), "1 when the ring is operational (ha_cluster_corosync_ring_errors is 1 minus this).", b2f(operational))
	gauge(name("", "rings"), "The ring as ha_cluster_corosync_rings shows it: 1 healthy, 0 faulty.", b2f(operational),
		"ring_id", fmt.Sprintf("%d.%x", r.Ring.Rep, r.Ring.Seq), "node_id", node, "number", "0", "address", s.Address)
	gauge(name("ring", "state"), "Protocol state of the local processor (1 for the current state).", 1, "state", string(r.State))
	counter(name("ring", "membership_changes_total"), "Regular configurations (new rings) delivered since ringd started.", s.MembershipChanges)
	ringCounters(r.Counters, counter, gauge)
	gauge(name("ring", "send_queue_messages"), "Messages queued by this node that the protocol has not taken yet (Send answers TRY_AGAIN at 8192).", float64(r.Backlog.Messages))
	gauge(name("ring", "send_queue_bytes"), "Bytes of those messages (TRY_AGAIN at 8 MiB).", float64(r.Backlog.Bytes))
	gauge(name("ring", "srp_queue_frames"), "Frames the protocol took from this node that wait for the token.", float64(r.Backlog.Frames))
	gauge(name("ring", "backlog"), "Flow-control backlog of the whole ring: every member's queued frames, as the token carried them when this node last forwarded it.", float64(r.Backlog.Ring))
	for _, l := range r.Links {
		peer, num := strconv.FormatUint(uint64(l.Peer), 10), strconv.Itoa(int(l.Link))
		gauge(name("link", "up"), "1 while this redundant link to the peer answers heartbeats (ring1_addr …; absent with one link).", b2f(l.Up), "peer", peer, "link", num)
		counter(name("link", "up_events_total"), "Times the link to the peer came up.", l.Ups, "peer", peer, "link", num)
		counter(name("link", "down_events_total"), "Times the link to the peer went down (no heartbeat answered for knet_ping_timeout).", l.Downs, "peer", peer, "link", num)
		gauge(name("link", "rtt_seconds"), "Round trip of the link's last answered heartbeat.", l.RTT.Seconds(), "peer", peer, "link", num)
	}

	// --- cpg ---
	gauge(name("cpg", "groups"), "CPG groups with at least one member.", float64(len(s.CPGGroups)))
	for _, g := range s.CPGGroups {
		gauge(name("cpg", "group_members"), "Members (processes) of a CPG group, cluster-wide.", float64(len(g.Members)), "group", g.Name)
	}
	counter(name("cpg", "messages_total"), "Group messages delivered by the ring.", s.CPG.Mcasts)
	counter(name("cpg", "deliveries_total"), "Group messages handed to local members (one per member).", s.CPG.Delivered)
	counter(name("cpg", "try_again_total"), "Client requests answered TRY_AGAIN.", s.CPG.TryAgain)
	counter(name("cpg", "held_total"), "Messages held back during a membership sync.", s.CPG.Held)
	counter(name("cpg", "malformed_total"), "Ring messages of the CPG service that did not decode.", s.CPG.Malformed)
	counter(name("cpg", "slow_clients_total"), "Clients cut off because they did not read their events.", s.CPG.SlowClient)

	// --- quorum ---
	if q := s.Quorum; q != nil {
		gauge(name("quorum", "quorate"), "1 when this node's partition is quorate.", b2f(q.Quorate))
		for _, t := range []struct {
			typ string
			v   uint32
		}{{"expected_votes", q.ExpectedVotes}, {"total_votes", q.TotalVotes}, {"quorum", q.Quorum}} {
			gauge(name("quorum", "votes"), "Quorum votes by type (as ha_cluster_corosync_quorum_votes).", float64(t.v), "type", t.typ)
		}
		gauge(name("quorum", "expected_votes"), "Expected votes.", float64(q.ExpectedVotes))
		gauge(name("quorum", "total_votes"), "Votes of the partition's members.", float64(q.TotalVotes))
		gauge(name("quorum", "wait_for_all_status"), "1 while wait_for_all still waits for every node.", b2f(q.WaitForAllStatus))
		for _, m := range q.Members {
			v := float64(m.Votes)
			if m.NotCounted {
				v = 0
			}
			gauge(name("quorum", "member_votes"), "Votes each member contributes to the current quorum (as ha_cluster_corosync_member_votes).", v,
				"node_id", strconv.FormatUint(uint64(m.NodeID), 10), "node", m.Name, "local", strconv.FormatBool(m.NodeID == uint32(s.Node)))
		}
	}

	// --- crm ---
	if s.CRM != nil {
		crmFamilies(s.CRM, counter, gauge)
	}

	// --- ipc ---
	for _, st := range s.IPC {
		gauge(name("ipc", "connections"), "Connected clients that used the service.", float64(st.Connections), "service", st.Service)
		counter(name("ipc", "requests_total"), "Client requests per service.", st.Requests, "service", st.Service)
		counter(name("ipc", "replies_total"), "Replies per service.", st.Replies, "service", st.Service)
		counter(name("ipc", "events_total"), "Events sent to clients per service.", st.Events, "service", st.Service)
		counter(name("ipc", "errors_total"), "Error replies per service.", st.Errors, "service", st.Service)
	}
}

// rejectReasons maps totem.Counters' JSON names of datagrams dropped
// before the protocol acted on them to the reason label.
var rejectReasons = map[string]string{
	"auth_failures": "auth",
	"malformed":     "malformed",
}

// isLevel tells the totem.Counters fields that are levels, not counts
// (a backlog, a queue length): exported as gauges.
func isLevel(k string) bool {
	return strings.Contains(k, "backlog") || strings.HasSuffix(k, "_queued") || strings.HasSuffix(k, "_pending")
}

// ringCounters exports every totem.Counters field by its JSON name:
// "rejected_X" and the names in rejectReasons become
// ring_datagrams_rejected_total{reason}, levels (isLevel) ring_<name>,
// everything else ring_<name>_total.
func ringCounters(c totem.Counters, counter func(fq, help string, v uint64, labels ...string), gauge func(fq, help string, v float64, labels ...string)) {
	b, _ := json.Marshal(c)
	m := map[string]uint64{}
	_ = json.Unmarshal(b, &m)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}) {
		v := m[k]
		if reason, ok := rejectReasons[k]; ok {
			counter(name("ring", "datagrams_rejected_total"), "Datagrams dropped before the protocol acted on them, by reason.", v, "reason", reason)
			continue
		}
		if reason, ok := strings.CutPrefix(k, "rejected_"); ok {
			counter(name("ring", "datagrams_rejected_total"), "Datagrams dropped before the protocol acted on them, by reason.", v, "reason", reason)
			continue
		}
		if isLevel(k) {
			gauge(name("ring", k), "Totem level "+k+" (totem.Counters).", float64(v))
			continue
		}
		counter(name("ring", strings.TrimSuffix(k, "_total")+"_total"), "Totem counter "+k+" (totem.Counters).", v)
	}
}

// IPCTotals keeps IPC counters per service across connections: the IPC
// server counts per live connection, so the counts of a closed connection
// are added here when it closes (Retire), keeping the exported counters
// monotonic. Safe from any goroutine.
type IPCTotals struct {
	mu      sync.Mutex
	retired map[uint16]IPCService
}

// Retire adds a closing connection's final counters.
func (t *IPCTotals) Retire(stats []ipc.ConnStat) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.retired == nil {
		t.retired = map[uint16]IPCService{}
	}
	for _, st := range stats {
		r := t.retired[st.Service]
		r.Requests += st.Requests
		r.Replies += st.Replies
		r.Events += st.Events
		r.Errors += st.Errors
		t.retired[st.Service] = r
	}
}

// Sum combines the retired counters with the live connections' ones, one
// entry per service (named by names; the number when it has no name), in
// service order.
func (t *IPCTotals) Sum(live []ipc.ConnStat, names func(uint16) string) []IPCService {
	t.mu.Lock()
	by := map[uint16]IPCService{}
	for id, r := range t.retired {
		by[id] = r
	}
	t.mu.Unlock()
	for _, st := range live {
		r := by[st.Service]
		r.Connections++
		r.Requests += st.Requests
		r.Replies += st.Replies
		r.Events += st.Events
		r.Errors += st.Errors
		by[st.Service] = r
	}
	ids := make([]uint16, 0, len(by))
	for id := range by {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]IPCService, 0, len(ids))
	for _, id := range ids {
		r := by[id]
		r.Service = names(id)
		if r.Service == "" {
			r.Service = strconv.Itoa(int(id))
		}
		out = append(out, r)
	}
	return out
}

// Latency measures the delivery latency of this node's own messages: from
// the ring accepting a message (Sent) to its delivery in the total order
// (Delivered). The ring delivers each sender's messages in the order they
// were sent, so the n-th own delivery matches the n-th accepted send; at
// most maxPending send times are kept (beyond that, messages are counted
// but not timed). Safe from any goroutine.
type Latency struct {
	mu        sync.Mutex
	sent      uint64 // messages accepted by the ring
	delivered uint64 // own messages delivered
	pending   []stamp
	hist      prometheus.Histogram
	now       func() time.Time
}

type stamp struct {
	seq uint64
	at  time.Time
}

const maxPending = 1 << 16

// NewLatency returns a latency meter with its histogram
// (ringmaster_delivery_latency_seconds, 50 µs to about 6.5 s).
func NewLatency() *Latency {
	return &Latency{
		hist: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "delivery_latency_seconds",
			Help:    "Time from the ring accepting a message of this node to its delivery in total order (what pload measures, from inside ringd).",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 18),
		}),
		now: time.Now,
	}
}

// Histogram is the collector to register.
func (l *Latency) Histogram() prometheus.Histogram { return l.hist }

// Sent records that the ring accepted one message of this node.
func (l *Latency) Sent() {
	t := l.now()
	l.mu.Lock()
	l.sent++
	if len(l.pending) < maxPending {
		l.pending = append(l.pending, stamp{l.sent, t})
	}
	l.mu.Unlock()
}

// Delivered records the delivery of one message of this node.
func (l *Latency) Delivered() {
	t := l.now()
	l.mu.Lock()
	l.delivered++
	var d time.Duration
	timed := false
	for len(l.pending) > 0 && l.pending[0].seq <= l.delivered {
		if l.pending[0].seq == l.delivered {
			d, timed = t.Sub(l.pending[0].at), true
		}
		l.pending = l.pending[1:]
	}
	if len(l.pending) == 0 {
		l.pending = nil // let the backing array go
	}
	l.mu.Unlock()
	if timed {
		l.hist.Observe(d.Seconds())
	}
}
