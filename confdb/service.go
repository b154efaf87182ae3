// Package confdb is ringmaster's runtime key-value store, corosync's cmap
// (openais confdb): a typed tree of dotted keys per node, loaded with the
// configuration and the derived runtime values, updated from the ring
// (members, quorum, statistics) and writable by clients within corosync's
// rules, with change tracking.
//
// Like cmap it is local to each node and not replicated: the service has
// no ring messages, it only reflects ring state. It has three layers:
//
//   - confdb/store, the state machine: the key tree with tracking and live
//     sources, and the policy for client writes. Pure: no I/O, no
//     goroutines.
//   - confdb/wire, the values, entries and IPC payloads (shared with
//     clients/confdb and ringctl).
//   - Service (this package), the executive service that serves the store
//     over IPC, keeps runtime.members.* and publishes stats.*.
package confdb

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"

	"ringmaster/confdb/store"
	"ringmaster/confdb/wire"
	"ringmaster/ipc"
	"ringmaster/totem"
	"ringmaster/totem/exec"
)

// ClientStat counts one client's traffic with one service, published under
// stats.ipcs.service<ID>.<pid>.<conn>.* (corosync's per-connection IPC
// statistics).
type ClientStat struct {
	Service    uint16
	ConnID     uint64
	PID        int32
	UID        uint32
	Requests   uint64
	Responses  uint64
	Dispatched uint64 // events pushed
	Errors     uint64 // error replies
}

// Sources feed the live stats.* keys. Each function is called when the
// keys are read, under the executive's lock (a Request); nil ones are
// skipped.
type Sources struct {
	// Ring returns the ring's counters (stats.srp.*).
	Ring func() totem.Counters
	// Clients returns the client counters of the other services; confdb
	// counts its own.
	Clients func() []ClientStat
}

// Hook runs when a client writes a key it is registered for, after the
// access and type checks and before the value is stored. It may refuse
// the write (its error goes back to the client) and decides whether the
// value is stored (triggers such as stats.clear.* are not). Hooks run
// under the executive's lock.
type Hook func(key string, v wire.Value) (store bool, err error)

type member struct {
	joined    bool
	joinCount uint32
}

type clientKey struct {
	svc  uint16
	conn uint64
}

// Service is the confdb executive service (exec.ServiceConfdb). It serves
// the store to clients and keeps runtime.members.* from the ring's
// configuration changes; it sends nothing on the ring.
type Service struct {
	store  *store.Store
	policy store.Policy
	addrs  map[totem.NodeID]netip.Addr
	src    Sources
	host   exec.Host
	log    *zap.Logger

	hooks       map[string]Hook
	prefixHooks []prefixHook
	tracks      map[exec.Client][]store.TrackID
	members     map[totem.NodeID]*member

	mu         sync.Mutex // the counters below are read by the stats source
	stats      map[exec.Client]*ClientStat
	ringBase   totem.Counters
	clientBase map[clientKey]ClientStat
}

type prefixHook struct {
	prefix string
	fn     Hook
}

// Config configures the Service.
type Config struct {
	// Entries are the keys the node starts with: the configuration and
	// the derived runtime values (internal/daemon builds them from
	// corosync.toml). Keys outside runtime.* keep their type on client
	// writes (store.NewPolicy).
	Entries []wire.Entry
	// Addrs are the nodes' ring addresses, shown in runtime.members.N.ip
	// (a node without one shows "unknown").
	Addrs map[totem.NodeID]netip.Addr
	// Sources feed the live stats.* keys.
	Sources Sources
}

// New builds the service with the store loaded from cfg.Entries.
func New(cfg Config) *Service {
	s := &Service{
		store:      store.NewStore(),
		policy:     store.NewPolicy(cfg.Entries),
		addrs:      cfg.Addrs,
		src:        cfg.Sources,
		log:        zap.NewNop(),
		hooks:      map[string]Hook{},
		tracks:     map[exec.Client][]store.TrackID{},
		members:    map[totem.NodeID]*member{},
		stats:      map[exec.Client]*ClientStat{},
		clientBase: map[clientKey]ClientStat{},
	}
	for _, e := range cfg.Entries {
		_ = s.store.Set(e.Key, e.Value)
	}
	s.store.AddSource("stats.", s.statsEntries)
	for _, k := range []string{"stats.clear.all", "stats.clear.totem", "stats.clear.ipc"} {
		s.OnWrite(k, s.clearStats)
	}
	return s
}

// Store is the service's key-value store (for the daemon's own keys).
func (s *Service) Store() *store.Store { return s.store }

// OnWrite registers h for client writes of key. Register before the
// executive starts.
func (s *Service) OnWrite(key string, h Hook) { s.hooks[key] = h }

// OnWritePrefix registers h for client writes of keys under prefix.
func (s *Service) OnWritePrefix(prefix string, h Hook) {
	s.prefixHooks = append(s.prefixHooks, prefixHook{prefix, h})
}

// The service answers local clients.
var _ exec.ClientHandler = (*Service)(nil)

// ID implements exec.Service.
func (s *Service) ID() exec.ServiceID { return exec.ServiceConfdb }

// Name implements exec.Service.
func (s *Service) Name() string { return "confdb" }

// Init implements exec.Service.
func (s *Service) Init(h exec.Host) error {
	s.host = h
	s.log = h.Log()
	return nil
}

// Deliver implements exec.Service: confdb has no ring messages.
func (s *Service) Deliver(m totem.Message) {
	s.log.Warn("dropping a confdb ring message: confdb is local to each node", zap.Uint16("msg", m.ID), zap.Uint32("from", uint32(m.Sender)))
}

// ConfChange implements exec.Service: runtime.members.<nodeid>.* follow
// the regular configurations (status joined/left, join_count counts the
// joins this node has seen, ip as corosync prints it).
func (s *Service) ConfChange(c totem.ConfChange) {
	if c.Kind != totem.Regular {
		return
	}
	for _, m := range c.Members {
		mem := s.members[m]
		if mem == nil {
			mem = &member{}
			s.members[m] = mem
		}
		if mem.joined && !slices.Contains(c.Joined, m) {
			continue
		}
		mem.joined = true
		mem.joinCount++
		p := "runtime.members." + strconv.Itoa(int(m)) + "."
		_ = s.store.Set(p+"ip", wire.String(s.memberIP(m)))
		_ = s.store.Set(p+"join_count", wire.U32(mem.joinCount))
		_ = s.store.Set(p+"config_version", wire.U64(0))
		_ = s.store.Set(p+"status", wire.String("joined"))
	}
	ids := make([]totem.NodeID, 0, len(s.members))
	for id := range s.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if mem := s.members[id]; mem.joined && !slices.Contains(c.Members, id) {
			mem.joined = false
			_ = s.store.Set("runtime.members."+strconv.Itoa(int(id))+".status", wire.String("left"))
		}
	}
}

func (s *Service) memberIP(id totem.NodeID) string {
	if a, ok := s.addrs[id]; ok {
		return "r(0) ip(" + a.String() + ") "
	}
	return "r(0) ip(unknown) "
}

// Request implements exec.ClientHandler.
func (s *Service) Request(c exec.Client, h ipc.Header, p []byte) {
	st := s.stat(c)
	s.mu.Lock()
	st.Requests++
	s.mu.Unlock()
	reply, err := s.handle(c, h, p)
	if err != nil {
		if c.ReplyError(h, err) == nil {
			s.count(c, func(st *ClientStat) { st.Errors++ })
		}
		return
	}
	if c.Reply(h, reply) == nil {
		s.count(c, func(st *ClientStat) { st.Responses++ })
	}
}

func (s *Service) handle(c exec.Client, h ipc.Header, p []byte) ([]byte, error) {
	switch h.Msg {
	case wire.MsgGet:
		key, err := wire.DecodeKeyRequest(p)
		if err != nil {
			return nil, err
		}
		v, err := s.store.Get(key)
		if err != nil {
			return nil, err
		}
		return wire.EncodePayload(wire.Entry{Key: key, Value: v}), nil
	case wire.MsgSet:
		e, err := wire.DecodeSetRequest(p)
		if err != nil {
			return nil, err
		}
		return nil, s.Set(e.Key, e.Value)
	case wire.MsgDelete:
		key, err := wire.DecodeKeyRequest(p)
		if err != nil {
			return nil, err
		}
		if err := s.policy.CheckDelete(key); err != nil {
			return nil, err
		}
		return nil, s.store.Delete(key)
	case wire.MsgList:
		prefix, err := wire.DecodeListRequest(p)
		if err != nil {
			return nil, err
		}
		return wire.EncodePayload(s.store.List(prefix)), nil
	case wire.MsgTrack:
		key, prefix, kinds, err := wire.DecodeTrackRequest(p)
		if err != nil {
			return nil, err
		}
		id := s.store.Track(key, prefix, kinds, func(id store.TrackID, ev wire.Event) {
			te := wire.TrackEvent{TrackID: uint64(id), Event: ev.Kind.String(), Key: ev.Key}
			if !ev.New.IsZero() {
				te.New = &ev.New
			}
			if !ev.Old.IsZero() {
				te.Old = &ev.Old
			}
			if c.Event(uint16(exec.ServiceConfdb), wire.EventTrack, wire.EncodePayload(te)) == nil {
				s.count(c, func(st *ClientStat) { st.Dispatched++ })
			}
		})
		s.tracks[c] = append(s.tracks[c], id)
		return wire.EncodePayload(wire.TrackReply{TrackID: uint64(id)}), nil
	case wire.MsgUntrack:
		var r wire.UntrackRequest
		if err := wire.DecodePayload(p, &r); err != nil {
			return nil, err
		}
		i := slices.Index(s.tracks[c], store.TrackID(r.TrackID))
		if i < 0 {
			return nil, fmt.Errorf("%w: %d", wire.ErrNoTrack, r.TrackID)
		}
		s.tracks[c] = slices.Delete(s.tracks[c], i, i+1)
		s.store.Untrack(store.TrackID(r.TrackID))
		return nil, nil
	}
	return nil, ipc.Errorf(ipc.CodeUnknownMessage, "confdb message %d", h.Msg)
}

// Set is a write with the client rules (policy, hooks), as `ringctl cmap
// set` does it. Call it under the executive's lock.
func (s *Service) Set(key string, v wire.Value) error {
	old, err := s.store.Get(key)
	if err != nil && !errors.Is(err, wire.ErrNotFound) {
		return err
	}
	if err := s.policy.CheckWrite(key, old, v); err != nil {
		return err
	}
	hook := s.hooks[key]
	if hook == nil {
		for _, ph := range s.prefixHooks {
			if strings.HasPrefix(key, ph.prefix) {
				hook = ph.fn
				break
			}
		}
	}
	if hook != nil {
		store, err := hook(key, v)
		if err != nil || !store {
			return err
		}
	}
	return s.store.Set(key, v)
}

// Disconnected implements exec.ClientHandler: the client's trackers go.
func (s *Service) Disconnected(c exec.Client) {
	for _, id := range s.tracks[c] {
		s.store.Untrack(id)
	}
	delete(s.tracks, c)
	s.mu.Lock()
	if st := s.stats[c]; st != nil {
		delete(s.clientBase, clientKey{st.Service, st.ConnID})
	}
	delete(s.stats, c)
	s.mu.Unlock()
}

func (s *Service) stat(c exec.Client) *ClientStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats[c]
	if st == nil {
		st = &ClientStat{Service: uint16(exec.ServiceConfdb), ConnID: c.ConnID(), PID: c.PeerCred().PID, UID: c.PeerCred().UID}
		s.stats[c] = st
	}
	return st
}

func (s *Service) count(c exec.Client, f func(*ClientStat)) {
	st := s.stat(c)
	s.mu.Lock()
	f(st)
	s.mu.Unlock()
}

// ClientStats are confdb's own client counters.
func (s *Service) ClientStats() []ClientStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ClientStat, 0, len(s.stats))
	for _, st := range s.stats {
		out = append(out, *st)
	}
	return out
}

// clearStats handles stats.clear.{all,totem,ipc}: like corosync it resets
// what is shown (here by remembering a baseline; the ring's own counters
// keep counting). The trigger value is not stored.
func (s *Service) clearStats(key string, _ wire.Value) (bool, error) {
	what := strings.TrimPrefix(key, "stats.clear.")
	s.mu.Lock()
	defer s.mu.Unlock()
	if (what == "all" || what == "totem") && s.src.Ring != nil {
		s.ringBase = s.src.Ring()
	}
	if what == "all" || what == "ipc" {
		for _, st := range s.allClientsLocked() {
			s.clientBase[clientKey{st.Service, st.ConnID}] = st
		}
	}
	return false, nil
}

// allClientsLocked lists client counters: the daemon's source covers every
// service's clients when set; confdb's own counters stand in without it.
func (s *Service) allClientsLocked() []ClientStat {
	var out []ClientStat
	if s.src.Clients != nil {
		out = s.src.Clients()
	} else {
		for _, st := range s.stats {
			out = append(out, *st)
		}
	}
	slices.SortFunc(out, func(a, b ClientStat) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.ConnID, b.ConnID))
	})
	return out
}

// statsEntries computes stats.*: stats.srp.<counter> from the ring and
// stats.ipcs.* per client (minus what stats.clear.* set aside).
func (s *Service) statsEntries() []wire.Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []wire.Entry
	if s.src.Ring != nil {
		cur, base := counterMap(s.src.Ring()), counterMap(s.ringBase)
		for name, v := range cur {
			out = append(out, wire.Entry{Key: "stats.srp." + name, Value: wire.U64(v - min(base[name], v))})
		}
	}
	clients := s.allClientsLocked()
	conns := map[uint64]bool{}
	for _, st := range clients {
		conns[st.ConnID] = true
		b := s.clientBase[clientKey{st.Service, st.ConnID}]
		p := fmt.Sprintf("stats.ipcs.service%d.%d.%d.", st.Service, st.PID, st.ConnID)
		out = append(out,
			wire.Entry{Key: p + "requests", Value: wire.U64(st.Requests - min(b.Requests, st.Requests))},
			wire.Entry{Key: p + "responses", Value: wire.U64(st.Responses - min(b.Responses, st.Responses))},
			wire.Entry{Key: p + "dispatched", Value: wire.U64(st.Dispatched - min(b.Dispatched, st.Dispatched))},
			wire.Entry{Key: p + "errors", Value: wire.U64(st.Errors - min(b.Errors, st.Errors))},
			wire.Entry{Key: p + "uid", Value: wire.U32(st.UID)},
		)
		if comm, err := os.ReadFile("/proc/" + strconv.Itoa(int(st.PID)) + "/comm"); err == nil {
			out = append(out, wire.Entry{Key: p + "procname", Value: wire.String(strings.TrimSpace(string(comm)))})
		}
	}
	out = append(out, wire.Entry{Key: "stats.ipcs.global.active", Value: wire.U64(uint64(len(conns)))})
	return out
}

// counterMap names the ring counters by their JSON names (stats.srp.*).
func counterMap(c totem.Counters) map[string]uint64 {
	b, _ := json.Marshal(c)
	m := map[string]uint64{}
	_ = json.Unmarshal(b, &m)
	return m
}
