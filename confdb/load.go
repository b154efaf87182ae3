package confdb

import (
	"strconv"
	"strings"

	"ringmaster/config"
	"ringmaster/totem"
)

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
func ConfigEntries(cfg *config.Config, local totem.NodeID) []Entry {
	var out []Entry
	add := func(k string, v Value) { out = append(out, Entry{k, v}) }
	u32 := func(v int) Value { return U32(uint32(max(v, 0))) }
	yesno := func(b bool, yes, no string) Value {
		if b {
			return String(yes)
		}
		return String(no)
	}
	t := &cfg.Totem
	add("totem.cluster_name", String(t.ClusterName))
	add("totem.transport", String(t.Transport))
	add("totem.port", U16(uint16(t.Port)))
	if t.Transport == "udp" {
		add("totem.mcast_addr", String(t.McastAddr))
	}
	add("totem.ttl", U8(uint8(t.TTL)))
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
	add("totem.crypto_cipher", String(t.CryptoCipher))
	if t.CryptoCipher != "none" && t.Keyfile != "" {
		add("totem.keyfile", String(t.Keyfile))
	}
	if len(t.PreviousKeyfiles) > 0 {
		add("totem.previous_keyfiles", String(strings.Join(t.PreviousKeyfiles, " ")))
	}

	for i := range cfg.Nodes {
		n := &cfg.Nodes[i]
		p := "nodelist.node." + strconv.Itoa(i) + "."
		add(p+"nodeid", u32(n.NodeID))
		if n.Name != "" {
			add(p+"name", String(n.Name))
		}
		add(p+"ring0_addr", String(n.Ring0Addr))
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
	add("quorum.provider", String(provider))
	if q.ExpectedVotes > 0 {
		add("quorum.expected_votes", u32(q.ExpectedVotes))
	}
	add("quorum.two_node", Bool(q.TwoNode))
	add("quorum.wait_for_all", Bool(q.WaitForAllEffective()))
	add("quorum.last_man_standing", Bool(q.LastManStanding))
	add("quorum.last_man_standing_window", u32(q.LastManStandingWindow))
	add("quorum.auto_tie_breaker", Bool(q.AutoTieBreaker))
	if q.AutoTieBreaker {
		add("quorum.auto_tie_breaker_node", String(q.AutoTieBreakerNode))
	}
	add("quorum.allow_downscale", Bool(q.AllowDownscale))

	l := &cfg.Logging
	add("logging.to_stderr", yesno(l.ToStderr, "yes", "no"))
	add("logging.to_logfile", yesno(l.Logfile != "", "yes", "no"))
	if l.Logfile != "" {
		add("logging.logfile", String(l.Logfile))
	}
	add("logging.debug", yesno(l.Debug, "on", "off"))

	for _, f := range cfg.Effective().Fields() {
		add("runtime.config.totem."+f.Name, U32(uint32(max(f.Value, 0))))
	}
	return out
}
