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

	"ringmaster/config"
	"ringmaster/cpg"
	"ringmaster/ipc"
	"ringmaster/totem"
	"ringmaster/totem/exec"
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
	OnReloadLogging func(config.Logging)
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

	cfgMu sync.RWMutex
	cfg   *config.Config

	exec   *exec.Executive
	ring   RingDriver
	ipcMu  sync.Mutex
	ipc    *ipc.Server
	quorum Quorate
}

// ErrConfig wraps configuration problems found at start.
var ErrConfig = errors.New("configuration")

// New loads the configuration, finds the local node and builds (but does
// not start) the node.
func New(opt Options) (*Daemon, error) {
	cfg, err := config.Load(opt.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if opt.Socket != "" {
		cfg.IPC.Socket = opt.Socket
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
	if err := os.MkdirAll(cfg.System.StateDir, 0o750); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	// The ring delivers to the executive, and the executive sends on the
	// ring: build the executive first, then give it the ring.
	d.exec = exec.New(d.node, nil, d.log)
	ring, err := newRing(cfg, d.node, d.exec, d.log)
	if err != nil {
		return nil, err
	}
	d.ring = ring
	d.exec.SetRing(ring)
	if err := d.registerServices(); err != nil {
		return nil, err
	}
	return d, nil
}

// registerServices adds every service of a node, in delivery order. Each
// service is one line here; keep them in service-ID order.
func (d *Daemon) registerServices() error {
	q := d.newQuorum()
	d.quorum = q
	for _, s := range []exec.Service{
		cpg.New(),
		q,
		d.newConfdb(q),
		&statusService{d: d, start: time.Now()},
	} {
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
	srv, err := ipc.Listen(cfg.IPC.Socket, d.exec, ipc.Options{
		AllowedUIDs: cfg.IPC.AllowedUIDs,
		AllowedGIDs: cfg.IPC.AllowedGIDs,
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
	d.log.Info("ringd started", zap.String("socket", cfg.IPC.Socket), zap.String("cluster", cfg.Totem.ClusterName), zap.String("transport", cfg.Totem.Transport))
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
	d.log.Info("ringd stopped")
	return runErr
}

// Reload re-reads the configuration file. A file that fails validation is
// rejected (logged, returned) and the running configuration stays.
func (d *Daemon) Reload() error {
	cfg, err := config.Load(d.opt.ConfigPath)
	if err != nil {
		d.log.Error("reload rejected: the running configuration stays", zap.Error(err))
		return err
	}
	old := d.Config()
	if d.opt.Socket != "" {
		cfg.IPC.Socket = d.opt.Socket
	}
	if n := cfg.NodeByID(int(d.node)); n == nil {
		err := fmt.Errorf("reload rejected: node %d is no longer in the node list", d.node)
		d.log.Error(err.Error())
		return err
	}
	keys, err := loadKeys(cfg)
	if err != nil {
		d.log.Error("reload rejected: the running configuration stays", zap.Error(err))
		return err
	}
	if err := d.ring.SetKeys(keys); err != nil {
		d.log.Error("reload: new keys refused", zap.Error(err))
		return err
	}
	if srv := d.ipcServer(); srv != nil {
		srv.SetAllowed(cfg.IPC.AllowedUIDs, cfg.IPC.AllowedGIDs)
	}
	if d.opt.OnReloadLogging != nil {
		d.opt.OnReloadLogging(cfg.Logging)
	}
	for _, w := range restartOnly(old, cfg) {
		d.log.Warn("reload: this change takes effect only after a restart", zap.String("key", w))
	}
	d.cfgMu.Lock()
	d.cfg = cfg
	d.cfgMu.Unlock()
	d.log.Info("configuration reloaded")
	return nil
}

// restartOnly lists changed keys that a reload cannot apply.
func restartOnly(a, b *config.Config) []string {
	var out []string
	if a.Totem.Transport != b.Totem.Transport {
		out = append(out, "totem.transport")
	}
	if a.Totem.Port != b.Totem.Port {
		out = append(out, "totem.port")
	}
	if a.Totem.ClusterName != b.Totem.ClusterName {
		out = append(out, "totem.cluster_name")
	}
	if a.Effective() != b.Effective() {
		out = append(out, "totem timings")
	}
	if a.IPC.Socket != b.IPC.Socket {
		out = append(out, "ipc.socket")
	}
	if a.System.StateDir != b.System.StateDir {
		out = append(out, "system.state_dir")
	}
	return out
}
