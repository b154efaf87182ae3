package daemon

import (
	"encoding/json"
	"time"

	"ringmaster/clients"
	"ringmaster/ipc"
	"ringmaster/totem"
	"ringmaster/totem/exec"
)

// Quorate is implemented by the quorum service; status shows its answer.
type Quorate interface {
	Quorate() bool
}

// statusService answers `ringctl status`. It holds no state of its own:
// every answer is read from the ring, the configuration and the quorum
// service at the time of the request.
type statusService struct {
	d     *Daemon
	host  exec.Host
	start time.Time
}

var _ exec.ClientHandler = (*statusService)(nil)

func (s *statusService) ID() exec.ServiceID            { return exec.ServiceStatus }
func (s *statusService) Name() string                  { return "status" }
func (s *statusService) Init(h exec.Host) error        { s.host = h; return nil }
func (s *statusService) Deliver(totem.Message)         {}
func (s *statusService) ConfChange(c totem.ConfChange) { s.d.obs.confChange(c) }
func (s *statusService) Disconnected(exec.Client)      {}
func (s *statusService) Request(c exec.Client, h ipc.Header, p []byte) {
	switch h.Msg {
	case clients.MsgStatus:
		b, _ := json.Marshal(s.snapshot())
		_ = c.Reply(h, b)
	case clients.MsgEvents:
		s.d.obs.eventsRequest(c, h, p)
	default:
		_ = c.ReplyError(h, ipc.Errorf(ipc.CodeUnknownMessage, "status message %d", h.Msg))
	}
}

// snapshot is called under the executive's lock.
func (s *statusService) snapshot() *clients.Status {
	d := s.d
	cfg := d.Config()
	rs := d.ring.Status()
	eff := cfg.Effective()
	st := &clients.Status{
		NodeID:      uint32(d.node),
		ClusterName: cfg.Totem.ClusterName,
		Version:     d.opt.Version,
		Transport:   cfg.Totem.Transport,
		RingID:      clients.RingID{Rep: uint32(rs.Ring.Rep), Seq: rs.Ring.Seq},
		State:       string(rs.State),
		Members:     []clients.Member{},
		Synced:      s.host.Synced(),
		TokenMS:     eff.Token.Milliseconds(),
		ConsensusMS: eff.Consensus.Milliseconds(),
		Effective:   map[string]int64{},
		Counters:    counterMap(rs.Counters),
		UptimeS:     time.Since(s.start).Seconds(),
	}
	st.PendingRestart = d.PendingRestart()
	if n := cfg.NodeByID(int(d.node)); n != nil {
		st.Name = n.Name
	}
	for _, f := range eff.Fields() {
		st.Effective[f.Name] = f.Value
	}
	for _, id := range rs.Members {
		m := clients.Member{NodeID: uint32(id)}
		if n := cfg.NodeByID(int(id)); n != nil {
			m.Name = n.Name
			if ap, err := cfg.NodeAddr(n); err == nil {
				m.Addr = ap.String()
			}
		}
		st.Members = append(st.Members, m)
	}
	if len(rs.Links) > 0 {
		st.LinkMode = cfg.Totem.LinkMode
	}
	for _, l := range rs.Links {
		pl := clients.PeerLink{NodeID: uint32(l.Peer), Link: int(l.Link), State: "down", Local: l.Local.String(), Remote: l.Remote.String(),
			RTTMS: float64(l.RTT.Microseconds()) / 1000, Ups: l.Ups, Downs: l.Downs}
		if l.Up {
			pl.State = "up"
		}
		if n := cfg.NodeByID(int(l.Peer)); n != nil {
			pl.Name = n.Name
		}
		st.Links = append(st.Links, pl)
	}
	if d.quorum != nil {
		v := d.quorum.Quorate()
		st.Quorate = &v
	}
	return st
}

func counterMap(c totem.Counters) map[string]uint64 {
	b, _ := json.Marshal(c)
	m := map[string]uint64{}
	_ = json.Unmarshal(b, &m)
	return m
}
