package daemon

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"ringmaster/config"
	"ringmaster/internal/events"
	"ringmaster/ipc"
	"ringmaster/reconfig"
	"ringmaster/reconfig/wire"
	"ringmaster/totem"
	"ringmaster/totem/exec"
	"ringmaster/totem/ring"
	"ringmaster/totem/srp"
	"ringmaster/votequorum"
)

// The cluster-wide reload (`ringctl config reload`, corosync-cfgtool -R):
// the executive service exec.ServiceReconfig drives the pure two-phase
// commit of package reconfig; this file does its I/O. Each member loads
// and checks ITS OWN file when the Prepare is delivered (ActValidate),
// pre-loads the new keys for decryption only and votes; at the commit
// point (the delivery of the last vote, the same point of the ordered
// stream everywhere) every member applies its file:
//
//	change                              cluster-wide reload
//	----------------------------------  ---------------------------------------
//	file does not validate, keyfile     refused on every node; the vote names
//	unusable, quorum options refused    the node and FILE:LINE
//	cluster-wide parts differ between   refused: [totem] (without keyfile
//	nodes                               paths), the sealing key, the node
//	                                    list, [quorum] must be equal
//	totem.cluster_name, transport,      refused: restart every node
//	port, mcast_addr, crypto_cipher
//	local node gone or moved            refused: restart it
//	a node removed, moved or renamed    refused: stop it first (corosync
//	while a ring member                 requires it too; the resource
//	                                    manager knows nodes by name)
//	totem timings (token, consensus,    applied: srp.Processor.SetTimings on
//	join, window_size, ...)             every member (runtime.config.totem.*)
//	node list: added / removed nodes    applied: ring peers and receive filter
//	                                    (SetPeers, SetLinks with several
//	                                    links); votequorum's expected votes
//	                                    follow
//	[quorum] options                    applied: votequorum SetOptions
//	totem.keyfile, previous_keyfiles    applied: new keys open datagrams from
//	                                    the Prepare on, seal from the commit;
//	                                    keys dropped stay accepted for
//	                                    keyGrace after it (keyState)
//	ipc.allowed_uids/gids, logging.*    applied, as by SIGHUP
//	anything else (netmtu, ttl, links'  pending restart, as by SIGHUP
//	settings, ipc socket and limits,
//	system, metrics, resources)
//
// SIGHUP (reload.go) stays a reload of one node: it applies only what
// cannot split the cluster's agreement (keys, ipc, logging).

// defaultReloadTimeout bounds a transaction when the operator gives none.
const defaultReloadTimeout = 10 * time.Second

// keyState is what the ring's key list is made of, shared by SIGHUP's
// reload and the cluster-wide one:
//
//	part     set by                        until
//	keys     start, SIGHUP, a commit       the next of those (the first seals)
//	grace    a commit that dropped keys    keyGrace after that commit
//	preload  a prepared reload (its new    its commit or abort
//	         keys, decryption only)
//
// The ring gets their union (in that order) whenever one part changes, so
// that one part ending (an abort, a grace, a SIGHUP) never takes another's
// keys with it. change holds mu across the ring's SetKeys: SIGHUP runs
// outside the executive's lock, and the ring must end up with the union
// of the last state, not of whichever caller came second.
type keyState struct {
	mu                   sync.Mutex
	keys, grace, preload [][]byte
}

func (k *keyState) set(keys [][]byte) {
	k.mu.Lock()
	k.keys = keys
	k.mu.Unlock()
}

// union is the ring's key list: keys, then grace and preload keys not
// already in it. Called with mu held.
func (k *keyState) union() [][]byte {
	out := slices.Clone(k.keys)
	for _, l := range [][][]byte{k.grace, k.preload} {
		for _, x := range l {
			if !containsKey(out, x) {
				out = append(out, x)
			}
		}
	}
	return out
}

func containsKey(l [][]byte, k []byte) bool {
	return slices.ContainsFunc(l, func(x []byte) bool { return bytes.Equal(x, k) })
}

// change applies f to the parts and gives the ring the new union when it
// differs; if the ring refuses it, the parts stay as they were.
func (k *keyState) change(setKeys func([][]byte) error, f func(k *keyState)) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	keys, grace, preload := k.keys, k.grace, k.preload
	before := k.union()
	f(k)
	after := k.union()
	if slices.EqualFunc(before, after, bytes.Equal) {
		return nil
	}
	if err := setKeys(after); err != nil {
		k.keys, k.grace, k.preload = keys, grace, preload
		return err
	}
	return nil
}

// reloadService is the executive service of the cluster-wide reload.
// Every method runs under the executive's lock.
type reloadService struct {
	d     *Daemon
	host  exec.Host
	log   *zap.Logger
	m     *reconfig.Machine
	start time.Time

	prepared map[reconfig.ID]*preparedReload
	waiting  map[reconfig.ID]waitingClient
	timer    func()
	timerAt  time.Duration
	grace    func()
}

type waitingClient struct {
	c exec.Client
	h ipc.Header
}

// preparedReload is what a member validated for a transaction.
type preparedReload struct {
	running, next, file *config.Config
	keys                [][]byte // the file's (first seals); nil with crypto none
	preloaded           bool     // the ring opens with them already
	applied, pending    []string
}

var (
	_ exec.Service       = (*reloadService)(nil)
	_ exec.Syncer        = (*reloadService)(nil)
	_ exec.ClientHandler = (*reloadService)(nil)
)

func newReloadService(d *Daemon) *reloadService {
	return &reloadService{d: d, m: reconfig.New(d.node), start: time.Now(),
		prepared: map[reconfig.ID]*preparedReload{}, waiting: map[reconfig.ID]waitingClient{}}
}

func (s *reloadService) ID() exec.ServiceID { return exec.ServiceReconfig }
func (s *reloadService) Name() string       { return "reconfig" }

func (s *reloadService) Init(h exec.Host) error {
	s.host, s.log = h, h.Log()
	return nil
}

func (s *reloadService) now() time.Duration { return time.Since(s.start) }

func (s *reloadService) Deliver(m totem.Message) {
	if err := s.m.Deliver(s.now(), m.Sender, m.ID, m.Payload); err != nil {
		s.log.Warn("dropping a malformed reload message", zap.Uint32("from", uint32(m.Sender)), zap.Error(err))
	}
	s.run()
}

func (s *reloadService) ConfChange(c totem.ConfChange) {
	s.m.ConfChange(c)
	s.run()
}

func (s *reloadService) SyncStart(totem.ConfChange) {}

func (s *reloadService) SyncDone() { s.m.SyncDone() }

func (s *reloadService) Request(c exec.Client, h ipc.Header, p []byte) {
	if h.Msg != wire.MsgReload {
		_ = c.ReplyError(h, ipc.Errorf(ipc.CodeUnknownMessage, "reconfig message %d", h.Msg))
		return
	}
	var req wire.ReloadRequest
	if err := wire.DecodePayload(p, &req); err != nil {
		_ = c.ReplyError(h, ipc.Errorf(ipc.CodeInvalid, "%v", err))
		return
	}
	timeout, err := reloadTimeout(req)
	if err != nil {
		_ = c.ReplyError(h, ipc.Errorf(ipc.CodeInvalid, "%v", err))
		return
	}
	id, err := s.m.Start(s.now(), timeout)
	if err != nil {
		_ = c.ReplyError(h, ipc.Errorf(startErrCode(err), "%v", err))
		return
	}
	s.waiting[id] = waitingClient{c: c, h: h}
	s.log.Info("cluster-wide configuration reload asked", zap.Stringer("id", id), zap.Duration("timeout", timeout))
	s.run()
}

// reloadTimeout is a request's timeout, range-checked before any
// arithmetic: a client's milliseconds times 10^6 could wrap into range.
func reloadTimeout(req wire.ReloadRequest) (time.Duration, error) {
	switch {
	case req.TimeoutMS == 0:
		return defaultReloadTimeout, nil
	case req.TimeoutMS < 0 || req.TimeoutMS > wire.MaxTimeout.Milliseconds():
		return 0, fmt.Errorf("%w: timeout %d ms (want 1 to %d)", reconfig.ErrInvalid, req.TimeoutMS, wire.MaxTimeout.Milliseconds())
	}
	return time.Duration(req.TimeoutMS) * time.Millisecond, nil
}

// startErrCode: a request that came at the wrong moment (no ring yet,
// another reload running or asked) may be retried; ringctl does.
func startErrCode(err error) ipc.Code {
	if errors.Is(err, reconfig.ErrNoRing) || errors.Is(err, reconfig.ErrBusy) {
		return ipc.CodeTryAgain
	}
	return ipc.CodeInvalid
}

func (s *reloadService) Disconnected(c exec.Client) {
	maps.DeleteFunc(s.waiting, func(_ reconfig.ID, w waitingClient) bool { return w.c == c })
}

// run carries out the machine's actions until it has none, and keeps one
// timer on its deadline.
func (s *reloadService) run() {
	for {
		acts := s.m.Ready()
		if len(acts) == 0 {
			break
		}
		for _, a := range acts {
			s.act(a)
		}
	}
	at := s.m.Deadline()
	if at == s.timerAt && (at == 0 || s.timer != nil) {
		return
	}
	if s.timer != nil {
		s.timer()
		s.timer = nil
	}
	s.timerAt = at
	if at == 0 {
		return
	}
	s.timer = s.host.AfterFunc(max(at-s.now(), 0), func() {
		s.timer, s.timerAt = nil, 0
		s.m.Tick(s.now())
		s.run()
	})
}

func (s *reloadService) act(a reconfig.Action) {
	switch a.Kind {
	case reconfig.ActSend:
		s.host.SendReliable(a.Msg, totem.Agreed, a.Payload)
	case reconfig.ActValidate:
		p, vote := s.d.prepareReload(s.host.Ring().Members)
		if p != nil {
			s.prepared[a.ID] = p
		}
		if vote.OK {
			s.log.Info("reload: this node's file validated", zap.Stringer("id", a.ID), zap.Strings("applies", p.applied), zap.Strings("pending_restart", p.pending))
		} else {
			s.log.Warn("reload: this node refuses its file", zap.Stringer("id", a.ID), zap.String("error", vote.Error))
		}
		s.m.Vote(a.ID, vote)
	case reconfig.ActCommit:
		p := s.prepared[a.ID]
		delete(s.prepared, a.ID)
		if p == nil {
			// Cannot happen: a commit needs this node's OK vote.
			s.log.Error("reload committed without a prepared configuration", zap.Stringer("id", a.ID))
			return
		}
		s.commit(a.ID, p)
	case reconfig.ActAbort:
		p := s.prepared[a.ID]
		delete(s.prepared, a.ID)
		if p != nil && p.preloaded {
			if err := s.d.keys.change(s.d.ring.SetKeys, func(k *keyState) { k.preload = nil }); err != nil {
				s.log.Error("reload aborted: cannot drop the pre-loaded keys", zap.Error(err))
			}
		}
		s.log.Warn("cluster-wide configuration reload aborted; the running configuration stays", zap.Stringer("id", a.ID), zap.Error(a.Outcome.Err))
		s.host.Events().Record(events.ConfigReload, "cluster-wide configuration reload aborted", events.Fields{"id": a.ID.String(), "error": a.Outcome.Err.Error()})
	case reconfig.ActDone:
		w, ok := s.waiting[a.ID]
		if !ok {
			return
		}
		delete(s.waiting, a.ID)
		_ = w.c.Reply(w.h, wire.EncodePayload(resultOf(a.Outcome)))
	}
}

// resultOf is the operator's answer.
func resultOf(o *reconfig.Outcome) wire.Result {
	r := wire.Result{ID: o.ID.String(), Committed: o.Err == nil}
	if o.Err != nil {
		r.Error = o.Err.Error()
		r.TryAgain = errors.Is(o.Err, reconfig.ErrBusy) || errors.Is(o.Err, reconfig.ErrSyncing) || errors.Is(o.Err, reconfig.ErrMembership)
		for _, v := range o.Refusals {
			r.RefusedBy = append(r.RefusedBy, wire.Refusal{NodeID: uint32(v.Node), Error: v.Vote.Error})
		}
		return r
	}
	for _, v := range o.Votes {
		r.Nodes = append(r.Nodes, wire.NodeResult{NodeID: uint32(v.Node), Applied: nonNil(v.Vote.Applied), PendingRestart: nonNil(v.Vote.Pending)})
	}
	return r
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// keyGrace is how long keys a reload drops still open datagrams after
// the commit: members commit within a rotation of each other, so a
// datagram sealed just before another member's commit still opens.
func keyGrace(e config.Effective) time.Duration { return max(4*e.Token, time.Second) }

// commit applies p at the commit point (under the executive's lock).
func (s *reloadService) commit(id reconfig.ID, p *preparedReload) {
	d := s.d
	running, next := p.running, p.next
	var problems []string
	if p.keys != nil {
		// The file's keys seal and open from now on; those it no
		// longer lists (and those still in an earlier grace) open for
		// keyGrace more, for datagrams sealed before another member's
		// commit.
		dropped := false
		err := d.keys.change(d.ring.SetKeys, func(k *keyState) {
			var grace [][]byte
			for _, x := range append(slices.Clone(k.keys), k.grace...) {
				if !containsKey(p.keys, x) && !containsKey(grace, x) {
					grace = append(grace, x)
				}
			}
			k.keys, k.grace, k.preload = slices.Clone(p.keys), grace, nil
			dropped = len(grace) > 0
		})
		if err != nil {
			problems = append(problems, "keys: "+err.Error())
		} else if dropped {
			if s.grace != nil {
				s.grace()
			}
			s.grace = s.host.AfterFunc(keyGrace(next.Effective()), func() {
				s.grace = nil
				if err := d.keys.change(d.ring.SetKeys, func(k *keyState) { k.grace = nil }); err != nil {
					s.log.Error("cannot drop the keys whose grace ended", zap.Error(err))
				}
			})
		}
	} else if p.preloaded {
		_ = d.keys.change(d.ring.SetKeys, func(k *keyState) { k.preload = nil })
	}
	nodesChanged := !slices.EqualFunc(running.Nodes, next.Nodes, nodeEqual)
	if nodesChanged {
		if err := d.setNodeList(next); err != nil {
			problems = append(problems, "node list: "+err.Error())
		}
		if d.crm != nil {
			d.crm.setNames(next)
		}
	}
	if t := TimingsFrom(next.Effective()); t != TimingsFrom(running.Effective()) {
		if rs, ok := d.ring.(interface{ SetTimings(srp.Timings) }); ok {
			rs.SetTimings(t)
		}
	}
	if q, ok := d.quorum.(*votequorum.Service); ok && (nodesChanged || !equalJSON(running.Quorum, next.Quorum)) {
		qc, err := QuorumConfig(next, d.node)
		if err == nil {
			err = q.SetOptions(qc.Options, qc.Names)
		}
		if err != nil {
			problems = append(problems, "quorum: "+err.Error())
		}
	}
	if srv := d.ipcServer(); srv != nil {
		srv.SetAllowed(next.IPC.AllowedUIDs, next.IPC.AllowedGIDs)
	}
	if d.opt.OnReloadLogging != nil && !equalJSON(running.Logging, next.Logging) {
		if err := d.opt.OnReloadLogging(next.Logging); err != nil {
			problems = append(problems, "logging: "+err.Error())
			next.Logging = running.Logging
		}
	}
	pending := slices.Clone(p.pending)
	for _, c := range config.Diff(next, p.file) {
		if !slices.Contains(pending, c.Key) {
			pending = append(pending, c.Key)
		}
	}
	d.installConfig(running, next, pending)
	s.log.Info("cluster-wide configuration reload committed", zap.Stringer("id", id), zap.Strings("applied", p.applied), zap.Strings("pending_restart", pending))
	f := events.Fields{"id": id.String(), "applied": nonNil(p.applied), "pending_restart": nonNil(pending)}
	if len(problems) > 0 {
		f["problems"] = problems
		s.log.Error("cluster-wide reload: some changes could not be applied on this node", zap.Strings("problems", problems))
	}
	s.host.Events().Record(events.ConfigReload, "cluster-wide configuration reload committed", f)
}

// setNodeList gives the ring the new node list: peers and receive filter
// (several links: every link's addresses).
func (d *Daemon) setNodeList(next *config.Config) error {
	if len(next.Links()) > 1 {
		rl, ok := d.ring.(interface{ SetLinks([]ring.Link) error })
		if !ok {
			return fmt.Errorf("the ring cannot change its links' node lists")
		}
		links, err := RingLinks(next, d.node)
		if err != nil {
			return err
		}
		return rl.SetLinks(links)
	}
	rp, ok := d.ring.(interface {
		SetPeers(map[totem.NodeID]netip.AddrPort) error
	})
	if !ok {
		return fmt.Errorf("the ring cannot change its node list")
	}
	peers, err := ringPeers(next)
	if err != nil {
		return err
	}
	return rp.SetPeers(peers)
}

// setNames gives the resource manager the node names of a node list (at
// start, and at a cluster-wide reload as a start with the new file
// would; a node without a name is "nodeN"): the map is the controller's
// own (controld.Config.Names), changed in place under the executive's
// lock, at the same point of the stream on every member. A removed node
// keeps its entry in the CIB, as with Pacemaker (until removed there).
func (s *crmService) setNames(c *config.Config) {
	clear(s.names)
	for i := range c.Nodes {
		s.names[totem.NodeID(c.Nodes[i].NodeID)] = nodeName(&c.Nodes[i])
	}
}

func nodeEqual(a, b config.Node) bool { return equalJSON(a, b) }

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// liveReloadable is the configuration a cluster-wide reload runs after
// reloading file over running: the file, except the settings that only a
// restart applies (they stay as running and are reported pending).
func liveReloadable(running, file *config.Config) *config.Config {
	c := *file
	c.Totem.NetMTU = running.Totem.NetMTU
	c.Totem.TTL = running.Totem.TTL
	c.Totem.LinkMode = running.Totem.LinkMode
	c.Totem.KnetPingInterval = running.Totem.KnetPingInterval
	c.Totem.KnetPingTimeout = running.Totem.KnetPingTimeout
	c.Totem.KnetPongCount = running.Totem.KnetPongCount
	c.Totem.Interfaces = running.Totem.Interfaces
	c.IPC.Socket = running.IPC.Socket
	c.IPC.MaxQueuedBytes = running.IPC.MaxQueuedBytes
	c.IPC.MaxConnections = running.IPC.MaxConnections
	c.System = running.System
	c.Metrics = running.Metrics
	c.Resources = running.Resources
	return &c
}

// prepareReload loads and checks this node's file for a cluster-wide
// reload, pre-loads its keys for decryption, and returns what to apply
// at the commit with this node's vote (a refusal names FILE:LINE).
//
// members is the ring in which the reload runs (the executive's last
// regular configuration, the same on every member at this point of the
// stream).
func (d *Daemon) prepareReload(members []totem.NodeID) (*preparedReload, wire.Vote) {
	refuse := func(err error) (*preparedReload, wire.Vote) {
		return nil, wire.Vote{Error: err.Error()}
	}
	file, err := d.opt.loadConfig()
	if err != nil {
		return refuse(err)
	}
	running := d.Config()
	if err := d.checkReloadable(running, file, members); err != nil {
		return refuse(err)
	}
	var keys [][]byte
	if file.Totem.CryptoCipher != "none" {
		if keys, err = file.LoadKeys(); err != nil {
			return refuse(err)
		}
	}
	qc, err := QuorumConfig(file, d.node)
	if err == nil {
		err = votequorum.CheckOptions(qc.Options)
	}
	if err != nil {
		return refuse(file.FieldErr("quorum", "%v", err))
	}
	next := liveReloadable(running, file)
	p := &preparedReload{running: running, next: next, file: file, keys: keys}
	for _, c := range config.Diff(running, next) {
		p.applied = append(p.applied, c.Key)
	}
	for _, c := range config.Diff(next, file) {
		p.pending = append(p.pending, c.Key)
	}
	if keys != nil {
		// Decryption only: the running key still seals (it is first).
		err := d.keys.change(d.ring.SetKeys, func(k *keyState) {
			k.preload = nil
			for _, x := range keys {
				if !containsKey(k.keys, x) {
					k.preload = append(k.preload, x)
				}
			}
			p.preloaded = len(k.preload) > 0
		})
		if err != nil {
			return refuse(file.FieldErr("totem.keyfile", "the ring refuses the new keys: %v", err))
		}
	}
	return p, wire.Vote{OK: true, Digests: digests(file, keys), Applied: p.applied, Pending: p.pending}
}

// checkReloadable refuses what a running cluster cannot change, with the
// file's line.
func (d *Daemon) checkReloadable(running, file *config.Config, members []totem.NodeID) error {
	var errs config.Errors
	for _, f := range []struct {
		key      string
		old, new string
	}{
		{"totem.cluster_name", running.Totem.ClusterName, file.Totem.ClusterName},
		{"totem.transport", running.Totem.Transport, file.Totem.Transport},
		{"totem.port", fmt.Sprint(running.Totem.Port), fmt.Sprint(file.Totem.Port)},
		{"totem.mcast_addr", running.Totem.McastAddr, file.Totem.McastAddr},
		{"totem.crypto_cipher", running.Totem.CryptoCipher, file.Totem.CryptoCipher},
	} {
		if f.old != f.new {
			errs = append(errs, file.FieldErr(f.key, "cannot change while the cluster runs (running %s, file %s): restart every node to change it", f.old, f.new))
		}
	}
	me := file.NodeByID(int(d.node))
	if me == nil {
		errs = append(errs, file.FieldErr("node", "this node (%d) is no longer in the node list", d.node))
	} else if old := running.NodeByID(int(d.node)); old != nil && !equalLinks(old, me) {
		errs = append(errs, file.FieldErr(nodeKey(file, int(d.node)), "this node's own addresses cannot change while it runs: restart it"))
	} else if old != nil && nodeName(old) != nodeName(me) {
		errs = append(errs, file.FieldErr(nodeKey(file, int(d.node))+".name", "this node cannot be renamed (%s → %s) while it runs: the resource manager knows it by its name; stop it first, reload on the others, then start it", nodeName(old), nodeName(me)))
	}
	for i := range running.Nodes {
		old := &running.Nodes[i]
		id := totem.NodeID(old.NodeID)
		if id == d.node || !slices.Contains(members, id) {
			continue
		}
		n := file.NodeByID(old.NodeID)
		switch {
		case n == nil:
			errs = append(errs, file.FieldErr("node", "node %d (%s) was removed from the node list but is still a member of the ring: stop it first, then reload", old.NodeID, old.Name))
		case !equalLinks(old, n):
			errs = append(errs, file.FieldErr(nodeKey(file, old.NodeID), "node %d (%s) changed its address but is still a member of the ring: stop it first, then reload", old.NodeID, old.Name))
		case nodeName(old) != nodeName(n):
			// The CIB's node_state and constraints name it: renamed
			// under a running controller, its entry would keep the
			// old name while the controller used the new one.
			errs = append(errs, file.FieldErr(nodeKey(file, old.NodeID)+".name", "node %d was renamed (%s → %s) but is still a member of the ring: the resource manager knows it by its name; stop it first, then reload", old.NodeID, nodeName(old), nodeName(n)))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// nodeName is a node's name as the resource manager uses it (setNames).
func nodeName(n *config.Node) string {
	if n.Name == "" {
		return fmt.Sprintf("node%d", n.NodeID)
	}
	return n.Name
}

// equalLinks: the same address on every link.
func equalLinks(a, b *config.Node) bool {
	for k := range config.MaxLinks {
		if a.RingAddr(k) != b.RingAddr(k) {
			return false
		}
	}
	return true
}

// nodeKey is the dotted key of node id's entry ("node[2]").
func nodeKey(c *config.Config, id int) string {
	for i := range c.Nodes {
		if c.Nodes[i].NodeID == id {
			return fmt.Sprintf("node[%d]", i)
		}
	}
	return "node"
}

// digests are the SHA-256 of the cluster-wide parts of a file: what every
// member must agree on for a reload to commit. Key file paths may differ
// between nodes; the key that seals may not (only its hash is sent).
func digests(c *config.Config, keys [][]byte) wire.Digests {
	var ds wire.Digests
	sum := func(v any) wire.Digest {
		b, err := json.Marshal(v)
		if err != nil {
			panic(fmt.Sprintf("digest of %T: %v", v, err))
		}
		return sha256.Sum256(b)
	}
	t := c.Totem
	t.Keyfile, t.PreviousKeyfiles = "", nil
	ds[wire.SectionTotem] = sum(t)
	if len(keys) > 0 {
		ds[wire.SectionKey] = sha256.Sum256(keys[0])
	}
	ds[wire.SectionNodes] = sum(c.Nodes)
	ds[wire.SectionQuorum] = sum(c.Quorum)
	return ds
}
