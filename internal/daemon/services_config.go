package daemon

import (
	"time"

	"ringmaster/config"
	"ringmaster/totem"
	"ringmaster/votequorum"
	"ringmaster/votequorum/calc"
)

// The services take their own option structs and never import config (the
// TOML schema); these adapters are the one place that translates
// corosync.toml into them.

// QuorumOptions translates [quorum] and the node list into votequorum's
// calculator options.
func QuorumOptions(c *config.Config) (calc.Options, error) {
	q := &c.Quorum
	o := calc.Options{
		ExpectedVotes:         uint32(max(q.ExpectedVotes, 0)),
		TwoNode:               q.TwoNode,
		WaitForAll:            q.WaitForAllEffective(),
		LastManStanding:       q.LastManStanding,
		LastManStandingWindow: time.Duration(q.LastManStandingWindow) * time.Millisecond,
		AllowDownscale:        q.AllowDownscale,
	}
	for i := range c.Nodes {
		n := &c.Nodes[i]
		o.Nodes = append(o.Nodes, calc.NodeVotes{ID: totem.NodeID(n.NodeID), Votes: uint32(n.Votes())})
	}
	if q.AutoTieBreaker {
		mode, list, err := calc.ParseTieBreaker(q.AutoTieBreakerNode)
		if err != nil {
			return calc.Options{}, err
		}
		o.AutoTieBreaker, o.TieBreakerNodes = mode, list
	}
	return o, nil
}

// QuorumConfig builds votequorum's configuration for node local: the
// options, the node names and state_dir.
func QuorumConfig(c *config.Config, local totem.NodeID) (votequorum.Config, error) {
	opt, err := QuorumOptions(c)
	if err != nil {
		return votequorum.Config{}, err
	}
	names := map[totem.NodeID]string{}
	for _, n := range c.Nodes {
		names[totem.NodeID(n.NodeID)] = n.Name
	}
	return votequorum.Config{Options: opt, Local: local, Names: names, StateDir: c.System.StateDir}, nil
}
