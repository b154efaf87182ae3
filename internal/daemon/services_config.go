package daemon

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"ringmaster/confdb"
	cdbwire "ringmaster/confdb/wire"
	"ringmaster/config"
	"ringmaster/ipc"
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

// ConfigEntries are the keys a node starts with, named as corosync names
// them in cmap:
//
//	totem.*                  the [totem] section
//	nodelist.node.N.*        node N of the list (N = index): nodeid, name,
//	                         ring0_addr, quorum_votes (when set)
//	nodelist.local_node_pos  the local node's index
//	quorum.*                 the [quorum] section (provider, expected_votes
//	                         when set, the feature flags as u8 0/1)
//	logging.*                the [logging] section (corosync's yes/no, on/off)
//	runtime.config.totem.*   the effective totem values (config.Effective),
//	                         e.g. token = token + (nodes-2)·token_coefficient
//
// Integers are u32 (ports u16, ttl u8, flags u8), as in corosync.
func ConfigEntries(cfg *config.Config, local totem.NodeID) []cdbwire.Entry {
	var out []cdbwire.Entry
	add := func(k string, v cdbwire.Value) { out = append(out, cdbwire.Entry{Key: k, Value: v}) }
	u32 := func(v int) cdbwire.Value { return cdbwire.U32(uint32(max(v, 0))) }
	yesno := func(b bool, yes, no string) cdbwire.Value {
		if b {
			return cdbwire.String(yes)
		}
		return cdbwire.String(no)
	}
	t := &cfg.Totem
	add("totem.cluster_name", cdbwire.String(t.ClusterName))
	add("totem.transport", cdbwire.String(t.Transport))
	add("totem.port", cdbwire.U16(uint16(t.Port)))
	if t.Transport == "udp" {
		add("totem.mcast_addr", cdbwire.String(t.McastAddr))
	}
	add("totem.ttl", cdbwire.U8(uint8(t.TTL)))
	for _, f := range []struct {
		name string
		v    int
	}{
		{"token", t.Token}, {"token_coefficient", t.TokenCoefficient},
		{"token_retransmits_before_loss_const", t.TokenRetransmitsBefore},
		{"token_retransmit", t.TokenRetransmit}, {"hold", t.Hold}, {"join", t.Join},
		{"send_join", t.SendJoin}, {"consensus", t.Consensus}, {"merge", t.Merge},
		{"downcheck", t.Downcheck}, {"fail_recv_const", t.FailRecvConst},
		{"seqno_unchanged_const", t.SeqnoUnchangedConst}, {"miss_count_const", t.MissCountConst},
		{"window_size", t.WindowSize}, {"max_messages", t.MaxMessages}, {"netmtu", t.NetMTU},
	} {
		add("totem."+f.name, u32(f.v))
	}
	add("totem.crypto_cipher", cdbwire.String(t.CryptoCipher))
	if t.CryptoCipher != "none" && t.Keyfile != "" {
		add("totem.keyfile", cdbwire.String(t.Keyfile))
	}
	if len(t.PreviousKeyfiles) > 0 {
		add("totem.previous_keyfiles", cdbwire.String(strings.Join(t.PreviousKeyfiles, " ")))
	}

	for i := range cfg.Nodes {
		n := &cfg.Nodes[i]
		p := "nodelist.node." + strconv.Itoa(i) + "."
		add(p+"nodeid", u32(n.NodeID))
		if n.Name != "" {
			add(p+"name", cdbwire.String(n.Name))
		}
		add(p+"ring0_addr", cdbwire.String(n.Ring0Addr))
		for k := 1; k < config.MaxLinks; k++ {
			if a := n.RingAddr(k); a != "" {
				add(p+"ring"+strconv.Itoa(k)+"_addr", cdbwire.String(a))
			}
		}
		if n.QuorumVotes != nil {
			add(p+"quorum_votes", u32(*n.QuorumVotes))
		}
		if totem.NodeID(n.NodeID) == local {
			add("nodelist.local_node_pos", u32(i))
		}
	}

	q := &cfg.Quorum
	provider := q.Provider
	if provider == "" {
		provider = "votequorum"
	}
	add("quorum.provider", cdbwire.String(provider))
	if q.ExpectedVotes > 0 {
		add("quorum.expected_votes", u32(q.ExpectedVotes))
	}
	add("quorum.two_node", cdbwire.Bool(q.TwoNode))
	add("quorum.wait_for_all", cdbwire.Bool(q.WaitForAllEffective()))
	add("quorum.last_man_standing", cdbwire.Bool(q.LastManStanding))
	add("quorum.last_man_standing_window", u32(q.LastManStandingWindow))
	add("quorum.auto_tie_breaker", cdbwire.Bool(q.AutoTieBreaker))
	if q.AutoTieBreaker {
		add("quorum.auto_tie_breaker_node", cdbwire.String(q.AutoTieBreakerNode))
	}
	add("quorum.allow_downscale", cdbwire.Bool(q.AllowDownscale))

	l := &cfg.Logging
	add("logging.to_stderr", yesno(l.ToStderr, "yes", "no"))
	add("logging.to_logfile", yesno(l.Logfile != "", "yes", "no"))
	if l.Logfile != "" {
		add("logging.logfile", cdbwire.String(l.Logfile))
	}
	add("logging.debug", yesno(l.Debug, "on", "off"))
	add("logging.to_syslog", yesno(l.ToSyslog, "yes", "no"))
	add("logging.to_journald", yesno(l.ToJournald, "yes", "no"))
	add("logging.format", cdbwire.String(l.Format))

	for _, f := range cfg.Effective().Fields() {
		add("runtime.config.totem."+f.Name, cdbwire.U32(uint32(max(f.Value, 0))))
	}

	add("ipc.max_queued_bytes", cdbwire.U64(uint64(max(cfg.IPC.MaxQueuedBytes, 0))))
	add("ipc.max_connections", u32(cfg.IPC.MaxConnections))
	// The limit in effect: 0 in the file means derived from the
	// descriptor limit (ipc.DefaultMaxConns).
	add("runtime.config.ipc.max_connections", u32(effectiveMaxConns(cfg)))
	return out
}

// effectiveMaxConns is the connection limit the IPC server applies.
func effectiveMaxConns(cfg *config.Config) int {
	if cfg.IPC.MaxConnections > 0 {
		return cfg.IPC.MaxConnections
	}
	return ipc.DefaultMaxConns()
}

// ConfdbConfig builds confdb's configuration for node local: the keys it
// starts with (ConfigEntries) and the nodes' ring addresses for
// runtime.members.N.ip; src feeds the live stats.* keys.
func ConfdbConfig(c *config.Config, local totem.NodeID, src confdb.Sources) confdb.Config {
	addrs := map[totem.NodeID]netip.Addr{}
	for i := range c.Nodes {
		if ap, err := c.NodeAddr(&c.Nodes[i]); err == nil {
			addrs[totem.NodeID(c.Nodes[i].NodeID)] = ap.Addr()
		}
	}
	return confdb.Config{Entries: ConfigEntries(c, local), Addrs: addrs, Sources: src}
}
