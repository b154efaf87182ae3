package daemon

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"ringmaster/crm/cib"
	"ringmaster/crm/cibedit"
	"ringmaster/crm/controld"
	"ringmaster/crm/wire"
	"ringmaster/internal/events"
	"ringmaster/ipc"
	"ringmaster/totem"
	"ringmaster/totem/exec"
	vqwire "ringmaster/votequorum/wire"
)

// CIBFile is the CIB a node keeps in state_dir (written with
// internal/durable: temporary file, fsync, rename, fsync of the directory).
const CIBFile = "cib.xml"

// MaxConfigBytes bounds the CIB a ReplaceConfig may carry. The
// configuration goes round the ring in one message (MsgConfig), and again
// in the sync messages after membership changes, next to the nodes'
// states: half of the ring's largest message leaves room for those. A
// larger one would be refused by the ring after the request was accepted,
// and its answer would never come.
const MaxConfigBytes = totem.MaxMessageSize / 2

// peInputDir holds the scheduler inputs (pe-input-N.xml).
const peInputDir = "pe-inputs"

// crmService is the resource manager's executive service (exec.ServiceCRM):
// the driver of the pure controller core (crm/controld). It feeds the core
// the ring's configurations and messages, the quorum, local requests, and
// the results of the local resource manager and the fencer, and carries out
// what the core asks (see crm/controld/README.md, "Wiring it into ringd").
// Every method runs under the executive's lock; results of operations and
// fencing come back through exec.Do.
type crmService struct {
	d     *Daemon
	host  exec.Host
	log   *zap.Logger
	names map[totem.NodeID]string
	ctrl  *controld.Controller
	lrm   *lrmRunner
	fence *fenceService
	store *cibWriter

	// outq holds non-sync messages the ring refused (TryAgain), in order.
	outq      []controld.Outgoing
	retrying  bool
	timerAt   time.Time
	stopTimer func()
	// replies waits for the EventConfigApplied or EventCleanupApplied of
	// each local request.
	replies map[uint64]pendingReply
	// lastQuorate is the quorum last given to the controller.
	lastQuorate *bool
	closed      bool
	// leaveOK is closed when the DC lets this node leave (clean
	// shutdown: its resources have moved away).
	leaveOK chan struct{}
}

type pendingReply struct {
	c exec.Client
	h ipc.Header
}

func (d *Daemon) newCRM(fence *fenceService) (*crmService, error) {
	cfg := d.Config()
	r := &cfg.Resources
	s := &crmService{d: d, names: map[totem.NodeID]string{}, fence: fence, replies: map[uint64]pendingReply{}, leaveOK: make(chan struct{})}
	s.setNames(cfg)
	lrm, err := newLRMRunner(d, r, s.names[d.node], s.post, fence)
	if err != nil {
		return nil, err
	}
	lrm.opDone = func(now time.Time, r controld.OpResult) { s.ctrl.OpDone(now, r) }
	s.lrm = lrm
	s.store = newCIBWriter(cfg.System.StateDir, r.MaxPEInputs, d.log.Named("crm"))
	return s, nil
}

func (s *crmService) ID() exec.ServiceID { return exec.ServiceCRM }
func (s *crmService) Name() string       { return "crm" }

// Init loads the CIB kept in state_dir and builds the controller.
func (s *crmService) Init(h exec.Host) error {
	s.host = h
	s.log = h.Log()
	cfg := s.d.Config()
	c, err := loadCIB(filepath.Join(cfg.System.StateDir, CIBFile))
	if err != nil {
		return err
	}
	wait := time.Duration(cfg.Resources.StartupWait) * time.Millisecond
	if wait == 0 {
		wait = -1 // controld: 0 means its default
	}
	ctrl, err := controld.New(controld.Config{
		Node: s.d.node, Names: s.names, CIB: c,
		MaxPEInputs: cfg.Resources.MaxPEInputs, PEInputSeq: s.store.nextPEInput(),
		StartupWait: wait,
	}, time.Now())
	if err != nil {
		return err
	}
	s.ctrl = ctrl
	s.fence.setCIB(ctrl.CIB())
	s.drain()
	return nil
}

// loadCIB reads the persisted CIB (nil when there is none yet). A file
// that does not parse stops ringd at start with an error naming it: it is
// written only through internal/durable, so a corrupt one means a disk or
// an operator problem, and starting empty would hide that (and, on a node
// alone, run nothing). Moving it away starts the node with an empty CIB;
// it takes the cluster's configuration when it joins (the newest wins).
func loadCIB(path string) (*cib.CIB, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("crm: %w", err)
	}
	c, err := cib.Parse(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("crm: %s: %w (move it away to start with an empty CIB; every other node has a copy)", path, err)
	}
	return c, nil
}

func (s *crmService) ConfChange(c totem.ConfChange) {
	if c.Kind == totem.Regular {
		// The quorum of the new ring comes from votequorum's SyncDone,
		// before ours.
		s.lastQuorate = nil
	}
	s.ctrl.ConfChange(time.Now(), c)
	s.drain()
}

func (s *crmService) SyncStart(totem.ConfChange) {}

func (s *crmService) SyncDone() {
	s.ctrl.SyncDone(time.Now())
	s.drain()
}

func (s *crmService) Deliver(m totem.Message) {
	s.ctrl.Deliver(time.Now(), controld.Message{Sender: m.Sender, ID: m.ID, Payload: m.Payload})
	s.drain()
}

// quorumChanged is votequorum's hook (under the executive's lock).
func (s *crmService) quorumChanged(st vqwire.Status) {
	if s.ctrl == nil || (s.lastQuorate != nil && *s.lastQuorate == st.Quorate) {
		return
	}
	q := st.Quorate
	s.lastQuorate = &q
	s.ctrl.SetQuorum(time.Now(), q)
	s.drain()
}

// post runs f under the executive's lock (results of operations and
// fencing arrive on other goroutines).
func (s *crmService) post(f func(now time.Time)) {
	s.d.exec.Do(func() {
		if s.closed {
			return
		}
		f(time.Now())
		s.drain()
	})
}

// drain carries out everything the controller asks, in the order its
// contract gives, then sets the timer for its next deadline.
func (s *crmService) drain() {
	for s.ctrl.HasReady() {
		rd := s.ctrl.Ready()
		if rd.CIB != nil {
			s.store.saveCIB(rd.CIB)
			s.fence.setCIB(rd.CIB)
		}
		for _, p := range rd.PEInputs {
			s.store.savePEInput(p)
		}
		for _, m := range rd.Messages {
			s.send(m)
		}
		for _, f := range rd.Fences {
			s.fence.fenceFor(f, s.post, s.ctrl)
		}
		for _, op := range rd.Ops {
			s.lrm.run(op)
		}
		for _, e := range rd.Events {
			s.event(e)
		}
	}
	s.setTimer(s.ctrl.Deadline())
}

func (s *crmService) send(m controld.Outgoing) {
	if m.Sync {
		s.host.SendReliable(m.ID, m.Guarantee, m.Payload)
		return
	}
	if len(s.outq) == 0 {
		if err := s.host.Send(m.ID, m.Guarantee, m.Payload); err == nil {
			return
		} else if !errors.Is(err, totem.ErrTryAgain) {
			s.log.Error("cannot send a controller message", zap.Uint16("msg", m.ID), zap.Int("bytes", len(m.Payload)), zap.Error(err))
			return
		}
	}
	s.outq = append(s.outq, m)
	s.scheduleRetry()
}

func (s *crmService) scheduleRetry() {
	if s.retrying {
		return
	}
	s.retrying = true
	s.host.AfterFunc(5*time.Millisecond, func() {
		s.retrying = false
		for len(s.outq) > 0 {
			m := s.outq[0]
			err := s.host.Send(m.ID, m.Guarantee, m.Payload)
			if errors.Is(err, totem.ErrTryAgain) {
				s.scheduleRetry()
				return
			}
			if err != nil {
				s.log.Error("cannot send a controller message", zap.Uint16("msg", m.ID), zap.Error(err))
			}
			s.outq = s.outq[1:]
		}
	})
}

func (s *crmService) setTimer(at time.Time) {
	if at.Equal(s.timerAt) {
		return
	}
	if s.stopTimer != nil {
		s.stopTimer()
		s.stopTimer = nil
	}
	s.timerAt = at
	if at.IsZero() {
		return
	}
	s.stopTimer = s.host.AfterFunc(max(time.Until(at), 0), func() {
		s.timerAt = time.Time{}
		s.stopTimer = nil
		s.ctrl.Tick(time.Now())
		s.drain()
	})
}

func (s *crmService) nodeName(id totem.NodeID) string {
	if n, ok := s.names[id]; ok {
		return n
	}
	return "node" + strconv.FormatUint(uint64(id), 10)
}

// event logs a controller event, records it for `ringctl events`, and
// answers the local request it concerns.
func (s *crmService) event(e controld.Event) {
	rec := s.host.Events()
	switch e.Kind {
	case controld.EventConfigApplied:
		if r, ok := s.replies[e.Req]; ok {
			delete(s.replies, e.Req)
			if e.Err != nil {
				_ = r.c.ReplyError(r.h, crmError(e.Err))
			} else {
				_ = r.c.Reply(r.h, wire.Encode(wire.Applied{Version: wireVersion(s.ctrl.Version())}))
			}
		}
		if e.Err == nil {
			rec.Record(events.CRM, "configuration changed", events.Fields{"version": s.ctrl.Version().String()})
		}
	case controld.EventTransition:
		if e.Actions > 0 || e.Err != nil {
			s.log.Info(e.Text, zap.Int("actions", e.Actions), zap.Error(e.Err))
			rec.Record(events.CRM, e.Text, events.Fields{"actions": e.Actions})
		}
	case controld.EventFenceFailed:
		s.log.Warn("fencing failed; it is retried", zap.String("target", s.nodeName(e.Node)), zap.String("reason", e.Text), zap.Error(e.Err))
		rec.Record(events.Fencing, "fencing failed", events.Fields{"target": s.nodeName(e.Node), "reason": e.Text})
	case controld.EventFenced:
		s.log.Warn("node fenced", zap.String("target", s.nodeName(e.Node)))
		rec.Record(events.Fencing, "node fenced", events.Fields{"target": s.nodeName(e.Node)})
	case controld.EventCleanupApplied:
		if r, ok := s.replies[e.Req]; ok {
			delete(s.replies, e.Req)
			_ = r.c.Reply(r.h, nil)
		}
	case controld.EventSchedulerError:
		s.log.Error("the scheduler refused the CIB", zap.Error(e.Err))
		rec.Record(events.CRM, "scheduler error", events.Fields{"error": fmt.Sprint(e.Err)})
	case controld.EventShutdownAllowed:
		s.log.Info("the DC allowed this node to leave")
		select {
		case <-s.leaveOK:
		default:
			close(s.leaveOK)
		}
	default:
		s.log.Info(e.Text, zap.Uint32("node", uint32(e.Node)), zap.Error(e.Err))
	}
}

func wireVersion(v controld.Version) wire.Version {
	return wire.Version{AdminEpoch: v.AdminEpoch, Epoch: v.Epoch, NumUpdates: v.NumUpdates}
}

// crmError maps the controller's sentinels to IPC error codes.
func crmError(err error) error {
	switch {
	case errors.Is(err, controld.ErrConflict):
		return ipc.Errorf(ipc.CodeExists, "%v (re-read the CIB and retry)", err)
	case errors.Is(err, controld.ErrTryAgain):
		return fmt.Errorf("%w: %v", ipc.ErrTryAgain, err)
	case errors.Is(err, controld.ErrInvalid):
		return fmt.Errorf("%w: %v", ipc.ErrInvalid, err)
	}
	return err
}

// Request answers ringctl's crm requests (crm/wire).
func (s *crmService) Request(c exec.Client, h ipc.Header, p []byte) {
	now := time.Now()
	switch h.Msg {
	case wire.ReqGetCIB, wire.ReqGetCIBGzip:
		var b bytes.Buffer
		var w io.Writer = &b
		var zw *gzip.Writer
		if h.Msg == wire.ReqGetCIBGzip {
			zw = gzip.NewWriter(&b)
			w = zw
		}
		if _, err := s.ctrl.CIB().WriteTo(w); err != nil {
			_ = c.ReplyError(h, err)
			return
		}
		if zw != nil {
			if err := zw.Close(); err != nil {
				_ = c.ReplyError(h, err)
				return
			}
		}
		if b.Len() > ipc.MaxPayload {
			// The client would drop the connection on a frame this
			// large: answer with what went wrong instead.
			_ = c.ReplyError(h, ipc.Errorf(ipc.CodeTooLarge, "crm: the CIB is %d bytes, above the IPC frame limit (%d); a client that asks for it compressed (ReqGetCIBGzip) gets it", b.Len(), ipc.MaxPayload))
			return
		}
		_ = c.Reply(h, b.Bytes())
	case wire.ReqStatus:
		st := s.ctrl.Status()
		out := wire.Status{Node: uint32(st.Node), Name: s.nodeName(st.Node), Synced: st.Synced, Quorate: st.Quorate,
			Transition: st.Transition, Pending: st.Pending, Version: wireVersion(st.Version), Enabled: true}
		for _, m := range st.Members {
			out.Members = append(out.Members, uint32(m))
		}
		if st.DC != 0 && st.Synced {
			out.DCID, out.DC = uint32(st.DC), s.nodeName(st.DC)
		}
		_ = c.Reply(h, wire.Encode(out))
	case wire.ReqReplaceConfig:
		var req wire.ReplaceConfig
		if err := wire.Decode(p, &req); err != nil {
			_ = c.ReplyError(h, fmt.Errorf("%w: %v", ipc.ErrInvalid, err))
			return
		}
		var base *controld.Version
		if req.Base != nil {
			base = &controld.Version{AdminEpoch: req.Base.AdminEpoch, Epoch: req.Base.Epoch, NumUpdates: req.Base.NumUpdates}
		}
		if len(req.CIB) > MaxConfigBytes {
			_ = c.ReplyError(h, ipc.Errorf(ipc.CodeTooLarge, "the CIB is %d bytes; at most %d go round the ring", len(req.CIB), MaxConfigBytes))
			return
		}
		xml, err := s.withNodes([]byte(req.CIB))
		if err != nil {
			_ = c.ReplyError(h, fmt.Errorf("%w: %v", ipc.ErrInvalid, err))
			return
		}
		if len(xml) > MaxConfigBytes {
			_ = c.ReplyError(h, ipc.Errorf(ipc.CodeTooLarge, "the CIB with the nodelist's nodes is %d bytes; at most %d go round the ring", len(xml), MaxConfigBytes))
			return
		}
		id, err := s.ctrl.ReplaceConfig(now, xml, base)
		if err != nil {
			_ = c.ReplyError(h, crmError(err))
			s.drain()
			return
		}
		s.replies[id] = pendingReply{c: c, h: h}
		s.drain()
	case wire.ReqSetAttribute:
		var req wire.SetAttribute
		if err := wire.Decode(p, &req); err != nil || req.Name == "" || strings.ContainsAny(req.Name, "\x00") {
			_ = c.ReplyError(h, fmt.Errorf("%w: an attribute needs a name (%v)", ipc.ErrInvalid, err))
			return
		}
		if len(req.Name) > wire.MaxAttrName || len(req.Value) > wire.MaxAttrValue {
			_ = c.ReplyError(h, fmt.Errorf("%w: attribute name over %d bytes or value over %d bytes", ipc.ErrInvalid, wire.MaxAttrName, wire.MaxAttrValue))
			return
		}
		s.ctrl.SetAttribute(now, req.Name, req.Value, req.Delete)
		s.drain()
		_ = c.Reply(h, nil)
	case wire.ReqCleanup:
		var req wire.Cleanup
		if err := wire.Decode(p, &req); err != nil || req.Resource == "" {
			_ = c.ReplyError(h, fmt.Errorf("%w: cleanup needs a resource (%v)", ipc.ErrInvalid, err))
			return
		}
		var node totem.NodeID
		if req.Node != "" {
			var ok bool
			if node, ok = s.nodeID(req.Node); !ok {
				_ = c.ReplyError(h, fmt.Errorf("%w: no node %q in the nodelist", ipc.ErrNotFound, req.Node))
				return
			}
		}
		// Answered once this node has applied it (EventCleanupApplied):
		// a `crm wait` that follows reads a CIB without the history.
		s.replies[s.ctrl.Cleanup(now, req.Resource, node)] = pendingReply{c: c, h: h}
		s.drain()
	default:
		_ = c.ReplyError(h, ipc.Errorf(ipc.CodeUnknownMessage, "crm: unknown request %d", h.Msg))
	}
}

// withNodes completes a configuration with the nodes of the nodelist (as
// Pacemaker's controller adds the members it sees): the scheduler places
// resources only on configured nodes.
func (s *crmService) withNodes(x []byte) ([]byte, error) {
	c, err := cib.Parse(bytes.NewReader(x))
	if err != nil {
		return nil, err
	}
	var nodes []cibedit.NodeRef
	for id, name := range s.names {
		nodes = append(nodes, cibedit.NodeRef{ID: strconv.FormatUint(uint64(id), 10), Uname: name})
	}
	slices.SortFunc(nodes, func(a, b cibedit.NodeRef) int { return strings.Compare(a.ID, b.ID) })
	next, err := cibedit.EnsureNodes(c, nodes)
	if err != nil || next == c {
		return x, err
	}
	var b bytes.Buffer
	if _, err := next.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (s *crmService) nodeID(name string) (totem.NodeID, bool) {
	for id, n := range s.names {
		if strings.EqualFold(n, name) {
			return id, true
		}
	}
	if v, err := strconv.ParseUint(name, 10, 32); err == nil {
		if _, ok := s.names[totem.NodeID(v)]; ok {
			return totem.NodeID(v), true
		}
	}
	return 0, false
}

// Disconnected forgets the client's pending requests (the change itself
// still goes round the ring).
func (s *crmService) Disconnected(c exec.Client) {
	for id, r := range s.replies {
		if r.c == c {
			delete(s.replies, id)
		}
	}
}

// shutdown is Pacemaker's clean shutdown: ask the DC to let this node go
// (the "shutdown" transient attribute: the DC moves its resources away,
// then sends do_shutdown, which makes every node expect it down) and wait
// for that, or until ctx ends. The handshake is needed even when nothing
// runs here: a node that leaves without it is unclean to the others and,
// with fencing enabled, gets fenced. It is skipped only where nobody can
// answer it or fence this node:
//
//	situation                               | leaves when
//	----------------------------------------+-------------------------------
//	alone in the ring, nothing active       | at once
//	a DC (this node or another)             | the DC allowed it (or ctx ends)
//	synced, no DC (no quorum), nothing runs | at once (no-quorum-policy
//	                                        | stopped the resources, or none)
//	no DC, resources still active           | they stopped, or ctx ends
//
// The last active resource stopping is not enough while there is a DC:
// do_shutdown comes after the stops, and leaving before it is unclean.
func (s *crmService) shutdown(ctx context.Context) {
	var st controld.Status
	s.d.exec.Do(func() { st = s.ctrl.Status() })
	if len(st.Members) <= 1 && s.lrm.activeCount() == 0 {
		return
	}
	s.log.Info("stopping: asking the DC to let this node go (its resources move away first)", zap.Int("active", s.lrm.activeCount()))
	s.d.exec.Do(func() {
		s.ctrl.SetAttribute(time.Now(), "shutdown", strconv.FormatInt(time.Now().Unix(), 10), false)
		s.drain()
	})
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.leaveOK:
			return
		case <-ctx.Done():
			s.log.Warn("leaving without the DC's permission: it did not let this node go in time (the others may fence it)",
				zap.Int("active", s.lrm.activeCount()))
			return
		case <-t.C:
			// Without quorum there is no DC to let this node go;
			// resources stop by no-quorum-policy, or never (freeze,
			// ignore: then ctx ends the wait).
			s.d.exec.Do(func() { st = s.ctrl.Status() })
			if st.Synced && st.DC == 0 && s.lrm.activeCount() == 0 {
				return
			}
		}
	}
}

// close stops the timers and the local resource manager's goroutines
// (the resources keep running: a restarted ringd probes them).
func (s *crmService) close() {
	s.d.exec.Do(func() {
		s.closed = true
		if s.stopTimer != nil {
			s.stopTimer()
		}
	})
	s.lrm.close()
	s.store.close()
}
