package confdb

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"

	"ringmaster/config"
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
type Hook func(key string, v Value) (store bool, err error)

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
	store  *Store
	policy Policy
	cfg    *config.Config
	local  totem.NodeID
	src    Sources
	host   exec.Host
	log    *zap.Logger

	hooks       map[string]Hook
	prefixHooks []prefixHook
	tracks      map[*ipc.Conn][]TrackID
	members     map[totem.NodeID]*member

	mu         sync.Mutex // the counters below are read by the stats source
	stats      map[*ipc.Conn]*ClientStat
	ringBase   totem.Counters
	clientBase map[clientKey]ClientStat
}

type prefixHook struct {
	prefix string
	fn     Hook
}

// New builds the service with the store loaded from cfg (ConfigEntries).
func New(cfg *config.Config, local totem.NodeID, src Sources) *Service {
	s := &Service{
		store:      NewStore(),
		policy:     Policy{LocalNodePos: -1, configTypes: map[string]Type{}},
		cfg:        cfg,
		local:      local,
		src:        src,
		log:        zap.NewNop(),
		hooks:      map[string]Hook{},
		tracks:     map[*ipc.Conn][]TrackID{},
		members:    map[totem.NodeID]*member{},
		stats:      map[*ipc.Conn]*ClientStat{},
		clientBase: map[clientKey]ClientStat{},
	}
	for _, e := range ConfigEntries(cfg, local) {
		_ = s.store.Set(e.Key, e.Value)
		if !strings.HasPrefix(e.Key, "runtime.") {
			s.policy.configTypes[e.Key] = e.Value.Type()
		}
		if e.Key == "nodelist.local_node_pos" {
			n, _ := e.Value.Uint()
			s.policy.LocalNodePos = int(n)
		}
	}
	s.store.AddSource("stats.", s.statsEntries)
	for _, k := range []string{"stats.clear.all", "stats.clear.totem", "stats.clear.ipc"} {
		s.OnWrite(k, s.clearStats)
	}
	return s
}

// Store is the service's key-value store (for the daemon's own keys).
func (s *Service) Store() *Store { return s.store }

// OnWrite registers h for client writes of key. Register before the
// executive starts.
func (s *Service) OnWrite(key string, h Hook) { s.hooks[key] = h }

// OnWritePrefix registers h for client writes of keys under prefix.
func (s *Service) OnWritePrefix(prefix string, h Hook) {
	s.prefixHooks = append(s.prefixHooks, prefixHook{prefix, h})
}

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
		_ = s.store.Set(p+"ip", String(s.memberIP(m)))
		_ = s.store.Set(p+"join_count", U32(mem.joinCount))
		_ = s.store.Set(p+"config_version", U64(0))
		_ = s.store.Set(p+"status", String("joined"))
	}
	ids := make([]totem.NodeID, 0, len(s.members))
	for id := range s.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if mem := s.members[id]; mem.joined && !slices.Contains(c.Members, id) {
			mem.joined = false
			_ = s.store.Set("runtime.members."+strconv.Itoa(int(id))+".status", String("left"))
		}
	}
}

func (s *Service) memberIP(id totem.NodeID) string {
	if n := s.cfg.NodeByID(int(id)); n != nil {
		if ap, err := s.cfg.NodeAddr(n); err == nil {
			return "r(0) ip(" + ap.Addr().String() + ") "
		}
	}
	return "r(0) ip(unknown) "
}

// Request implements exec.ClientHandler.
func (s *Service) Request(c *ipc.Conn, h ipc.Header, p []byte) {
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

func (s *Service) handle(c *ipc.Conn, h ipc.Header, p []byte) ([]byte, error) {
	switch h.Msg {
	case MsgGet:
		key, err := DecodeKeyRequest(p)
		if err != nil {
			return nil, err
		}
		v, err := s.store.Get(key)
		if err != nil {
			return nil, err
		}
		return EncodePayload(Entry{key, v}), nil
	case MsgSet:
		e, err := DecodeSetRequest(p)
		if err != nil {
			return nil, err
		}
		return nil, s.Set(e.Key, e.Value)
	case MsgDelete:
		key, err := DecodeKeyRequest(p)
		if err != nil {
			return nil, err
		}
		if err := s.policy.CheckDelete(key); err != nil {
			return nil, err
		}
		return nil, s.store.Delete(key)
	case MsgList:
		prefix, err := DecodeListRequest(p)
		if err != nil {
			return nil, err
		}
		return EncodePayload(s.store.List(prefix)), nil
	case MsgTrack:
		key, prefix, kinds, err := DecodeTrackRequest(p)
		if err != nil {
			return nil, err
		}
		id := s.store.Track(key, prefix, kinds, func(id TrackID, ev Event) {
			te := TrackEvent{TrackID: uint64(id), Event: ev.Kind.String(), Key: ev.Key}
			if !ev.New.IsZero() {
				te.New = &ev.New
			}
			if !ev.Old.IsZero() {
				te.Old = &ev.Old
			}
			if c.Event(uint16(exec.ServiceConfdb), EventTrack, EncodePayload(te)) == nil {
				s.count(c, func(st *ClientStat) { st.Dispatched++ })
			}
		})
		s.tracks[c] = append(s.tracks[c], id)
		return EncodePayload(TrackReply{TrackID: uint64(id)}), nil
	case MsgUntrack:
		var r UntrackRequest
		if err := DecodePayload(p, &r); err != nil {
			return nil, err
		}
		i := slices.Index(s.tracks[c], TrackID(r.TrackID))
		if i < 0 {
			return nil, fmt.Errorf("%w: %d", ErrNoTrack, r.TrackID)
		}
		s.tracks[c] = slices.Delete(s.tracks[c], i, i+1)
		s.store.Untrack(TrackID(r.TrackID))
		return nil, nil
	}
	return nil, ipc.Errorf(ipc.CodeUnknownMessage, "confdb message %d", h.Msg)
}

// Set is a write with the client rules (policy, hooks), as `ringctl cmap
// set` does it. Call it under the executive's lock.
func (s *Service) Set(key string, v Value) error {
	old, err := s.store.Get(key)
	if err != nil && !errors.Is(err, ErrNotFound) {
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
func (s *Service) Disconnected(c *ipc.Conn) {
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

func (s *Service) stat(c *ipc.Conn) *ClientStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats[c]
	if st == nil {
		st = &ClientStat{Service: uint16(exec.ServiceConfdb), ConnID: c.ID, PID: c.Cred.PID, UID: c.Cred.UID}
		s.stats[c] = st
	}
	return st
}

func (s *Service) count(c *ipc.Conn, f func(*ClientStat)) {
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
func (s *Service) clearStats(key string, _ Value) (bool, error) {
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
func (s *Service) statsEntries() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Entry
	if s.src.Ring != nil {
		cur, base := counterMap(s.src.Ring()), counterMap(s.ringBase)
		for name, v := range cur {
			out = append(out, Entry{"stats.srp." + name, U64(v - min(base[name], v))})
		}
	}
	clients := s.allClientsLocked()
	conns := map[uint64]bool{}
	for _, st := range clients {
		conns[st.ConnID] = true
		b := s.clientBase[clientKey{st.Service, st.ConnID}]
		p := fmt.Sprintf("stats.ipcs.service%d.%d.%d.", st.Service, st.PID, st.ConnID)
		out = append(out,
			Entry{p + "requests", U64(st.Requests - min(b.Requests, st.Requests))},
			Entry{p + "responses", U64(st.Responses - min(b.Responses, st.Responses))},
			Entry{p + "dispatched", U64(st.Dispatched - min(b.Dispatched, st.Dispatched))},
			Entry{p + "errors", U64(st.Errors - min(b.Errors, st.Errors))},
			Entry{p + "uid", U32(st.UID)},
		)
		if comm, err := os.ReadFile("/proc/" + strconv.Itoa(int(st.PID)) + "/comm"); err == nil {
			out = append(out, Entry{p + "procname", String(strings.TrimSpace(string(comm)))})
		}
	}
	out = append(out, Entry{"stats.ipcs.global.active", U64(uint64(len(conns)))})
	return out
}

// counterMap names the ring counters by their JSON names (stats.srp.*).
func counterMap(c totem.Counters) map[string]uint64 {
	b, _ := json.Marshal(c)
	m := map[string]uint64{}
	_ = json.Unmarshal(b, &m)
	return m
}
