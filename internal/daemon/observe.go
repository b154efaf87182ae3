package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"ringmaster/clients"
	"ringmaster/cpg"
	"ringmaster/crm/pengine"
	"ringmaster/internal/events"
	"ringmaster/internal/metrics"
	"ringmaster/internal/web"
	"ringmaster/ipc"
	"ringmaster/totem"
	"ringmaster/totem/exec"
	"ringmaster/totem/ring"
	"ringmaster/votequorum"
	vqwire "ringmaster/votequorum/wire"
)

// observer is what operators see of a node besides `ringctl status`: the
// event log (ringctl events), the metrics and the status page on the
// [metrics] listener. It reads the node; it changes nothing.
type observer struct {
	d        *Daemon
	events   *events.Log
	latency  *metrics.Latency
	activity *metrics.Activity
	ipc      metrics.IPCTotals

	// Set at registration, read at scrape time under the executive's
	// lock (exec.Do).
	cpg *cpg.Service
	vq  *votequorum.Service

	// Under the executive's lock (ConfChange, quorum hooks, scrapes).
	prevMembers []totem.NodeID
	lastQuorum  *vqwire.Status
	// The configuration version (admin_epoch, epoch) a scrape last saw
	// and when it first saw it (crm_config_last_change).
	configVer  [2]int64
	configSeen time.Time

	memberships atomic.Uint64
}

func newObserver(d *Daemon) *observer {
	o := &observer{d: d, events: events.New(events.DefaultCapacity, d.log.Named("events")), latency: metrics.NewLatency(),
		activity: metrics.NewActivity()}
	o.events.OnRecord(o.activity.Observe)
	return o
}

// Events is the node's event log.
func (d *Daemon) Events() *events.Log { return d.obs.events }

// --- delivery latency: wrappers around the ring and its events ---

// latencyRing times the messages the executive sends.
type latencyRing struct {
	exec.Ring
	lat *metrics.Latency
}

func (r latencyRing) Send(service, id uint16, g totem.Guarantee, p []byte) error {
	err := r.Ring.Send(service, id, g, p)
	if err == nil {
		r.lat.Sent()
	}
	return err
}

// SendBatched and Flush pass the executive's batched sends through
// (exec.BatchRing); a ring without them gets plain sends.
func (r latencyRing) SendBatched(service, id uint16, g totem.Guarantee, p []byte) error {
	br, ok := r.Ring.(exec.BatchRing)
	if !ok {
		return r.Send(service, id, g, p)
	}
	err := br.SendBatched(service, id, g, p)
	if err == nil {
		r.lat.Sent()
	}
	return err
}

func (r latencyRing) Flush(beforeSend func()) {
	if br, ok := r.Ring.(exec.BatchRing); ok {
		br.Flush(beforeSend)
	} else if beforeSend != nil {
		beforeSend()
	}
}

// latencyEvents sees the ring's deliveries before the executive does.
type latencyEvents struct {
	totem.Events
	local totem.NodeID
	lat   *metrics.Latency
}

func (e latencyEvents) Deliver(m totem.Message) {
	if m.Sender == e.local {
		e.lat.Delivered()
	}
	e.Events.Deliver(m)
}

// --- IPC: counters of closed connections ---

// ipcHandler keeps the final counters of every closing connection so the
// IPC metrics stay monotonic.
type ipcHandler struct {
	ipc.Handler
	o *observer
}

func (h ipcHandler) Closed(c *ipc.Conn) {
	h.o.ipc.Retire(c.Stats())
	h.Handler.Closed(c)
}

// --- events recorded by the daemon itself ---

// confChange records a new ring with who joined and who left (under the
// executive's lock).
func (o *observer) confChange(c totem.ConfChange) {
	if c.Kind != totem.Regular {
		return
	}
	o.memberships.Add(1)
	joined := ids(slices.DeleteFunc(slices.Clone(c.Members), func(n totem.NodeID) bool { return slices.Contains(o.prevMembers, n) }))
	left := ids(slices.DeleteFunc(slices.Clone(o.prevMembers), func(n totem.NodeID) bool { return slices.Contains(c.Members, n) }))
	o.prevMembers = slices.Clone(c.Members)
	o.events.Record(events.Membership, "membership changed", events.Fields{
		"ring":    ringString(c.Ring),
		"members": ids(c.Members),
		"joined":  joined,
		"left":    left,
	})
}

func ids(ns []totem.NodeID) []uint32 {
	out := make([]uint32, 0, len(ns))
	for _, n := range ns {
		out = append(out, uint32(n))
	}
	slices.Sort(out)
	return out
}

// linkChange records a redundant link that went up or down (from the
// ring's heartbeat goroutine or a reader; the event log locks itself).
func (o *observer) linkChange(c ring.LinkChange) {
	msg := "link down"
	if c.Up {
		msg = "link up"
	}
	o.events.Record(events.Link, msg, events.Fields{
		"peer": uint32(c.Peer), "link": int(c.Link), "local": c.Local.String(), "remote": c.Remote.String(),
	})
}

// ringString writes a ring id as corosync does: representative.seq(hex).
func ringString(r totem.RingID) string { return fmt.Sprintf("%d.%x", r.Rep, r.Seq) }

// quorumChanged records the first status and every change of the quorate
// flag or the vote counts (a votequorum OnChange hook).
func (o *observer) quorumChanged(st vqwire.Status) {
	p := o.lastQuorum
	if p != nil && p.Quorate == st.Quorate && p.ExpectedVotes == st.ExpectedVotes && p.TotalVotes == st.TotalVotes && p.Quorum == st.Quorum {
		return
	}
	o.lastQuorum = &st
	msg := "quorum changed"
	switch {
	case p == nil:
		msg = "quorum state at start"
	case p.Quorate && !st.Quorate:
		msg = "quorum lost"
	case !p.Quorate && st.Quorate:
		msg = "quorum gained"
	}
	var members []uint32
	for _, m := range st.Members {
		members = append(members, m.NodeID)
	}
	o.events.Record(events.Quorum, msg, events.Fields{
		"quorate": st.Quorate, "expected_votes": st.ExpectedVotes, "total_votes": st.TotalVotes,
		"quorum": st.Quorum, "members": members,
	})
}

// eventsRequest answers clients.MsgEvents: the events now, or (long poll,
// for --follow) as soon as there are some. The wait runs on its own
// goroutine, outside the executive's lock.
func (o *observer) eventsRequest(c exec.Client, h ipc.Header, p []byte) {
	var q events.Query
	if len(p) > 0 {
		if err := json.Unmarshal(p, &q); err != nil {
			_ = c.ReplyError(h, ipc.Errorf(ipc.CodeInvalid, "events query: %v", err))
			return
		}
	}
	if evs, last := o.events.After(q.After, q.Since); len(evs) > 0 || q.WaitMS <= 0 {
		_ = c.Reply(h, events.Reply{Events: evs, Last: last}.Marshal())
		return
	}
	go func() { _ = c.Reply(h, o.events.Answer(context.Background(), q).Marshal()) }()
}

// --- metrics and the status page ---

// snapshot is what one scrape reads.
func (o *observer) snapshot() metrics.Snapshot {
	d := o.d
	s := metrics.Snapshot{Node: d.node, Ring: d.ring.Status(), MembershipChanges: o.memberships.Load()}
	cfg := d.Config()
	if n := cfg.NodeByID(int(d.node)); n != nil {
		if ap, err := cfg.NodeAddr(n); err == nil {
			s.Address = ap.Addr().String()
		}
	}
	d.exec.Do(func() {
		if o.cpg != nil {
			s.CPG = o.cpg.Stats()
			s.CPGGroups = o.cpg.Groups()
		}
		if o.vq != nil {
			st := o.vq.Status()
			s.Quorum = &st
		}
		if d.crm != nil {
			s.CRM = d.crm.metricsSnapshot(time.Now())
			if s.CRM != nil {
				v := s.CRM.Status.Version
				if ver := [2]int64{v.AdminEpoch, v.Epoch}; o.configSeen.IsZero() || ver != o.configVer {
					o.configVer, o.configSeen = ver, s.CRM.Now
				}
				s.CRM.ConfigSeen = o.configSeen
			}
		}
	})
	var live []ipc.ConnStat
	if srv := d.ipcServer(); srv != nil {
		live = srv.Stats()
	}
	s.IPC = o.ipc.Sum(live, func(id uint16) string {
		if id == 0 {
			return "exec"
		}
		if svc := d.exec.Service(exec.ServiceID(id)); svc != nil {
			return svc.Name()
		}
		return ""
	})
	return s
}

// webState is what the status page shows (events are added by web).
func (o *observer) webState() web.State {
	var st web.State
	var snap *metrics.CRM
	ss, _ := o.d.exec.Service(exec.ServiceStatus).(*statusService) // takes the executive's lock: not inside Do
	o.d.exec.Do(func() {
		if ss != nil {
			st.Status = ss.snapshot()
		}
		if o.vq != nil {
			q := o.vq.Status()
			st.Quorum = &q
		}
		if o.d.crm != nil {
			snap = o.d.crm.metricsSnapshot(time.Now())
		}
	})
	if st.Status == nil {
		st.Status = &clients.Status{Members: []clients.Member{}}
	}
	st.CRM = webCRM(snap) // outside the lock: the scheduler's unpacking
	return st
}

// webCRM flattens what pengine makes of the CIB into the page's resource
// list (outside the executive's lock: the CIB is an immutable snapshot).
func webCRM(snap *metrics.CRM) *web.CRM {
	if snap == nil || snap.CIB == nil {
		return nil
	}
	out := &web.CRM{DC: snap.DC, Version: snap.Status.Version.String(), Resources: []web.Resource{}}
	cs, err := pengine.Status(snap.CIB, snap.Now, pengine.StatusOptions{ShowPending: true})
	if err != nil {
		return out
	}
	for _, p := range cs.Primitives() {
		group := p.Group
		if group == "" {
			group = p.Clone
		}
		out.Resources = append(out.Resources, web.Resource{ID: p.ID, Agent: p.Agent, State: p.Summary(),
			Node: strings.Join(p.Nodes, " "), Group: group})
	}
	return out
}

// handler serves /metrics (OpenMetrics or Prometheus text, as the scraper
// asks) and the status page.
func (o *observer) handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		metrics.NewCollector(o.snapshot),
		o.latency.Histogram(),
		o.activity,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	mux.Handle("/", web.Handler(web.Source{State: o.webState, Events: o.events}))
	return mux
}

// serveHTTP starts the [metrics] listener; "" turns it off. A listener
// that cannot bind is logged and recorded, and the node runs on without
// it: metrics are not worth a node. The returned function stops it.
func (o *observer) serveHTTP(addr string) (stop func()) {
	if addr == "" {
		return func() {}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		o.d.log.Error("metrics and status page disabled: cannot listen", zap.String("listen", addr), zap.Error(err))
		o.events.Record(events.Daemon, "metrics listener failed", events.Fields{"listen": addr, "error": err.Error()})
		return func() {}
	}
	srv := &http.Server{Handler: o.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.d.log.Error("metrics listener stopped", zap.Error(err))
		}
	}()
	o.d.log.Info("metrics and status page", zap.String("url", "http://"+ln.Addr().String()+"/"))
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		// Streams of the status page never end by themselves.
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
	}
}

// quorumWatch attaches the event hook to the quorum service.
func (o *observer) quorumWatch(q *votequorum.Service) {
	o.vq = q
	q.OnChange(o.quorumChanged)
}

// newCPG builds the cpg service, kept for the metrics.
func (o *observer) newCPG() *cpg.Service {
	o.cpg = cpg.New()
	return o.cpg
}
