// Package agents wires the standard agent classes into an lrmd.Registry:
// ocf (scripts under OCF_ROOT), lsb (init scripts) and the builtin Go
// agents vip, lvs-realserver, lvs and dummy. Both the lrmd daemon and `ringctl
// agent` use it, so an agent behaves the same in both.
package agents

import (
	"fmt"

	"ringmaster/lrmd"
	"ringmaster/lrmd/agents/dummy"
	"ringmaster/lrmd/agents/lsb"
	"ringmaster/lrmd/agents/lvs"
	"ringmaster/lrmd/agents/lvs/ipvs"
	"ringmaster/lrmd/agents/lvs/nft"
	"ringmaster/lrmd/agents/ocf"
	"ringmaster/lrmd/agents/vip"
	"ringmaster/lrmd/internal/netnsx"
)

// Config locates agents and runtime state. Zero values mean the standard
// paths.
type Config struct {
	OCFRoot string // default /usr/lib/ocf
	InitDir string // default /etc/init.d
	RunDir  string // default /run/ringmaster
	// Persistent: the registry serves a long-running lrmd (health checks
	// keep running after start). False for one-shot CLI use.
	Persistent bool
	// Log receives background events of builtin agents (health changes).
	Log func(format string, args ...any)
	// OCFEnv is added to every OCF agent's environment ("NAME=value"):
	// ringd gives each node its own HA_RSCTMP, and the socket and
	// HA_SBIN_DIR that crm_attribute and friends need.
	OCFEnv []string
}

// LVSBackends returns the LVS backends in "auto" preference order: the
// kernel IPVS when present (it has every scheduler and method), else
// nftables.
func LVSBackends() []lvs.BackendFactory {
	return []lvs.BackendFactory{
		{Name: "ipvs", Open: func() (lvs.Backend, error) { return ipvs.Open("", nil) }},
		{Name: "nftables", Open: func() (lvs.Backend, error) { return nft.New() }},
	}
}

// NewRegistry builds the registry of all classes. Close it (Registry.Close)
// to wait for background ARP announcements and stop health checks.
func NewRegistry(cfg Config) (*lrmd.Registry, error) {
	k, err := vip.NewKernel(netnsx.None())
	if err != nil {
		return nil, fmt.Errorf("builtin agents: %w", err)
	}
	builtins := lrmd.NewBuiltins(
		vip.New(k),
		vip.NewRealServer(k),
		lvs.New(lvs.Config{Backends: LVSBackends(), RunDir: cfg.RunDir, Persistent: cfg.Persistent, Log: cfg.Log}),
		dummy.New(cfg.RunDir),
	)
	return lrmd.NewRegistry(ocf.New(cfg.OCFRoot, ocf.WithEnv(cfg.OCFEnv...)), lsb.New(cfg.InitDir), builtins), nil
}
