// Package daemon wires one ringmaster node together: configuration, the
// Totem ring, the executive with its services, and the IPC socket. cmd/ringd
// is a thin main around it; tests start daemons in-process through it.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"

	"ringmaster/confdb/store"
	"ringmaster/config"
	"ringmaster/internal/durable"
	"ringmaster/internal/events"
	"ringmaster/ipc"
	"ringmaster/totem"
	"ringmaster/totem/exec"
	"ringmaster/totem/ring"
	"ringmaster/votequorum"
)

// Options configure a Daemon beyond the configuration file.
type Options struct {
	ConfigPath string
	// Node overrides the local node identity (--node ID|NAME).
	Node string
	// Socket overrides [ipc] socket (--socket).
	Socket  string
	Version string
	Log     *zap.Logger
	// OnReloadLogging is called with the new [logging] after a successful
	// reload (the caller owns the logger).
	// It returns an error when the new [logging] cannot be applied (an
	// output that does not open); the running [logging] then stays.
	OnReloadLogging func(config.Logging) error
}

// RingDriver is the ring as the daemon runs it.
type RingDriver interface {
	exec.Ring
	// Run drives the ring, delivering to ev, until ctx ends or Leave.
	Run(ctx context.Context, ev totem.Events) error
	// Leave leaves the ring gracefully.
	Leave(ctx context.Context) error
	// SetKeys replaces the crypto keys (reload).
	SetKeys(keys [][]byte) error
}

// Daemon is one running node.
type Daemon struct {
	opt  Options
	log  *zap.Logger
	node totem.NodeID

	// cfg is the running configuration: only what is in effect (a
	// reload applies some changes and leaves others pending, see
	// reload.go). pending lists those others. Lock order: the
	// executive's lock before cfgMu.
	cfgMu   sync.RWMutex
	cfg     *config.Config
	pending []string
	cmap    *store.Store

	exec   *exec.Executive
	ring   RingDriver
	ipcMu  sync.Mutex
	ipc    *ipc.Server
	quorum Quorate
	// crm and fence are the resource manager (nil when [resources]
	// enabled = false).
	crm   *crmService
	fence *fenceService
	// obs: event log, metrics, status page (observe.go).
	obs *observer
	// keys are the ring's keys in force; reconf is the cluster-wide
	// reload (cluster_reload.go).
	keys   keyState
	reconf *reloadService
}

// ShutdownTimeout bounds how long a stopping ringd waits for its
// resources to move to other nodes before it leaves the ring anyway.
var ShutdownTimeout = 2 * time.Minute

// ErrConfig wraps configuration problems found at start.
var ErrConfig = errors.New("configuration")

// loadConfig reads the configuration file, with the command line's
// --socket over [ipc] socket (at start and at every reload).
func (opt Options) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(opt.ConfigPath)
	if err != nil {
		return nil, err
	}
	if opt.Socket != "" {
		cfg.IPC.Socket = opt.Socket
	}
	return cfg, nil
}

// New loads the configuration, finds the local node and builds (but does
// not start) the node.
func New(opt Options) (*Daemon, error) {
	cfg, err := opt.loadConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	addrs, err := config.HostAddrs()
	if err != nil {
		return nil, err
	}
	me, err := cfg.LocalNode(opt.Node, addrs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if opt.Log == nil {
		opt.Log = zap.NewNop()
	}
	d := &Daemon{opt: opt, cfg: cfg, node: totem.NodeID(me.NodeID)}
	d.log = opt.Log.With(zap.Int("node", me.NodeID))
	d.obs = newObserver(d)
	if err := os.MkdirAll(cfg.System.StateDir, 0o750); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	// Temporary files of our own state files that a crash left behind
	// (internal/durable names them; nothing else is touched).
	removed, err := durable.CleanTemps(cfg.System.StateDir, append(ring.StateFileNames(d.node), votequorum.StateFile, CIBFile)...)
	for _, p := range removed {
		d.log.Info("removed a temporary state file left by a crash", zap.String("file", p))
	}
	if err != nil {
		d.log.Warn("state_dir", zap.Error(err))
	}
	// The ring delivers to the executive, and the executive sends on the
	// ring: build the executive first, then give it the ring.
	d.exec = exec.New(d.node, nil, d.log)
	d.exec.SetEvents(d.obs.events)
	// The ring adds its own node field: give it the logger without one.
	for _, w := range cfg.Warnings() {
		opt.Log.Warn(w)
	}
	// The keys the ring starts with are also where a cluster-wide reload
	// pre-loads and drops keys from (keyState).
	keys, err := cfg.LoadKeys()
	if err != nil {
		return nil, err
	}
	d.keys.set(keys)
	ring, err := newRing(cfg, keys, d.node, latencyEvents{Events: d.exec, local: d.node, lat: d.obs.latency}, opt.Log, d.obs.linkChange)
	if err != nil {
		return nil, err
	}
	d.ring = ring
	d.exec.SetRing(latencyRing{Ring: ring, lat: d.obs.latency})
	if err := d.registerServices(); err != nil {
		return nil, err
	}
	return d, nil
}

// registerServices adds every service of a node, in delivery order. Each
// service is one line here; keep them in service-ID order.
func (d *Daemon) registerServices() error {
	q, err := d.newQuorum()
	if err != nil {
		return err
	}
	d.quorum = q
	d.obs.quorumWatch(q)
	cm := d.newConfdb(q)
	d.cmap = cm.Store()
	publishPending(d.cmap, nil)
	services := []exec.Service{
		d.obs.newCPG(),
		q,
		cm,
	}
	if d.Config().Resources.EnabledEffective() {
		// After votequorum: the controller needs the new ring's quorum
		// before its SyncDone.
		d.fence = d.newFencer()
		crm, err := d.newCRM(d.fence)
		if err != nil {
			return err
		}
		d.crm = crm
		q.OnChange(crm.quorumChanged)
		services = append(services, crm, d.fence)
	}
	d.reconf = newReloadService(d)
	services = append(services, &statusService{d: d, start: time.Now()}, d.reconf)
	for _, s := range services {
		if err := d.exec.Register(s); err != nil {
			return err
		}
	}
	return nil
}

// ipcServer is the socket server once Run has started it (nil before).
func (d *Daemon) ipcServer() *ipc.Server {
	d.ipcMu.Lock()
	defer d.ipcMu.Unlock()
	return d.ipc
}

// Config is the running configuration.
func (d *Daemon) Config() *config.Config {
	d.cfgMu.RLock()
	defer d.cfgMu.RUnlock()
	return d.cfg
}

// Node is the local node ID.
func (d *Daemon) Node() totem.NodeID { return d.node }

// Run starts the services, the ring and the socket, tells systemd it is
// ready, and runs until ctx ends; then it leaves the ring gracefully.
func (d *Daemon) Run(ctx context.Context) error {
	if err := d.exec.Start(); err != nil {
		return err
	}
	cfg := d.Config()
	srv, err := ipc.Listen(cfg.IPC.Socket, ipcHandler{Handler: d.exec, o: d.obs}, ipc.Options{
		AllowedUIDs: cfg.IPC.AllowedUIDs,
		AllowedGIDs: cfg.IPC.AllowedGIDs,
		MaxQueued:   cfg.IPC.MaxQueuedBytes,
		MaxConns:    cfg.IPC.MaxConnections,
		Log:         d.log.Named("ipc"),
		Hello:       func() []byte { return fmt.Appendf(nil, `{"node_id":%d,"version":%q}`, d.node, d.opt.Version) },
	})
	if err != nil {
		return err
	}
	d.ipcMu.Lock()
	d.ipc = srv
	d.ipcMu.Unlock()
	ringCtx, stopRing := context.WithCancel(context.Background())
	ringDone := make(chan error, 1)
	go func() { ringDone <- d.ring.Run(ringCtx, d.exec) }()
	ipcDone := make(chan error, 1)
	go func() { ipcDone <- srv.Serve() }()
	// The event log writes the log line.
	d.obs.events.Record(events.Daemon, "ringd started", events.Fields{"version": d.opt.Version,
		"socket": cfg.IPC.Socket, "cluster": cfg.Totem.ClusterName, "transport": cfg.Totem.Transport})
	stopHTTP := d.obs.serveHTTP(cfg.Metrics.Listen)
	defer stopHTTP()
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-ringDone:
		runErr = fmt.Errorf("ring stopped: %w", err)
		ringDone <- err
	case err := <-ipcDone:
		runErr = fmt.Errorf("ipc stopped: %w", err)
	}
	_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
	d.obs.events.Record(events.Daemon, "ringd stopping", nil)
	if d.crm != nil && runErr == nil {
		// Resources first (Pacemaker's shutdown-escalation bounds it
		// there; here ShutdownTimeout).
		sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		d.crm.shutdown(sctx)
		cancel()
	}
	d.log.Info("leaving the ring")
	if l, ok := d.quorum.(interface{ Leave() }); ok {
		// allow_downscale: tell the others this is a clean shutdown
		// before the ring goes (queued ahead of the leave).
		d.exec.Do(l.Leave)
	}
	leaveCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	if err := d.ring.Leave(leaveCtx); err != nil {
		d.log.Warn("graceful leave failed", zap.Error(err))
	}
	cancel()
	stopRing()
	<-ringDone
	_ = srv.Close()
	if d.crm != nil {
		d.crm.close()
		d.fence.close()
	}
	d.log.Info("ringd stopped")
	return runErr
}
