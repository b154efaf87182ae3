package daemon

import (
	"context"
	"fmt"
	"net/netip"

	"go.uber.org/zap"

	"ringmaster/config"
	"ringmaster/totem"
	"ringmaster/totem/ring"
	"ringmaster/totem/srp"
)

// loadKeys reads the keyfile (the encrypting key) and the previous
// keyfiles (still accepted) named by the configuration, with the checks
// `ringd --check` makes (config.LoadKeys).
func loadKeys(cfg *config.Config) ([][]byte, error) { return cfg.LoadKeys() }

// totemDriver adapts totem/ring to RingDriver: the ring was built with the
// executive as its Events, so Run ignores the argument.
type totemDriver struct{ *ring.Ring }

func (r totemDriver) Run(ctx context.Context, _ totem.Events) error { return r.Ring.Run(ctx) }

// newRing builds the Totem ring for this node from the configuration:
// every configured node is a peer (udpu sends to all of them, so a node that
// is down is found again when it returns).
func newRing(cfg *config.Config, node totem.NodeID, ev totem.Events, log *zap.Logger) (RingDriver, error) {
	keys, err := loadKeys(cfg)
	for _, w := range cfg.Warnings() {
		log.Warn(w)
	}
	if err != nil {
		return nil, err
	}
	peers := map[totem.NodeID]netip.AddrPort{}
	var bind netip.AddrPort
	for i := range cfg.Nodes {
		n := &cfg.Nodes[i]
		ap, err := cfg.NodeAddr(n)
		if err != nil {
			return nil, err
		}
		peers[totem.NodeID(n.NodeID)] = ap
		if totem.NodeID(n.NodeID) == node {
			bind = ap
		}
	}
	rc := ring.Config{
		Node:        node,
		ClusterName: cfg.Totem.ClusterName,
		Transport:   cfg.Totem.Transport,
		Bind:        bind,
		Peers:       peers,
		TTL:         cfg.Totem.TTL,
		Timings:     TimingsFrom(cfg.Effective()),
		NetMTU:      cfg.Totem.NetMTU,
		Cipher:      cfg.Totem.CryptoCipher,
		Keys:        keys,
		StateDir:    cfg.System.StateDir,
	}
	if cfg.Totem.Transport == "udp" {
		m, err := netip.ParseAddr(cfg.Totem.McastAddr)
		if err != nil {
			return nil, fmt.Errorf("totem.mcast_addr: %w", err)
		}
		rc.Mcast = netip.AddrPortFrom(m, uint16(cfg.Totem.Port))
	}
	r, err := ring.New(rc, ev, log.Named("totem"))
	if err != nil {
		return nil, fmt.Errorf("ring: %w", err)
	}
	return totemDriver{r}, nil
}

// TimingsFrom converts the effective configuration timings to srp's (the
// ring takes srp.Timings, not the daemon's configuration schema).
func TimingsFrom(e config.Effective) srp.Timings {
	return srp.Timings{
		Token:                  e.Token,
		TokenRetransmit:        e.TokenRetransmit,
		Hold:                   e.Hold,
		Join:                   e.Join,
		SendJoin:               e.SendJoin,
		Consensus:              e.Consensus,
		Merge:                  e.Merge,
		Downcheck:              e.Downcheck,
		TokenRetransmitsBefore: e.TokenRetransmitsBefore,
		FailRecvConst:          e.FailRecvConst,
		SeqnoUnchangedConst:    e.SeqnoUnchangedConst,
		MissCountConst:         e.MissCountConst,
		WindowSize:             e.WindowSize,
		MaxMessages:            e.MaxMessages,
	}
}
