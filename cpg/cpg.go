// Package cpg is the closed process group service (corosync's CPG) on the
// executive: local processes join named groups, multicast to them in total
// order, and learn of every membership change of their groups in the same
// order, relative to the messages, on every node.
//
// The state machine (the replicated member lists, each local connection's
// state, the sync after a membership change, with corosync's state×event
// tables) is cpg/groups, which is pure; this package answers the IPC
// requests, pushes the events to the connections and logs, as totem/ring
// drives totem/srp.
//
// # Memory
//
// Deliveries go to clients through exec.Client.Event, which never blocks: a
// client that stops reading is cut off by ipc once its output budget is
// spent (ipc.ErrSlowClient) and then leaves its group with PROCDOWN, so a
// reader that falls behind never grows ringd without bound.
package cpg

import (
	"errors"

	"go.uber.org/zap"

	"ringmaster/cpg/groups"
	"ringmaster/cpg/wire"
	"ringmaster/internal/events"
	"ringmaster/ipc"
	"ringmaster/totem"
	"ringmaster/totem/exec"
)

// ErrBusy is answered (as try-again) while a join or leave of the same
// connection is still in flight.
var ErrBusy = groups.ErrBusy

// Stats are the service's counters.
type Stats struct {
	Delivered  uint64 // mcasts handed to local clients (per client)
	Held       uint64 // messages held during sync
	Malformed  uint64 // ring messages that did not decode
	SlowClient uint64 // clients cut off because they did not read
	Mcasts     uint64 // group messages delivered by the ring (local members or not)
	TryAgain   uint64 // client requests answered TRY_AGAIN (ring busy, sync in progress)
}

// Service is the cpg service. Create it with New and register it with the
// executive; every method is called under the executive's lock.
type Service struct {
	host exec.Host
	log  *zap.Logger
	core *groups.Core

	clients map[exec.Client]*groups.Conn
	conns   map[*groups.Conn]exec.Client

	stats Stats // Malformed, SlowClient and TryAgain; the rest is the core's
}

// New returns a cpg service.
func New() *Service {
	return &Service{clients: map[exec.Client]*groups.Conn{}, conns: map[*groups.Conn]exec.Client{}}
}

// The service answers local clients.
var _ exec.ClientHandler = (*Service)(nil)

// ID implements exec.Service.
func (s *Service) ID() exec.ServiceID { return exec.ServiceCPG }

// Name implements exec.Service.
func (s *Service) Name() string { return "cpg" }

// Init implements exec.Service.
func (s *Service) Init(h exec.Host) error {
	s.host = h
	s.log = h.Log()
	s.core = groups.New(env{s})
	return nil
}

// Stats returns the counters (under the executive's lock, e.g. exec.Do).
func (s *Service) Stats() Stats {
	st := s.stats
	if s.core != nil { // nil before Init
		k := s.core.Counters()
		st.Delivered, st.Held, st.Mcasts = k.Delivered, k.Held, k.Mcasts
	}
	return st
}

// Groups returns every group with its members, sorted by name (under the
// executive's lock).
func (s *Service) Groups() []wire.Group {
	if s.core == nil { // before Init
		return []wire.Group{}
	}
	return s.core.Groups()
}

// env is the core's Env: the executive, the connections, the logs.
type env struct{ s *Service }

func (e env) Local() totem.NodeID    { return e.s.host.Local() }
func (e env) Synced() bool           { return e.s.host.Synced() }
func (e env) Ring() totem.ConfChange { return e.s.host.Ring() }
func (e env) Send(id uint16, g totem.Guarantee, p []byte) error {
	return e.s.host.Send(id, g, p)
}
func (e env) SendReliable(id uint16, g totem.Guarantee, p []byte) {
	e.s.host.SendReliable(id, g, p)
}

// Event sends an event; a client cut off for not reading leaves its group
// when ipc reports it closed (Disconnected).
func (e env) Event(c *groups.Conn, id uint16, p []byte) {
	s := e.s
	conn := s.conns[c]
	if err := conn.Event(uint16(exec.ServiceCPG), id, p); errors.Is(err, ipc.ErrSlowClient) {
		s.stats.SlowClient++
		s.log.Warn("cpg client cut off: it does not read its events", zap.Uint64("conn", conn.ConnID()), zap.Int32("pid", conn.PeerCred().PID))
	}
}

// Changed records a group's change in the node's event log.
func (e env) Changed(group string, left, joinedList []wire.Address) {
	for _, a := range joinedList {
		e.s.host.Events().Record(events.CPGJoin, "cpg group joined", events.Fields{
			"group": group, "member_node": uint32(a.NodeID), "pid": a.PID, "reason": a.Reason.String()})
	}
	for _, a := range left {
		e.s.host.Events().Record(events.CPGLeave, "cpg group left", events.Fields{
			"group": group, "member_node": uint32(a.NodeID), "pid": a.PID, "reason": a.Reason.String()})
	}
}

func (e env) Malformed(m totem.Message, err error) {
	e.s.stats.Malformed++
	e.s.log.Warn("dropping a malformed cpg message", zap.Uint16("msg", m.ID), zap.Uint32("from", uint32(m.Sender)), zap.Error(err))
}

// --- ring side ---

// Deliver implements exec.Service.
func (s *Service) Deliver(m totem.Message) { s.core.Deliver(m) }

// ConfChange implements exec.Service (groups.Core.ConfChange).
func (s *Service) ConfChange(c totem.ConfChange) { s.core.ConfChange(c) }

// SyncStart implements exec.Syncer: multicast the members on this node.
func (s *Service) SyncStart(c totem.ConfChange) { s.core.SyncStart(c) }

// SyncDone implements exec.Syncer: install the agreed member lists,
// report the differences, then apply what was held.
func (s *Service) SyncDone() { s.core.SyncDone() }

// --- client side ---

// ipcError gives a refusal of the core its IPC code.
func ipcError(err error) error {
	var e *groups.Error
	if !errors.As(err, &e) {
		return err // the ring's own (totem.ErrTryAgain, ...)
	}
	code := map[groups.Code]ipc.Code{
		groups.CodeInvalid:  ipc.CodeInvalid,
		groups.CodeTooLarge: ipc.CodeTooLarge,
		groups.CodeExists:   ipc.CodeExists,
		groups.CodeNotFound: ipc.CodeNotFound,
		groups.CodeTryAgain: ipc.CodeTryAgain,
	}[e.Code]
	return ipc.Errorf(code, "%s", e.Msg)
}

// Request implements exec.ClientHandler.
func (s *Service) Request(conn exec.Client, h ipc.Header, p []byte) {
	c := s.clients[conn]
	if c == nil {
		c = s.core.NewConn()
		s.clients[conn] = c
		s.conns[c] = conn
	}
	switch h.Msg {
	case wire.ReqMcast:
		// Send acknowledgements overtake the deliveries queued for
		// this client: a sender is never held behind its backlog
		// (exec.Client.ReplyUrgent), so it can keep the ring busy.
		if err := s.mcast(conn, c, p); err != nil {
			s.countErr(err)
			_ = conn.ReplyErrorUrgent(h, err)
		} else {
			_ = conn.ReplyUrgent(h, nil)
		}
		return
	case wire.ReqMcastBatch:
		_ = conn.ReplyUrgent(h, s.mcastBatch(conn, c, p))
		return
	}
	var reply []byte
	var err error
	switch h.Msg {
	case wire.ReqJoin:
		err = s.join(conn, c, p)
	case wire.ReqLeave:
		err = ipcError(s.core.Leave(c))
	case wire.ReqMembers:
		reply, err = s.membersReq(p)
	case wire.ReqLocalNodeID:
		reply = wire.AppendU32(nil, uint32(s.host.Local()))
	case wire.ReqGroups:
		reply = wire.AppendGroups(nil, s.Groups())
	case wire.ReqTotemConf:
		reply = s.core.TotemConf()
	default:
		err = ipc.Errorf(ipc.CodeUnknownMessage, "cpg message %d", h.Msg)
	}
	if err != nil {
		s.countErr(err)
		_ = conn.ReplyError(h, err)
		return
	}
	_ = conn.Reply(h, reply)
}

// countErr counts the TRY_AGAIN answers (metrics: ringd_cpg_try_again_total).
func (s *Service) countErr(err error) {
	if ipc.ToError(err).Code == ipc.CodeTryAgain {
		s.stats.TryAgain++
	}
}

func (s *Service) join(conn exec.Client, c *groups.Conn, p []byte) error {
	req, err := wire.ParseJoinReq(p)
	if err != nil {
		return ipc.Errorf(ipc.CodeInvalid, "cpg join: %v", err)
	}
	pid := req.PID
	if pid == 0 {
		pid = uint32(conn.PeerCred().PID)
	}
	return ipcError(s.core.Join(c, req.Name, pid))
}

// congested is corosync's CPG flow control: a sender whose own
// deliveries pile up unread (exec.Client.Congested) gets TRY_AGAIN rather
// than adding more output that ringd would have to hold for it.
func congested(conn exec.Client) error {
	if conn != nil && conn.Congested() {
		return ipc.Errorf(ipc.CodeTryAgain, "cpg mcast: %d bytes of events wait unread on this connection; read them first", conn.Backlog())
	}
	return nil
}

func (s *Service) mcast(conn exec.Client, c *groups.Conn, p []byte) error {
	g, err := s.core.CheckMcast(c, p)
	if err != nil {
		return ipcError(err)
	}
	if err := congested(conn); err != nil {
		return err
	}
	if err := s.core.Ready(); err != nil {
		return ipcError(err)
	}
	return s.host.Send(wire.MsgMcast, g, p)
}

// mcastBatch multicasts records in order until one fails; the reply says
// how many went out and why the next did not.
func (s *Service) mcastBatch(conn exec.Client, c *groups.Conn, p []byte) []byte {
	it, err := wire.NewBatchIter(p)
	if err != nil {
		e := ipc.ToError(ipc.Errorf(ipc.CodeInvalid, "cpg mcast batch: %v", err))
		return wire.AppendBatchReply(nil, wire.BatchReply{Code: uint16(e.Code), Msg: e.Msg})
	}
	sent := 0
	fail := func(err error) []byte {
		s.countErr(err)
		e := ipc.ToError(err)
		return wire.AppendBatchReply(nil, wire.BatchReply{Sent: sent, Code: uint16(e.Code), Msg: e.Msg})
	}
	if err := s.core.Ready(); err != nil {
		return fail(ipcError(err))
	}
	if err := congested(conn); err != nil {
		return fail(err)
	}
	for {
		rec, ok := it.Next()
		if !ok {
			break
		}
		g, err := s.core.CheckMcast(c, rec)
		if err != nil {
			return fail(ipcError(err))
		}
		if err := s.host.Send(wire.MsgMcast, g, rec); err != nil {
			return fail(err)
		}
		sent++
	}
	if err := it.Err(); err != nil {
		return fail(ipc.Errorf(ipc.CodeInvalid, "cpg mcast batch: %v", err))
	}
	return wire.AppendBatchReply(nil, wire.BatchReply{Sent: sent})
}

func (s *Service) membersReq(p []byte) ([]byte, error) {
	name, err := wire.ParseName(p)
	if err != nil {
		return nil, ipc.Errorf(ipc.CodeInvalid, "cpg members: %v", err)
	}
	return wire.AppendAddrList(nil, s.core.Members(name)), nil
}

// Disconnected implements exec.ClientHandler: a process that goes away
// without leaving leaves with PROCDOWN (groups.Core.Disconnect).
func (s *Service) Disconnected(conn exec.Client) {
	c := s.clients[conn]
	if c == nil {
		return
	}
	delete(s.clients, conn)
	delete(s.conns, c)
	s.core.Disconnect(c)
}
