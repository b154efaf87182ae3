// Package votequorum is ringmaster's quorum service, corosync's votequorum
// in behaviour (see votequorum/calc for the rules and the quorum lineage).
// It has three layers:
//
//   - votequorum/calc, the pure calculator: options, membership changes,
//     the nodes' state messages, reconfigurations and the time (as a value)
//     in; quorum status, the node's own state message, the state to persist
//     and the last_man_standing deadline out. No clocks, goroutines or I/O.
//   - votequorum/wire, the messages: client requests and replies (shared
//     with clients/quorum) and the service's ring messages.
//   - Service (this package), the driver: an executive service that
//     multicasts the node's state in the sync step after each membership
//     change, feeds what the ring delivers to the calculator, persists its
//     state in state_dir and answers clients.
package votequorum

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"ringmaster/ipc"
	"ringmaster/totem"
	"ringmaster/totem/exec"
	"ringmaster/votequorum/calc"
	"ringmaster/votequorum/wire"
)

// Sentinel errors of the Service (errors.Is): the calculator's refusals of
// a runtime change, and the wire format's "not quorate".
var (
	ErrInvalid    = calc.ErrInvalid
	ErrNoSuchNode = calc.ErrNoSuchNode
	ErrNotQuorate = wire.ErrNotQuorate
)

// Config configures a Service.
type Config struct {
	Options calc.Options
	Local   totem.NodeID
	// Names maps node ids to names for the member list.
	Names map[totem.NodeID]string
	// StateDir holds StateFile ("": nothing is persisted).
	StateDir string
	// SyncWait bounds how long a status request asked during a sync waits
	// for the sync to finish before it is answered with the pre-sync
	// state (default 3 s): an operator asking right after a membership
	// change sees the new quorum, not the old one.
	SyncWait time.Duration
	// ApplyWait bounds how long a reconfiguration request waits for its
	// own message to come back from the ring (default 10 s).
	ApplyWait time.Duration
	// Now is the driver's clock (default time.Now); the calculator only
	// ever sees its values.
	Now func() time.Time
}

// Service is the votequorum executive service (exec.ServiceQuorum). Every
// method of the exec interfaces runs under the executive's lock; Quorate may
// be called from anywhere.
type Service struct {
	cfg     Config
	host    exec.Host
	log     *zap.Logger
	calc    *calc.Calc
	quorate atomic.Bool

	trackers map[exec.Client]bool
	waiters  []*waiter
	pending  map[uint64]*pendingReq
	nonce    uint64
	lastSent []byte
	hooks    []func(wire.Status)
	stats    map[exec.Client]*ClientStat

	lmsStop func()
	lmsAt   time.Time
	left    bool
}

type waiter struct {
	c    exec.Client
	h    ipc.Header
	stop func()
}

type pendingReq struct {
	c         exec.Client
	h         ipc.Header
	delivered bool
	stop      func()
}

// ClientStat counts one client's traffic with this service (published by
// confdb under stats.ipcs.*).
type ClientStat struct {
	ConnID    uint64
	PID       int32
	UID       uint32
	Requests  uint64
	Responses uint64
	Events    uint64
	Errors    uint64
}

// New builds the service. Configuration errors surface from Init, so the
// daemon fails to start with them, as corosync does.
func New(cfg Config) *Service {
	if cfg.SyncWait <= 0 {
		cfg.SyncWait = 3 * time.Second
	}
	if cfg.ApplyWait <= 0 {
		cfg.ApplyWait = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{
		cfg:      cfg,
		trackers: map[exec.Client]bool{},
		pending:  map[uint64]*pendingReq{},
		stats:    map[exec.Client]*ClientStat{},
	}
}

// The service answers local clients.
var _ exec.ClientHandler = (*Service)(nil)

// ID implements exec.Service.
func (s *Service) ID() exec.ServiceID { return exec.ServiceQuorum }

// Name implements exec.Service.
func (s *Service) Name() string { return "votequorum" }

// OnChange registers fn to be called with the status after every change
// (and once from Init). Register before the executive starts; fn runs under
// the executive's lock and must not block.
func (s *Service) OnChange(fn func(wire.Status)) { s.hooks = append(s.hooks, fn) }

// Init implements exec.Service: it loads expected-votes tracking and
// builds the calculator.
func (s *Service) Init(h exec.Host) error {
	s.host = h
	s.log = h.Log()
	var saved calc.Persisted
	if s.cfg.StateDir != "" {
		p, err := LoadState(s.cfg.StateDir)
		if err != nil {
			return err
		}
		saved = p
	}
	qc, err := calc.New(s.cfg.Options, s.cfg.Local, saved)
	if err != nil {
		return err
	}
	s.calc = qc
	for _, w := range qc.Warnings() {
		s.log.Warn(w)
	}
	s.changed(true)
	return nil
}

// Quorate reports whether this node's partition has quorum (the status
// service's Quorate interface). Safe from any goroutine.
func (s *Service) Quorate() bool { return s.quorate.Load() }

// Status is the current status with node names. Call it under the
// executive's lock (exec.Executive.Do) or from an OnChange hook.
func (s *Service) Status() wire.Status {
	st := s.calc.Status()
	for i := range st.Members {
		st.Members[i].Name = s.cfg.Names[totem.NodeID(st.Members[i].NodeID)]
	}
	return st
}

// ConfChange implements exec.Service; membership is handled in the sync
// step, which follows every regular configuration.
func (s *Service) ConfChange(totem.ConfChange) {}

// SyncStart implements exec.Syncer: multicast this node's state.
func (s *Service) SyncStart(c totem.ConfChange) {
	info := s.calc.SyncStart(c.Ring, c.Members)
	s.host.SendReliable(wire.RingNodeInfo, totem.Agreed, wire.EncodeNodeInfo(info))
}

// SyncDone implements exec.Syncer: every member's state is in; decide.
func (s *Service) SyncDone() {
	s.calc.SyncDone(s.cfg.Now())
	s.changed(true)
	for _, w := range s.waiters {
		w.stop()
		s.reply(w.c, w.h, wire.EncodePayload(s.Status()))
	}
	s.waiters = nil
	for nonce, p := range s.pending {
		if p.delivered {
			s.finish(nonce, nil)
		}
	}
}

// Deliver implements exec.Service.
func (s *Service) Deliver(m totem.Message) {
	switch m.ID {
	case wire.RingNodeInfo:
		in, err := wire.DecodeNodeInfo(m.Payload)
		if err != nil {
			s.log.Warn("dropping a malformed node info", zap.Uint32("from", uint32(m.Sender)), zap.Error(err))
			return
		}
		if s.calc.NodeInfo(m.Sender, in) {
			s.changed(false)
		}
	case wire.RingReconfigure:
		r, err := wire.DecodeReconfigure(m.Payload)
		if err != nil {
			s.log.Warn("dropping a malformed reconfiguration", zap.Uint32("from", uint32(m.Sender)), zap.Error(err))
			return
		}
		s.log.Info("reconfiguration", zap.Uint32("from", uint32(m.Sender)), zap.Uint8("param", uint8(r.Param)), zap.Uint32("target_node", uint32(r.Node)), zap.Uint32("value", r.Value))
		s.calc.Reconfigure(r)
		s.changed(false)
		if m.Sender == s.cfg.Local {
			if p := s.pending[r.Nonce]; p != nil {
				if s.calc.Syncing() {
					p.delivered = true // applied after the sync: answer then
				} else {
					s.finish(r.Nonce, nil)
				}
			}
		}
	case wire.RingLMSExpired:
		ring, err := wire.DecodeLMS(m.Payload)
		if err != nil {
			s.log.Warn("dropping a malformed last_man_standing expiry", zap.Uint32("from", uint32(m.Sender)), zap.Error(err))
			return
		}
		if s.calc.ApplyLMS(ring) {
			s.log.Info("last_man_standing: expected votes lowered", zap.Uint32("expected_votes", s.calc.Status().ExpectedVotes))
		}
		s.changed(false)
	default:
		s.log.Warn("dropping an unknown votequorum message", zap.Uint16("msg", m.ID))
	}
}

// changed publishes the status after anything that may have changed it:
// the quorate flag, trackers (only when the status differs from the last
// event, unless force), hooks, persistence and the last_man_standing timer.
func (s *Service) changed(force bool) {
	st := s.Status()
	was := s.quorate.Swap(st.Quorate)
	if was != st.Quorate && s.log != nil {
		s.log.Info("quorum changed", zap.Bool("quorate", st.Quorate), zap.Uint32("total_votes", st.TotalVotes), zap.Uint32("quorum", st.Quorum), zap.Uint32("expected_votes", st.ExpectedVotes))
	}
	p := wire.EncodePayload(st)
	if force || !bytes.Equal(p, s.lastSent) {
		s.lastSent = p
		for c := range s.trackers {
			if err := c.Event(uint16(exec.ServiceQuorum), wire.EventStatus, p); err != nil {
				delete(s.trackers, c)
				continue
			}
			s.stat(c).Events++
		}
		for _, fn := range s.hooks {
			fn(st)
		}
	}
	if p, dirty := s.calc.TakePersisted(); dirty && s.cfg.StateDir != "" {
		if err := SaveState(s.cfg.StateDir, p); err != nil {
			s.log.Error("cannot persist the quorum state", zap.Error(err))
		}
	}
	s.scheduleLMS()
}

// scheduleLMS keeps one timer on the calculator's last_man_standing
// deadline. When it fires the expiry goes through the ring, so every
// member lowers expected votes at the same point of the stream.
func (s *Service) scheduleLMS() {
	at, armed := s.calc.LMSDeadline()
	if !armed {
		if s.lmsStop != nil {
			s.lmsStop()
			s.lmsStop = nil
		}
		return
	}
	if s.lmsStop != nil && at.Equal(s.lmsAt) {
		return
	}
	if s.lmsStop != nil {
		s.lmsStop()
	}
	s.lmsAt = at
	s.lmsStop = s.host.AfterFunc(max(at.Sub(s.cfg.Now()), 0), func() {
		s.lmsStop = nil
		if s.calc.LMSDue(s.cfg.Now()) {
			s.host.SendReliable(wire.RingLMSExpired, totem.Agreed, wire.EncodeLMS(s.calc.Ring()))
			return
		}
		s.scheduleLMS()
	})
}

// Leave announces a clean shutdown (allow_downscale lowers expected votes
// on the other nodes at once). The daemon calls it, under the executive's
// lock, before it leaves the ring; without allow_downscale it does nothing.
func (s *Service) Leave() {
	if s.calc == nil || s.left || !s.calc.Options().AllowDownscale {
		return
	}
	s.left = true
	if err := s.host.Send(wire.RingNodeInfo, totem.Agreed, wire.EncodeNodeInfo(s.calc.Leave())); err != nil {
		s.log.Warn("cannot announce the clean leave", zap.Error(err))
	}
}

// SetExpected validates and multicasts an expected votes change without a
// client waiting for it (confdb's quorum.expected_votes). Call under the
// executive's lock.
func (s *Service) SetExpected(n uint32) error {
	if err := s.calc.CheckExpected(n); err != nil {
		return err
	}
	return s.host.Send(wire.RingReconfigure, totem.Agreed, wire.EncodeReconfigure(wire.Reconfigure{Param: wire.ParamExpected, Node: s.cfg.Local, Value: n}))
}

// SetVotes validates and multicasts a votes change (node 0: this node).
// Call under the executive's lock.
func (s *Service) SetVotes(node totem.NodeID, v uint32) error {
	if node == 0 {
		node = s.cfg.Local
	}
	if err := s.calc.CheckVotes(node, v); err != nil {
		return err
	}
	return s.host.Send(wire.RingReconfigure, totem.Agreed, wire.EncodeReconfigure(wire.Reconfigure{Param: wire.ParamVotes, Node: node, Value: v}))
}

// CancelWaitForAll multicasts the end of wait_for_all (confdb's
// quorum.cancel_wait_for_all). Call under the executive's lock.
func (s *Service) CancelWaitForAll() error {
	return s.host.Send(wire.RingReconfigure, totem.Agreed, wire.EncodeReconfigure(wire.Reconfigure{Param: wire.ParamCancelWFA, Node: s.cfg.Local}))
}

// Request implements exec.ClientHandler.
func (s *Service) Request(c exec.Client, h ipc.Header, p []byte) {
	s.stat(c).Requests++
	switch h.Msg {
	case wire.MsgStatus:
		if !s.calc.Syncing() {
			s.reply(c, h, wire.EncodePayload(s.Status()))
			return
		}
		w := &waiter{c: c, h: h}
		w.stop = s.host.AfterFunc(s.cfg.SyncWait, func() {
			if i := slices.Index(s.waiters, w); i >= 0 {
				s.waiters = slices.Delete(s.waiters, i, i+1)
				s.reply(c, h, wire.EncodePayload(s.Status()))
			}
		})
		s.waiters = append(s.waiters, w)
	case wire.MsgSetExpected:
		var req wire.SetExpectedRequest
		if err := wire.DecodePayload(p, &req); err != nil {
			s.replyErr(c, h, err)
			return
		}
		if err := s.calc.CheckExpected(req.ExpectedVotes); err != nil {
			s.replyErr(c, h, err)
			return
		}
		s.reconfigure(c, h, wire.Reconfigure{Param: wire.ParamExpected, Node: s.cfg.Local, Value: req.ExpectedVotes})
	case wire.MsgSetVotes:
		var req wire.SetVotesRequest
		if err := wire.DecodePayload(p, &req); err != nil {
			s.replyErr(c, h, err)
			return
		}
		node := totem.NodeID(req.NodeID)
		if node == 0 {
			node = s.cfg.Local
		}
		if err := s.calc.CheckVotes(node, req.Votes); err != nil {
			s.replyErr(c, h, err)
			return
		}
		s.reconfigure(c, h, wire.Reconfigure{Param: wire.ParamVotes, Node: node, Value: req.Votes})
	case wire.MsgCancelWaitForAll:
		s.reconfigure(c, h, wire.Reconfigure{Param: wire.ParamCancelWFA, Node: s.cfg.Local})
	case wire.MsgTrackStart:
		s.trackers[c] = true
		s.reply(c, h, wire.EncodePayload(s.Status()))
	case wire.MsgTrackStop:
		delete(s.trackers, c)
		s.reply(c, h, nil)
	default:
		s.replyErr(c, h, ipc.Errorf(ipc.CodeUnknownMessage, "votequorum message %d", h.Msg))
	}
}

// reconfigure multicasts r and answers the client once its own message is
// delivered (and applied), so a `ringctl quorum expected` that returns has
// taken effect on this node.
func (s *Service) reconfigure(c exec.Client, h ipc.Header, r wire.Reconfigure) {
	s.nonce++
	r.Nonce = s.nonce
	if err := s.host.Send(wire.RingReconfigure, totem.Agreed, wire.EncodeReconfigure(r)); err != nil {
		s.replyErr(c, h, err)
		return
	}
	nonce := r.Nonce
	p := &pendingReq{c: c, h: h}
	p.stop = s.host.AfterFunc(s.cfg.ApplyWait, func() {
		s.finish(nonce, fmt.Errorf("reconfiguration not delivered within %v (membership change?): %w", s.cfg.ApplyWait, ipc.ErrTryAgain))
	})
	s.pending[nonce] = p
}

func (s *Service) finish(nonce uint64, err error) {
	p := s.pending[nonce]
	if p == nil {
		return
	}
	delete(s.pending, nonce)
	p.stop()
	if err != nil {
		s.replyErr(p.c, p.h, err)
		return
	}
	s.reply(p.c, p.h, wire.EncodePayload(s.Status()))
}

func (s *Service) reply(c exec.Client, h ipc.Header, p []byte) {
	if c.Reply(h, p) == nil {
		s.stat(c).Responses++
	}
}

// replyErr maps the package's sentinels to IPC codes.
func (s *Service) replyErr(c exec.Client, h ipc.Header, err error) {
	var e *ipc.Error
	switch {
	case errors.As(err, &e):
	case errors.Is(err, ErrInvalid), errors.Is(err, wire.ErrMalformed):
		e = ipc.Errorf(ipc.CodeInvalid, "%v", err)
	case errors.Is(err, ErrNoSuchNode):
		e = ipc.Errorf(ipc.CodeNotFound, "%v", err)
	case errors.Is(err, ErrNotQuorate):
		e = ipc.Errorf(ipc.CodeNotQuorate, "%v", err)
	default:
		e = ipc.ToError(err)
	}
	if c.ReplyError(h, e) == nil {
		s.stat(c).Errors++
	}
}

// Disconnected implements exec.ClientHandler.
func (s *Service) Disconnected(c exec.Client) {
	delete(s.trackers, c)
	delete(s.stats, c)
	s.waiters = slices.DeleteFunc(s.waiters, func(w *waiter) bool {
		if w.c == c {
			w.stop()
			return true
		}
		return false
	})
	for nonce, p := range s.pending {
		if p.c == c {
			p.stop()
			delete(s.pending, nonce)
		}
	}
}

func (s *Service) stat(c exec.Client) *ClientStat {
	st := s.stats[c]
	if st == nil {
		st = &ClientStat{ConnID: c.ConnID(), PID: c.PeerCred().PID, UID: c.PeerCred().UID}
		s.stats[c] = st
	}
	return st
}

// ClientStats lists the counters of the clients that talked to this
// service, by connection id. Call under the executive's lock.
func (s *Service) ClientStats() []ClientStat {
	out := make([]ClientStat, 0, len(s.stats))
	for _, st := range s.stats {
		out = append(out, *st)
	}
	slices.SortFunc(out, func(a, b ClientStat) int { return cmp.Compare(a.ConnID, b.ConnID) })
	return out
}
