// Package config loads and validates corosync.toml, the one configuration
// file of a ringmaster node, and computes the effective (derived) totem
// timings in one place.
//
// Loading is strict: unknown keys, wrong types and invalid values are errors
// that name the file, the line and the key ("n1.toml:7: totem.token: must be
// at least 10 ms, got 0"), and every problem is reported at once.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultPort is the UDP port of every node unless totem.port or a node's
// ring0_addr says otherwise (corosync's mcastport).
const DefaultPort = 5405

// Config is the whole corosync.toml.
type Config struct {
	Totem   Totem   `toml:"totem"`
	Nodes   []Node  `toml:"node"`
	Quorum  Quorum  `toml:"quorum"`
	Logging Logging `toml:"logging"`
	IPC     IPC     `toml:"ipc"`
	System  System  `toml:"system"`
	Metrics Metrics `toml:"metrics"`
	// Resources configures the resource manager (controller, local
	// resource manager, fencer).
	Resources Resources `toml:"resources"`

	// Path is the file the configuration was loaded from ("" when built in
	// code); errors name it.
	Path string `toml:"-"`
	// lines maps dotted keys ("totem.token", "node.1.nodeid") to the line
	// they were set on, for error messages.
	lines map[string]int
}

// Totem holds the ring's settings. Timings are in milliseconds and keep
// corosync's names so operators can carry their knowledge over; 0 in a
// derived timing (consensus, token_retransmit, hold) means "derive it".
type Totem struct {
	ClusterName string `toml:"cluster_name"`
	// Transport is "udpu" (one unicast per member) or "udp" (multicast),
	// over IPv4 or IPv6 links (the family of a link's addresses).
	Transport string `toml:"transport"`
	Port      int    `toml:"port"`
	// McastAddr is link 0's group (udp) and the base of the others'
	// (LinkMcast): IPv4 or IPv6; an IPv6 link derives its group from an
	// IPv4 one (McastAddr6).
	McastAddr string `toml:"mcast_addr"`
	// TTL of multicast datagrams; 1 keeps the ring on the local segment.
	TTL int `toml:"ttl"`

	Token                  int `toml:"token"`
	TokenCoefficient       int `toml:"token_coefficient"`
	TokenRetransmitsBefore int `toml:"token_retransmits_before_loss_const"`
	TokenRetransmit        int `toml:"token_retransmit"`
	Hold                   int `toml:"hold"`
	Join                   int `toml:"join"`
	SendJoin               int `toml:"send_join"`
	Consensus              int `toml:"consensus"`
	Merge                  int `toml:"merge"`
	Downcheck              int `toml:"downcheck"`
	FailRecvConst          int `toml:"fail_recv_const"`
	SeqnoUnchangedConst    int `toml:"seqno_unchanged_const"`
	MissCountConst         int `toml:"miss_count_const"`
	WindowSize             int `toml:"window_size"`
	MaxMessages            int `toml:"max_messages"`
	NetMTU                 int `toml:"netmtu"`

	// CryptoCipher is "aes256" (AES-256-GCM), "chacha20"
	// (ChaCha20-Poly1305) or "none" (only when explicitly set).
	CryptoCipher string `toml:"crypto_cipher"`
	// Keyfile holds the key that encrypts; PreviousKeyfiles are still
	// accepted for decryption, so a key can be rotated by reload.
	Keyfile          string   `toml:"keyfile"`
	PreviousKeyfiles []string `toml:"previous_keyfiles"`

	// LinkMode is the policy of redundant links (ring1_addr … in the
	// nodes): "passive" (the healthy link of highest link_priority
	// carries everything) or "active" (healthy links take turns).
	LinkMode string `toml:"link_mode"`
	// Heartbeats of redundant links (knet's names), in ms; 0 derives
	// them from the effective token (see Effective).
	KnetPingInterval int `toml:"knet_ping_interval"`
	KnetPingTimeout  int `toml:"knet_ping_timeout"`
	KnetPongCount    int `toml:"knet_pong_count"`
	// Interfaces are per-link settings ([[totem.interface]], as
	// corosync's interface {} blocks), optional.
	Interfaces []Interface `toml:"interface"`
}

// Interface is one [[totem.interface]]: the settings of link linknumber.
type Interface struct {
	LinkNumber int `toml:"linknumber"`
	// McastAddr and Port of the link's multicast group (udp), and the
	// port of its addresses without one (default: totem.port; the group
	// defaults to totem.mcast_addr plus the link number in its last
	// byte, so that every link has its own group; see LinkMcast for IPv6
	// links). The group has the family of the link's addresses.
	McastAddr string `toml:"mcast_addr"`
	Port      int    `toml:"port"`
	TTL       int    `toml:"ttl"`
	// LinkPriority: passive mode prefers the healthy link with the
	// highest (knet_link_priority; default 1).
	LinkPriority *int `toml:"link_priority"`
}

// Node is one [[node]] entry of the node list.
type Node struct {
	NodeID    int    `toml:"nodeid"`
	Name      string `toml:"name"`
	Ring0Addr string `toml:"ring0_addr"`
	// Ring1Addr … Ring7Addr are the node's addresses on redundant links
	// 1 … 7 (every node must have the same links).
	Ring1Addr string `toml:"ring1_addr"`
	Ring2Addr string `toml:"ring2_addr"`
	Ring3Addr string `toml:"ring3_addr"`
	Ring4Addr string `toml:"ring4_addr"`
	Ring5Addr string `toml:"ring5_addr"`
	Ring6Addr string `toml:"ring6_addr"`
	Ring7Addr string `toml:"ring7_addr"`
	// QuorumVotes defaults to 1; 0 is allowed (a node that never counts).
	QuorumVotes *int `toml:"quorum_votes"`
}

// Quorum holds votequorum's options (corosync names and semantics).
type Quorum struct {
	Provider      string `toml:"provider"`
	ExpectedVotes int    `toml:"expected_votes"`
	TwoNode       bool   `toml:"two_node"`
	// WaitForAll is a pointer because two_node turns it on unless the file
	// sets it explicitly.
	WaitForAll            *bool  `toml:"wait_for_all"`
	LastManStanding       bool   `toml:"last_man_standing"`
	LastManStandingWindow int    `toml:"last_man_standing_window"`
	AutoTieBreaker        bool   `toml:"auto_tie_breaker"`
	AutoTieBreakerNode    string `toml:"auto_tie_breaker_node"`
	AllowDownscale        bool   `toml:"allow_downscale"`
}

// Logging configures zap.
type Logging struct {
	ToStderr bool   `toml:"to_stderr"`
	Logfile  string `toml:"logfile"`
	Debug    bool   `toml:"debug"`
	// Format of stderr and logfile lines: "console" (human-readable,
	// tab-separated) or "json" (one object a line).
	Format string `toml:"format"`
	// ToSyslog sends every line to the local syslog (/dev/log, facility
	// daemon, tag ringd), as corosync's to_syslog.
	ToSyslog bool `toml:"to_syslog"`
	// ToJournald sends every line to the systemd journal with its fields
	// as journal fields (RINGMASTER_*), for journalctl -o verbose.
	ToJournald bool `toml:"to_journald"`
}

// Metrics configures ringd's HTTP listener: OpenMetrics at /metrics and
// the read-only status page at /.
type Metrics struct {
	// Listen is the TCP address (host:port); "" turns the listener off.
	Listen string `toml:"listen"`
}

// IPC configures the local Unix socket.
type IPC struct {
	Socket string `toml:"socket"`
	// AllowedUIDs/AllowedGIDs may connect besides root and ringd's own uid.
	AllowedUIDs []int `toml:"allowed_uids"`
	AllowedGIDs []int `toml:"allowed_gids"`
	// MaxQueuedBytes bounds the replies and events queued for all
	// clients together; at the bound the client with the largest
	// backlog is disconnected.
	MaxQueuedBytes int64 `toml:"max_queued_bytes"`
	// MaxConnections bounds the clients served at once (0: derived from
	// the descriptor limit, see ipc.DefaultMaxConns).
	MaxConnections int `toml:"max_connections"`
}

// Resources configures the resource manager on this node. The cluster's
// resources themselves live in the CIB (ringctl crm import/apply), not
// here.
type Resources struct {
	// Enabled runs the resource manager (default true). A node with it
	// off takes part in the ring and quorum only and never runs
	// resources; every node of a cluster should have the same setting.
	Enabled *bool `toml:"enabled"`
	// RunDir is where this node's agents keep their runtime state
	// (builtin:dummy state files, LVS service state, and HA_RSCTMP of
	// OCF agents in RunDir/rsctmp). Default /run/ringmaster/node-ID: a
	// tmpfs, emptied by a reboot as agents expect, and one per node so
	// that nodes sharing a host (containers, namespaces, tests) do not
	// see each other's resources as running.
	RunDir string `toml:"run_dir"`
	// OCFRoot holds resource.d/PROVIDER/TYPE (OCF_ROOT); InitDir the LSB
	// init scripts; FenceAgentDir the fence_* executables.
	OCFRoot       string `toml:"ocf_root"`
	InitDir       string `toml:"init_dir"`
	FenceAgentDir string `toml:"fence_agent_dir"`
	// MaxPEInputs bounds the scheduler inputs kept in
	// state_dir/pe-inputs (Pacemaker's pe-input-series-max).
	MaxPEInputs int `toml:"max_pe_inputs"`
	// StartupWait is how long (ms) a node that starts alone waits for
	// others before it coordinates (Pacemaker's dc-deadtime).
	StartupWait int `toml:"startup_wait"`
	// FencePrestart keeps one process of each configured fence-agents
	// executable started and waiting for its request (default true): a
	// Python agent spends 70–220 ms starting, which is otherwise on every
	// failover's path. It costs one idle process (about 20 MiB for a
	// Python agent) per fence agent type on each node.
	FencePrestart *bool `toml:"fence_prestart"`
}

// FencePrestartEffective is FencePrestart with its default (true).
func (r *Resources) FencePrestartEffective() bool { return r.FencePrestart == nil || *r.FencePrestart }

// RunDirFor is RunDir with its default for node id.
func (r *Resources) RunDirFor(id int) string {
	if r.RunDir != "" {
		return r.RunDir
	}
	return fmt.Sprintf("/run/ringmaster/node-%d", id)
}

// EnabledEffective is Enabled with its default (true).
func (r *Resources) EnabledEffective() bool { return r.Enabled == nil || *r.Enabled }

// System holds paths of the node.
type System struct {
	// StateDir keeps the ring sequence number and quorum state across
	// restarts.
	StateDir string `toml:"state_dir"`
}

// Default returns a configuration with every default set; the reason for
// each is next to it.
func Default() *Config {
	return &Config{
		Totem: Totem{
			ClusterName: "ringmaster",
			Transport:   "udpu",      // works everywhere, no multicast routing needed
			Port:        DefaultPort, // corosync's default mcastport
			McastAddr:   "239.192.7.1",
			TTL:         1, // multicast stays on the local segment

			Token:                  3000, // corosync default: rides out short network hiccups
			TokenCoefficient:       650,  // per node above 2: bigger rings rotate slower
			TokenRetransmitsBefore: 4,    // retransmit the token 4 times before declaring it lost
			Join:                   50,   // interval between join messages in gather
			Merge:                  200,  // how often a representative looks for other rings
			Downcheck:              1000, // how often a down interface is rechecked
			FailRecvConst:          2500, // rotations without a missing message before failing its holder
			SeqnoUnchangedConst:    3,    // quiet rotations before the token is held (corosync: 30; see totem/README.md "one holder")
			MissCountConst:         5,    // token visits a message may be missing before retransmit on behalf
			WindowSize:             50,   // ring-wide messages per rotation: bounds queues everywhere
			MaxMessages:            17,   // per token visit: keeps one node from starving the others
			NetMTU:                 0,    // auto: the MTU of ring0_addr's interface (Ethernet 1500, loopback 64 KiB); corosync: 1500
			CryptoCipher:           "aes256",
			Keyfile:                "/etc/ringmaster/authkey",
			LinkMode:               "passive", // corosync's default: one link carries the traffic, the others stand by
		},
		Quorum: Quorum{
			Provider:              "votequorum",
			LastManStandingWindow: 10000, // corosync default: 10 s between downscale steps
			AutoTieBreakerNode:    "lowest",
		},
		Logging: Logging{ToStderr: true, Format: "console"}, // console: what a person at a terminal reads
		// Prometheus' ha_cluster_exporter port, on loopback only: the
		// status page and metrics show the cluster's layout to anyone
		// who can connect, so exposing them is the operator's choice.
		Metrics: Metrics{Listen: "127.0.0.1:9664"},
		IPC: IPC{Socket: "/run/ringmaster/ringd.sock",
			MaxQueuedBytes: 256 << 20, // four never-reading clients at their own 64 MiB budget
			MaxConnections: 0,         // derived: RLIMIT_NOFILE less a reserve for the ring and files, at most 4096
		},
		System: System{StateDir: "/var/lib/ringmaster"},
		Resources: Resources{
			OCFRoot:       "/usr/lib/ocf",
			InitDir:       "/etc/init.d",
			FenceAgentDir: "/usr/sbin",
			MaxPEInputs:   1000,  // what Pacemaker keeps (pe-input-series-max is unlimited by default there; 1000 bounds the disk)
			StartupWait:   20000, // Pacemaker's dc-deadtime
		},
	}
}

// FieldError is one problem in a configuration file.
type FieldError struct {
	File string
	Line int // 0 when unknown
	Key  string
	Msg  string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid configuration")

// Errors is the list of problems of a configuration; it wraps ErrInvalid.
type Errors []*FieldError

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap lets errors.Is(err, ErrInvalid) hold.
func (es Errors) Unwrap() error { return ErrInvalid }

// fieldErr builds an error for a dotted key, looking up its line.
func (c *Config) fieldErr(key, format string, args ...any) *FieldError {
	return &FieldError{File: c.Path, Line: c.line(key), Key: key, Msg: fmt.Sprintf(format, args...)}
}

// line finds where key (or, failing that, its closest parent) was set.
func (c *Config) line(key string) int {
	// "node[1].nodeid" is stored as "node.1.nodeid".
	key = strings.NewReplacer("[", ".", "]", "").Replace(key)
	for k := key; k != ""; {
		if l, ok := c.lines[k]; ok {
			return l
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

// NodeAddr returns the UDP address of a node on link 0: ring0_addr with
// the node's own port, or link 0's (its [[totem.interface]] port, else
// totem.port), as on a multi-link ring (NodeLinkAddr).
func (c *Config) NodeAddr(n *Node) (netip.AddrPort, error) {
	return parseRingAddr(n.Ring0Addr, c.LinkPort(0))
}

func parseRingAddr(s string, port int) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("not an IP or IP:PORT: %q", s)
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// Votes returns the node's quorum votes (default 1).
func (n *Node) Votes() int {
	if n.QuorumVotes == nil {
		return 1
	}
	return *n.QuorumVotes
}

// NodeByID returns the node with the given id, or nil.
func (c *Config) NodeByID(id int) *Node {
	for i := range c.Nodes {
		if c.Nodes[i].NodeID == id {
			return &c.Nodes[i]
		}
	}
	return nil
}

// WaitForAll reports the effective wait_for_all: explicit value, else on
// with two_node.
func (q *Quorum) WaitForAllEffective() bool {
	if q.WaitForAll != nil {
		return *q.WaitForAll
	}
	return q.TwoNode
}
