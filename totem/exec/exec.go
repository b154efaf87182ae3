// Package exec is the executive: the plugin host that runs ringmaster's
// services (cpg, votequorum, confdb, crm, ...) on the ordered stream of the
// Totem ring and routes local client requests to them.
//
// Concurrency: the executive serialises every call into services under one
// lock — ring deliveries and configuration changes (from the ring's
// goroutine), client requests (from connection goroutines), timers and
// client disconnects — so a service never runs concurrently with itself or
// with another service. Services must not block in these calls: sending on
// the ring and to clients is non-blocking by contract.
//
// Sync barrier: after every regular configuration the executive calls
// SyncStart on every Syncer, which multicasts its state, then multicasts a
// barrier tagged with the ring ID. Because the stream is totally ordered and
// each sender's messages are FIFO, once the barrier of every member has been
// delivered, every member's state has been too: SyncDone is called at the
// same point of the stream on every node. A new configuration during sync
// restarts it.
//
//	state \ event  | regular conf    | barrier (ring R) from n         | last barrier
//	---------------+-----------------+---------------------------------+-------------
//	synced         | start, → sync   | ignore (stale)                  | -
//	sync(R)        | restart → sync  | mark n; ignore other rings      | SyncDone, → synced
package exec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"ringmaster/internal/events"
	"ringmaster/ipc"
	"ringmaster/totem"
	"ringmaster/totem/exec/wire"
)

// ServiceID numbers a service on the ring and on the IPC socket (defined in
// exec/wire, which clients share).
type ServiceID = wire.ServiceID

// Service IDs.
const (
	ServiceExec     = wire.ServiceExec
	ServiceCPG      = wire.ServiceCPG
	ServiceQuorum   = wire.ServiceQuorum
	ServiceConfdb   = wire.ServiceConfdb
	ServiceCRM      = wire.ServiceCRM
	ServiceLRMD     = wire.ServiceLRMD
	ServiceStonith  = wire.ServiceStonith
	ServiceStatus   = wire.ServiceStatus
	ServiceReconfig = wire.ServiceReconfig
)

// Executive messages on the ring (service 0).
const (
	msgSyncBarrier uint16 = 1
)

// Ring is what the executive needs from the Totem stack (totem/ring.Ring
// implements it). Send must never block and never call back into the
// executive synchronously.
type Ring interface {
	Send(service, id uint16, g totem.Guarantee, payload []byte) error
	Status() totem.Status
}

// BatchRing is implemented by rings (totem/ring.Ring) that can queue a
// client request's messages without waking their own goroutine and then
// hand them to the protocol on the caller's goroutine (Flush): a lone
// message then goes out, and comes back to its client, without a thread
// hand-off inside ringd. Flush may call Deliver and ConfChange, so the
// executive calls it after releasing its lock.
type BatchRing interface {
	SendBatched(service, id uint16, g totem.Guarantee, payload []byte) error
	// Flush calls beforeSend once, after what it delivered at once
	// and before the datagrams that wake the other nodes.
	Flush(beforeSend func())
}

// Host is the executive as a service sees it. Its methods may only be
// called from inside the service's callbacks (under the executive's lock),
// except where noted.
type Host interface {
	// Local is this node's ID.
	Local() totem.NodeID
	// Send multicasts a message of this service on the ring; it fails
	// with totem.ErrTryAgain when the ring's queue is full.
	Send(id uint16, g totem.Guarantee, payload []byte) error
	// SendReliable is Send for messages that must go out (sync state):
	// when the ring's queue is full they wait, in order, in the
	// executive and are retried.
	SendReliable(id uint16, g totem.Guarantee, payload []byte)
	// Ring is the last regular configuration.
	Ring() totem.ConfChange
	// Synced reports whether the sync barrier after the last
	// configuration change has completed.
	Synced() bool
	// AfterFunc runs f under the executive's lock after d; the returned
	// stop function cancels it (safe from anywhere).
	AfterFunc(d time.Duration, f func()) (stop func())
	// Log is the service's logger.
	Log() *zap.Logger
	// Events records what operators should see in `ringctl events` and
	// the status page (membership, group joins, transitions, ...); it
	// never blocks and is safe from anywhere.
	Events() events.Recorder
}

// Service is a plugin of the executive. All methods are called under the
// executive's lock (never concurrently).
type Service interface {
	ID() ServiceID
	Name() string
	// Init is called once before anything else.
	Init(h Host) error
	// Deliver hands over a message of this service in total order.
	Deliver(m totem.Message)
	// ConfChange reports transitional and regular configurations.
	ConfChange(c totem.ConfChange)
}

// Syncer is implemented by services with state to agree on after each
// membership change.
type Syncer interface {
	// SyncStart: multicast this node's state now (with SendReliable).
	SyncStart(c totem.ConfChange)
	// SyncDone: every member's state sent in SyncStart has been delivered.
	SyncDone()
}

// ClientHandler is implemented by services that serve local clients.
type ClientHandler interface {
	// Request answers (now or later) with c.Reply / c.ReplyError.
	Request(c Client, h ipc.Header, payload []byte)
	// Disconnected: the client is gone (clean close or death). It is the
	// last call with c: services drop what they keep for it.
	Disconnected(c Client)
}

// Client is a local client's connection as a service sees it: who it is,
// and how to answer it or push events to it. *ipc.Conn implements it;
// services' tests pass fakes that record what was sent.
//
// Every method may be called from any goroutine (a service may answer
// later, from a timer or a goroutine of its own) and never blocks: output
// is queued. A Client is comparable and stays the same value for the
// life of the connection (services key maps by it), so implementations
// are pointers.
type Client interface {
	// ConnID numbers the connection, unique while ringd runs (logs,
	// per-client statistics).
	ConnID() uint64
	// PeerCred is the client process's identity as the kernel reports it.
	PeerCred() ipc.Cred

	// Reply and ReplyError answer the request h, in order with the
	// events queued before them.
	Reply(h ipc.Header, payload []byte) error
	ReplyError(h ipc.Header, err error) error
	// ReplyUrgent and ReplyErrorUrgent answer h ahead of queued events,
	// for answers whose meaning does not depend on them (see
	// ipc.Conn.ReplyUrgent).
	ReplyUrgent(h ipc.Header, payload []byte) error
	ReplyErrorUrgent(h ipc.Header, err error) error
	// Event pushes an unsolicited message; a client over its output
	// budget is disconnected and ipc.ErrSlowClient returned.
	Event(service, msg uint16, payload []byte) error

	// Backlog is how many bytes of output wait to be read by the client;
	// Congested reports whether requests that make more output should
	// get TRY_AGAIN (see ipc.Conn.Congested).
	Backlog() int
	Congested() bool
}

var _ Client = (*ipc.Conn)(nil)

// ErrUnknownService is logged for messages of a service that is not
// registered.
var ErrUnknownService = errors.New("unknown service")

// Executive hosts services. Create with New, Register services, then Start.
type Executive struct {
	mu       sync.Mutex
	local    totem.NodeID
	ring     Ring
	log      *zap.Logger
	services map[ServiceID]*slot
	order    []ServiceID // registration order: deliveries go in this order

	conf     totem.ConfChange // last regular configuration
	syncing  bool
	barriers map[totem.NodeID]bool

	reliable []pending // SendReliable backlog, FIFO across services
	retry    *time.Timer
	started  bool

	// inRequest is set while a client request is handled: sends then
	// go through BatchRing.SendBatched, and batched records that one
	// did, so Request flushes the ring once the lock is released.
	inRequest bool
	batched   bool

	events events.Recorder
}

type slot struct {
	svc  Service
	exec *Executive
	log  *zap.Logger
}

type pending struct {
	svc     ServiceID
	id      uint16
	g       totem.Guarantee
	payload []byte
}

// New creates an executive for node local. ring may be set later with
// SetRing but before Start.
func New(local totem.NodeID, ring Ring, log *zap.Logger) *Executive {
	if log == nil {
		log = zap.NewNop()
	}
	// Not synced until the first configuration has been synced: services
	// refuse client traffic until they know the membership.
	return &Executive{local: local, ring: ring, log: log, services: map[ServiceID]*slot{}, syncing: true, barriers: map[totem.NodeID]bool{}, events: events.Discard}
}

// SetEvents sets the event recorder services get from Host.Events (by
// default events.Discard); call it before Start.
func (e *Executive) SetEvents(r events.Recorder) { e.events = r }

// SetRing sets the ring (for wiring where the ring needs the executive as
// its Events first).
func (e *Executive) SetRing(r Ring) { e.ring = r }

// Register adds a service. IDs must be unique.
func (e *Executive) Register(s Service) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return fmt.Errorf("exec: register %s after start", s.Name())
	}
	if _, dup := e.services[s.ID()]; dup || s.ID() == ServiceExec {
		return fmt.Errorf("exec: service id %d (%s) already taken", s.ID(), s.Name())
	}
	// A service whose Request has another signature (the *ipc.Conn one
	// ClientHandler had before Client, say) is not a ClientHandler, and
	// nothing at compile time says so: every request would be answered
	// "unknown service". Refuse it here instead.
	if _, ok := s.(ClientHandler); !ok {
		if _, has := reflect.TypeOf(s).MethodByName("Request"); has {
			return fmt.Errorf("exec: service %s has a Request method but does not implement exec.ClientHandler (Request(Client, ipc.Header, []byte), Disconnected(Client))", s.Name())
		}
	}
	e.services[s.ID()] = &slot{svc: s, exec: e, log: e.log.With(zap.String("service", s.Name()))}
	e.order = append(e.order, s.ID())
	return nil
}

// Service returns the registered service with id, or nil.
func (e *Executive) Service(id ServiceID) Service {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.services[id]; s != nil {
		return s.svc
	}
	return nil
}

// Start initialises every service in registration order.
func (e *Executive) Start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.started = true
	for _, id := range e.order {
		s := e.services[id]
		if err := s.svc.Init(s); err != nil {
			return fmt.Errorf("exec: init %s: %w", s.svc.Name(), err)
		}
	}
	return nil
}

// Deliver implements totem.Events.
func (e *Executive) Deliver(m totem.Message) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ServiceID(m.Service) == ServiceExec {
		e.deliverExec(m)
		return
	}
	s := e.services[ServiceID(m.Service)]
	if s == nil {
		e.log.Warn("dropping message for an unknown service", zap.Uint16("service", m.Service), zap.Uint16("msg", m.ID), zap.Uint32("from", uint32(m.Sender)))
		return
	}
	s.svc.Deliver(m)
}

// ConfChange implements totem.Events.
func (e *Executive) ConfChange(c totem.ConfChange) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range e.order {
		e.services[id].svc.ConfChange(c)
	}
	if c.Kind != totem.Regular {
		return
	}
	e.conf = c
	e.startSync()
}

func (e *Executive) startSync() {
	e.syncing = true
	e.barriers = map[totem.NodeID]bool{}
	// Old-ring sync traffic still waiting is meaningless in the new ring.
	e.reliable = slices.DeleteFunc(e.reliable, func(p pending) bool {
		return p.svc == ServiceExec && p.id == msgSyncBarrier
	})
	for _, id := range e.order {
		if sy, ok := e.services[id].svc.(Syncer); ok {
			sy.SyncStart(e.conf)
		}
	}
	e.sendReliable(ServiceExec, msgSyncBarrier, totem.Agreed, appendBarrier(nil, e.conf.Ring))
}

// The sync barrier's payload is the ring ID it closes: representative u32,
// sequence u64 (big endian), exactly barrierSize bytes.
const barrierSize = 12

// errBarrier is returned by decodeBarrier for a payload of another size.
var errBarrier = errors.New("exec: malformed sync barrier")

func appendBarrier(b []byte, r totem.RingID) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(r.Rep))
	return binary.BigEndian.AppendUint64(b, r.Seq)
}

func decodeBarrier(p []byte) (totem.RingID, error) {
	if len(p) != barrierSize {
		return totem.RingID{}, fmt.Errorf("%w: %d bytes (want %d)", errBarrier, len(p), barrierSize)
	}
	return totem.RingID{Rep: totem.NodeID(binary.BigEndian.Uint32(p)), Seq: binary.BigEndian.Uint64(p[4:])}, nil
}

func (e *Executive) deliverExec(m totem.Message) {
	switch m.ID {
	case msgSyncBarrier:
		r, err := decodeBarrier(m.Payload)
		if err != nil {
			e.log.Warn("dropping a malformed sync barrier", zap.Uint32("from", uint32(m.Sender)), zap.Error(err))
			return
		}
		if !e.syncing {
			return
		}
		if r != e.conf.Ring || !slices.Contains(e.conf.Members, m.Sender) {
			return
		}
		e.barriers[m.Sender] = true
		for _, n := range e.conf.Members {
			if !e.barriers[n] {
				return
			}
		}
		e.syncing = false
		for _, id := range e.order {
			if sy, ok := e.services[id].svc.(Syncer); ok {
				sy.SyncDone()
			}
		}
		e.log.Debug("sync complete", zap.Stringer("ring", e.conf.Ring))
	default:
		e.log.Warn("dropping unknown executive message", zap.Uint16("msg", m.ID))
	}
}

// sendReliable queues behind earlier reliable sends and flushes what it can.
func (e *Executive) sendReliable(svc ServiceID, id uint16, g totem.Guarantee, p []byte) {
	e.reliable = append(e.reliable, pending{svc, id, g, p})
	e.flushReliable()
}

func (e *Executive) flushReliable() {
	for len(e.reliable) > 0 {
		p := e.reliable[0]
		err := e.send(p.svc, p.id, p.g, p.payload)
		if errors.Is(err, totem.ErrTryAgain) {
			if e.retry == nil {
				e.retry = time.AfterFunc(5*time.Millisecond, func() {
					e.mu.Lock()
					e.retry = nil
					e.flushReliable()
					e.mu.Unlock()
				})
			}
			return
		}
		if err != nil {
			e.log.Error("dropping a sync message the ring refused", zap.Uint16("service", uint16(p.svc)), zap.Error(err))
		}
		e.reliable = e.reliable[1:]
	}
}

// Request routes a client request to its service (ipc.Handler). Messages
// the request sent are flushed into the ring after the executive's lock
// is released (BatchRing).
func (e *Executive) Request(c *ipc.Conn, h ipc.Header, payload []byte) {
	if e.request(c, h, payload) {
		// The client's reply and its own message, if the ring
		// delivered it at once, leave before the other nodes wake.
		e.ring.(BatchRing).Flush(c.WriteQueued)
	}
}

func (e *Executive) request(c *ipc.Conn, h ipc.Header, payload []byte) (flush bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ch ClientHandler
	if s := e.services[ServiceID(h.Service)]; s != nil {
		ch, _ = s.svc.(ClientHandler)
	}
	if ch == nil {
		_ = c.ReplyError(h, ipc.Errorf(ipc.CodeUnknownService, "service %d", h.Service))
		return false
	}
	e.inRequest, e.batched = true, false
	defer func() { e.inRequest = false }()
	ch.Request(c, h, payload)
	return e.batched
}

// send puts a service's message on the ring: batched while a client
// request is handled (see Request), directly otherwise. Called with mu
// held.
func (e *Executive) send(svc ServiceID, id uint16, g totem.Guarantee, payload []byte) error {
	if e.inRequest {
		if br, ok := e.ring.(BatchRing); ok {
			err := br.SendBatched(uint16(svc), id, g, payload)
			if err == nil {
				e.batched = true
			}
			return err
		}
	}
	return e.ring.Send(uint16(svc), id, g, payload)
}

// Closed tells every client-serving service that a client is gone
// (ipc.Handler).
func (e *Executive) Closed(c *ipc.Conn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range e.order {
		if ch, ok := e.services[id].svc.(ClientHandler); ok {
			ch.Disconnected(c)
		}
	}
}

// Synced reports whether the last sync barrier completed.
func (e *Executive) Synced() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.syncing
}

// Do runs f under the executive's lock (for drivers that need to read
// service state consistently, e.g. status snapshots).
func (e *Executive) Do(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f()
}

// --- Host, as seen by one service ---

func (s *slot) Local() totem.NodeID { return s.exec.local }

func (s *slot) Send(id uint16, g totem.Guarantee, payload []byte) error {
	return s.exec.send(s.svc.ID(), id, g, payload)
}

func (s *slot) SendReliable(id uint16, g totem.Guarantee, payload []byte) {
	s.exec.sendReliable(s.svc.ID(), id, g, payload)
}

func (s *slot) Ring() totem.ConfChange { return s.exec.conf }

func (s *slot) Synced() bool { return !s.exec.syncing }

func (s *slot) AfterFunc(d time.Duration, f func()) (stop func()) {
	var mu sync.Mutex
	cancelled := false
	t := time.AfterFunc(d, func() {
		mu.Lock()
		c := cancelled
		mu.Unlock()
		if c {
			return
		}
		s.exec.mu.Lock()
		defer s.exec.mu.Unlock()
		mu.Lock()
		c = cancelled
		mu.Unlock()
		if !c {
			f()
		}
	})
	return func() {
		mu.Lock()
		cancelled = true
		mu.Unlock()
		t.Stop()
	}
}

func (s *slot) Log() *zap.Logger { return s.log }

func (s *slot) Events() events.Recorder { return s.exec.events }
