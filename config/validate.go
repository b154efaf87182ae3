package config

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Validate checks every field and every cross-field rule and returns all
// problems as Errors (nil when the configuration is usable).
func (c *Config) Validate() error {
	var errs Errors
	bad := func(key, format string, args ...any) {
		errs = append(errs, c.fieldErr(key, format, args...))
	}
	t := &c.Totem

	if t.ClusterName == "" {
		bad("totem.cluster_name", "must not be empty")
	} else if len(t.ClusterName) > 64 {
		bad("totem.cluster_name", "at most 64 bytes, got %d", len(t.ClusterName))
	}
	switch t.Transport {
	case "udp", "udpu":
	default:
		bad("totem.transport", `must be "udp" (multicast) or "udpu" (unicast), got %q`, t.Transport)
	}
	if t.Port < 1 || t.Port > 65535 {
		bad("totem.port", "must be 1-65535, got %d", t.Port)
	}
	if t.Transport == "udp" {
		// Either family: an IPv6 link uses an IPv4 group's IPv6 form
		// (LinkMcast), an IPv4 link needs an IPv4 group (checked per
		// link in validateLinks).
		a, err := netip.ParseAddr(t.McastAddr)
		if err != nil || a.Is4In6() || !a.IsMulticast() {
			bad("totem.mcast_addr", "must be an IPv4 multicast address (224.0.0.0/4) or an IPv6 one (ff00::/8), got %q", t.McastAddr)
		}
	}
	if t.TTL < 1 || t.TTL > 255 {
		bad("totem.ttl", "must be 1-255, got %d", t.TTL)
	}

	atLeast := func(key string, v, min int, unit string) {
		if v < min {
			bad(key, "must be at least %d%s, got %d", min, unit, v)
		}
	}
	atLeast("totem.token", t.Token, 10, " ms")
	atLeast("totem.token_coefficient", t.TokenCoefficient, 0, " ms")
	atLeast("totem.token_retransmits_before_loss_const", t.TokenRetransmitsBefore, 1, "")
	atLeast("totem.token_retransmit", t.TokenRetransmit, 0, " ms")
	atLeast("totem.hold", t.Hold, 0, " ms")
	atLeast("totem.join", t.Join, 1, " ms")
	atLeast("totem.send_join", t.SendJoin, 0, " ms")
	atLeast("totem.consensus", t.Consensus, 0, " ms")
	atLeast("totem.merge", t.Merge, 1, " ms")
	atLeast("totem.downcheck", t.Downcheck, 1, " ms")
	atLeast("totem.fail_recv_const", t.FailRecvConst, 1, "")
	atLeast("totem.seqno_unchanged_const", t.SeqnoUnchangedConst, 1, "")
	atLeast("totem.miss_count_const", t.MissCountConst, 1, "")
	atLeast("totem.window_size", t.WindowSize, 1, " messages")
	atLeast("totem.max_messages", t.MaxMessages, 1, " messages")
	if t.MaxMessages > t.WindowSize && t.WindowSize >= 1 {
		bad("totem.max_messages", "must not exceed window_size (%d), got %d", t.WindowSize, t.MaxMessages)
	}
	if t.NetMTU != 0 && (t.NetMTU < 576 || t.NetMTU > 65000) {
		bad("totem.netmtu", "must be 0 (the interface's MTU) or 576-65000 bytes, got %d", t.NetMTU)
	}
	if t.Token >= 10 && t.Consensus != 0 && t.Consensus < c.effectiveToken() {
		// corosync refuses a consensus shorter than the token: gather
		// would give up before a token loss is even noticed elsewhere.
		bad("totem.consensus", "must be at least the effective token (%d ms), got %d", c.effectiveToken(), t.Consensus)
	}
	switch t.CryptoCipher {
	case "aes256", "chacha20":
		if t.Keyfile == "" {
			bad("totem.keyfile", "must be set when crypto_cipher is %q", t.CryptoCipher)
		}
	case "none":
	default:
		bad("totem.crypto_cipher", `must be "aes256", "chacha20" or "none", got %q`, t.CryptoCipher)
	}

	c.validateNodes(bad)
	c.validateLinks(bad)
	c.validateQuorum(bad)

	if c.IPC.Socket == "" {
		bad("ipc.socket", "must not be empty")
	} else if len(c.IPC.Socket) > 107 {
		bad("ipc.socket", "a Unix socket path is at most 107 bytes, got %d", len(c.IPC.Socket))
	}
	for i, u := range c.IPC.AllowedUIDs {
		if u < 0 {
			bad("ipc.allowed_uids", "entry %d: uid must not be negative, got %d", i, u)
		}
	}
	for i, g := range c.IPC.AllowedGIDs {
		if g < 0 {
			bad("ipc.allowed_gids", "entry %d: gid must not be negative, got %d", i, g)
		}
	}
	if c.IPC.MaxQueuedBytes < 4<<20 {
		// A bound below a few of the largest frames (1 MiB) would
		// disconnect clients for one big event.
		bad("ipc.max_queued_bytes", "must be at least 4194304 (4 MiB), got %d", c.IPC.MaxQueuedBytes)
	}
	if c.IPC.MaxConnections < 0 {
		bad("ipc.max_connections", "must be 0 (derived from the descriptor limit) or positive, got %d", c.IPC.MaxConnections)
	}
	if c.System.StateDir == "" {
		bad("system.state_dir", "must not be empty")
	}
	switch c.Logging.Format {
	case "console", "json":
	default:
		bad("logging.format", `must be "console" or "json", got %q`, c.Logging.Format)
	}
	if l := c.Metrics.Listen; l != "" {
		if _, port, err := net.SplitHostPort(l); err != nil {
			bad("metrics.listen", `must be HOST:PORT (e.g. "127.0.0.1:9664") or "" to turn it off: %v`, err)
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad("metrics.listen", "port must be 0-65535, got %q", port)
		}
	}
	r := &c.Resources
	for _, kv := range [][2]string{{"resources.ocf_root", r.OCFRoot},
		{"resources.init_dir", r.InitDir}, {"resources.fence_agent_dir", r.FenceAgentDir}} {
		if kv[1] == "" {
			bad(kv[0], "must not be empty")
		}
	}
	if r.MaxPEInputs < 1 || r.MaxPEInputs > 1000000 {
		bad("resources.max_pe_inputs", "must be 1-1000000, got %d", r.MaxPEInputs)
	}
	if r.StartupWait < 0 || r.StartupWait > 3600000 {
		bad("resources.startup_wait", "must be 0-3600000 (ms), got %d", r.StartupWait)
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func (c *Config) validateNodes(bad func(key, format string, args ...any)) {
	if len(c.Nodes) == 0 {
		bad("node", "at least one [[node]] is required")
		return
	}
	ids := map[int]int{}
	names := map[string]int{}
	addrs := map[netip.AddrPort]int{}
	six, of := c.linkFamily(0)
	for i := range c.Nodes {
		n := &c.Nodes[i]
		k := func(f string) string { return "node[" + strconv.Itoa(i) + "]." + f }
		if n.NodeID < 1 || n.NodeID > 0x7fffffff {
			bad(k("nodeid"), "must be 1-2147483647, got %d", n.NodeID)
		} else if j, dup := ids[n.NodeID]; dup {
			bad(k("nodeid"), "%d is also the nodeid of node[%d]", n.NodeID, j)
		} else {
			ids[n.NodeID] = i
		}
		if n.Name == "" {
			n.Name = "node" + strconv.Itoa(n.NodeID)
		} else if j, dup := names[n.Name]; dup {
			bad(k("name"), "%q is also the name of node[%d]", n.Name, j)
		}
		names[n.Name] = i
		if n.Ring0Addr == "" {
			bad(k("ring0_addr"), "must be set")
		} else if ap, err := c.NodeAddr(n); err != nil {
			bad(k("ring0_addr"), "%v", err)
		} else if why := checkRingAddr(n.Ring0Addr, ap, six, of); why != "" {
			bad(k("ring0_addr"), "%s", why)
		} else if j, dup := addrs[ap]; dup {
			bad(k("ring0_addr"), "%s is also the address of node[%d]", ap, j)
		} else {
			addrs[ap] = i
		}
		if n.QuorumVotes != nil && (*n.QuorumVotes < 0 || *n.QuorumVotes > 255) {
			bad(k("quorum_votes"), "must be 0-255, got %d", *n.QuorumVotes)
		}
	}
}

// validateQuorum rejects the option combinations corosync's votequorum
// rejects.
func (c *Config) validateQuorum(bad func(key, format string, args ...any)) {
	q := &c.Quorum
	switch q.Provider {
	case "votequorum", "":
	default:
		bad("quorum.provider", `must be "votequorum", got %q`, q.Provider)
	}
	if q.ExpectedVotes < 0 {
		bad("quorum.expected_votes", "must not be negative, got %d", q.ExpectedVotes)
	}
	if q.LastManStandingWindow < 1 {
		bad("quorum.last_man_standing_window", "must be at least 1 ms, got %d", q.LastManStandingWindow)
	}
	if q.TwoNode && q.AutoTieBreaker {
		bad("quorum.two_node", "two_node and auto_tie_breaker cannot be used together (corosync disables two_node)")
	}
	if q.TwoNode && len(c.Nodes) > 2 {
		bad("quorum.two_node", "two_node needs exactly 2 nodes, the node list has %d", len(c.Nodes))
	}
	if q.AllowDownscale && q.TwoNode {
		bad("quorum.allow_downscale", "allow_downscale cannot be used with two_node")
	}
	if q.AutoTieBreaker && q.LastManStanding && !q.WaitForAllEffective() {
		votes := 0
		for i := range c.Nodes {
			votes += c.Nodes[i].Votes()
		}
		if votes%2 == 1 {
			// corosync refuses to start: a half+1 restarting without the
			// tie-breaker node could win, and LMS would make it stick.
			bad("quorum.auto_tie_breaker", "auto_tie_breaker with last_man_standing on an odd number of votes (%d) needs wait_for_all", votes)
		}
	}
	if q.AutoTieBreaker {
		switch q.AutoTieBreakerNode {
		case "lowest", "highest":
		default:
			for _, f := range strings.Fields(q.AutoTieBreakerNode) {
				id, err := strconv.Atoi(f)
				if err != nil || id < 1 {
					bad("quorum.auto_tie_breaker_node", `must be "lowest", "highest" or a list of node ids, got %q`, q.AutoTieBreakerNode)
					break
				}
				if c.NodeByID(id) == nil {
					bad("quorum.auto_tie_breaker_node", "node %d is not in the node list", id)
				}
			}
		}
	}
}
