package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"ringmaster/config"
	"ringmaster/totem"
	"ringmaster/totem/link"
	"ringmaster/totem/ring"
	"ringmaster/totem/srp"
)

// totemDriver adapts totem/ring to RingDriver: the ring was built with the
// executive as its Events, so Run ignores the argument.
type totemDriver struct{ *ring.Ring }

func (r totemDriver) Run(ctx context.Context, _ totem.Events) error { return r.Ring.Run(ctx) }

// newRing builds the Totem ring for this node from the configuration and
// its keys (config.LoadKeys): every configured node is a peer (udpu sends
// to all of them, so a node that is down is found again when it returns).
func newRing(cfg *config.Config, keys [][]byte, node totem.NodeID, ev totem.Events, log *zap.Logger, onLinkChange func(ring.LinkChange)) (RingDriver, error) {
	peers, err := ringPeers(cfg)
	if err != nil {
		return nil, err
	}
	bind := peers[node]
	rc := ring.Config{
		Node:        node,
		ClusterName: cfg.Totem.ClusterName,
		Transport:   cfg.Totem.Transport,
		Bind:        bind,
		Peers:       peers,
		Timings:     TimingsFrom(cfg.Effective()),
		NetMTU:      cfg.Totem.NetMTU,
		Cipher:      cfg.Totem.CryptoCipher,
		Keys:        keys,
		StateDir:    cfg.System.StateDir,
	}
	if rc.Mcast, rc.TTL, err = link0Transport(cfg); err != nil {
		return nil, err
	}
	if len(cfg.Links()) > 1 {
		if rc.Links, err = RingLinks(cfg, node); err != nil {
			return nil, err
		}
		rc.LinkSettings, err = linkSettings(cfg)
		if err != nil {
			return nil, err
		}
		rc.LinkSettings.OnChange = onLinkChange
	}
	r, err := ring.New(rc, ev, log.Named("totem"))
	if err != nil {
		return nil, fmt.Errorf("ring: %w", err)
	}
	return totemDriver{r}, nil
}

// ringPeers is every configured node's link-0 address (cfg.NodeAddr).
func ringPeers(cfg *config.Config) (map[totem.NodeID]netip.AddrPort, error) {
	peers := make(map[totem.NodeID]netip.AddrPort, len(cfg.Nodes))
	for i := range cfg.Nodes {
		n := &cfg.Nodes[i]
		ap, err := cfg.NodeAddr(n)
		if err != nil {
			return nil, err
		}
		peers[totem.NodeID(n.NodeID)] = ap
	}
	return peers, nil
}

// link0Transport is link 0's multicast group (transport udp; the zero
// AddrPort for udpu) and TTL as the configuration resolves them
// (config.LinkMcast, LinkTTL): a [[totem.interface]] with linknumber 0
// overrides totem.mcast_addr and ttl on a single-link ring as on a
// multi-link one, so ringd joins the group that --check reports.
func link0Transport(cfg *config.Config) (netip.AddrPort, int, error) {
	ttl := cfg.LinkTTL(0)
	if cfg.Totem.Transport != "udp" {
		return netip.AddrPort{}, ttl, nil
	}
	g, err := cfg.LinkMcast(0)
	if err != nil {
		return netip.AddrPort{}, 0, fmt.Errorf("link 0: %w", err)
	}
	return g, ttl, nil
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

// RingLinks builds the ring's links from the node list (ring0_addr …
// ring7_addr, [[totem.interface]]): every node's address on every link,
// and for udp each link's group. A reload that changes the node list of a
// multi-link ring passes the result to ring.SetLinks.
func RingLinks(cfg *config.Config, node totem.NodeID) ([]ring.Link, error) {
	var links []ring.Link
	for _, k := range cfg.Links() {
		l := ring.Link{Number: uint8(k), Peers: map[totem.NodeID]netip.AddrPort{}, TTL: cfg.LinkTTL(k), Priority: cfg.LinkPriority(k)}
		for i := range cfg.Nodes {
			n := &cfg.Nodes[i]
			ap, err := cfg.NodeLinkAddr(n, k)
			if err != nil {
				return nil, fmt.Errorf("node %d ring%d_addr: %w", n.NodeID, k, err)
			}
			l.Peers[totem.NodeID(n.NodeID)] = ap
			if totem.NodeID(n.NodeID) == node {
				l.Bind = ap
			}
		}
		if cfg.Totem.Transport == "udp" {
			g, err := cfg.LinkMcast(k)
			if err != nil {
				return nil, fmt.Errorf("link %d: %w", k, err)
			}
			l.Mcast = g
		}
		links = append(links, l)
	}
	return links, nil
}

// linkSettings are the heartbeat settings of totem (0: derived by the
// ring from the effective token, see link.Derive).
func linkSettings(cfg *config.Config) (ring.LinkSettings, error) {
	m, err := link.ParseMode(cfg.Totem.LinkMode)
	if err != nil {
		return ring.LinkSettings{}, err
	}
	ms := func(v int) time.Duration { return time.Duration(v) * time.Millisecond }
	return ring.LinkSettings{Mode: m, PingInterval: ms(cfg.Totem.KnetPingInterval), PingTimeout: ms(cfg.Totem.KnetPingTimeout),
		PongCount: cfg.Totem.KnetPongCount}, nil
}
