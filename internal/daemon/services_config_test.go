package daemon

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/config"
	"ringmaster/votequorum/calc"
)

func TestQuorumOptions(t *testing.T) {
	cfg, err := config.Parse("q.toml", []byte(`
[totem]
crypto_cipher = "none"
[[node]]
nodeid = 1
ring0_addr = "127.0.0.1"
quorum_votes = 2
[[node]]
nodeid = 3
ring0_addr = "127.0.0.3"
[quorum]
two_node = true
last_man_standing_window = 2000
`))
	require.NoError(t, err)
	o, err := QuorumOptions(cfg)
	require.NoError(t, err)
	assert.Equal(t, []calc.NodeVotes{{ID: 1, Votes: 2}, {ID: 3, Votes: 1}}, o.Nodes)
	assert.True(t, o.TwoNode)
	assert.True(t, o.WaitForAll, "two_node implies wait_for_all")
	assert.Equal(t, 2*time.Second, o.LastManStandingWindow)
	assert.Equal(t, calc.ATBNone, o.AutoTieBreaker)
}

// corosync.toml refuses what corosync refuses to start with.
func TestQuorumConfigRefusals(t *testing.T) {
	base := "[totem]\ncrypto_cipher = \"none\"\n" +
		"[[node]]\nnodeid = 1\nring0_addr = \"127.0.0.1\"\n[[node]]\nnodeid = 2\nring0_addr = \"127.0.0.2\"\n[[node]]\nnodeid = 3\nring0_addr = \"127.0.0.3\"\n"
	_, err := config.Parse("q.toml", []byte(base+"[quorum]\nauto_tie_breaker = true\nlast_man_standing = true\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "quorum.auto_tie_breaker: auto_tie_breaker with last_man_standing on an odd number of votes (3) needs wait_for_all")
	cfg, err := config.Parse("q.toml", []byte(base+"[quorum]\nauto_tie_breaker = true\nlast_man_standing = true\nwait_for_all = true\n"))
	require.NoError(t, err)
	o, err := QuorumOptions(cfg)
	require.NoError(t, err)
	_, warn, err := o.Normalize()
	require.NoError(t, err)
	assert.Empty(t, warn)
	_, err = config.Parse("q.toml", []byte(base+"[quorum]\ntwo_node = true\n"))
	assert.ErrorContains(t, err, "two_node needs exactly 2 nodes")
}

// TestConfigEntries: the keys a node starts with, named as corosync names
// them in cmap.
func TestConfigEntries(t *testing.T) {
	cfg, err := config.Parse("c.toml", []byte(`
[totem]
token = 1000
crypto_cipher = "none"
[[node]]
nodeid = 1
name = "n1"
ring0_addr = "127.0.0.1"
[[node]]
nodeid = 2
ring0_addr = "127.0.0.2"
quorum_votes = 2
[[node]]
nodeid = 3
ring0_addr = "127.0.0.3"
[quorum]
expected_votes = 4
auto_tie_breaker = true
wait_for_all = true
`))
	require.NoError(t, err)
	m := map[string]string{}
	for _, e := range ConfigEntries(cfg, 2) {
		m[e.Key] = e.String()
	}
	for _, want := range []string{
		"runtime.config.totem.token (u32) = 1650",
		"totem.token (u32) = 1000",
		"totem.port (u16) = 5405",
		"totem.cluster_name (str) = ringmaster",
		"nodelist.node.0.nodeid (u32) = 1",
		"nodelist.node.0.name (str) = n1",
		"nodelist.node.1.ring0_addr (str) = 127.0.0.2",
		"nodelist.node.1.quorum_votes (u32) = 2",
		"nodelist.local_node_pos (u32) = 1",
		"quorum.expected_votes (u32) = 4",
		"quorum.wait_for_all (u8) = 1",
		"quorum.auto_tie_breaker_node (str) = lowest",
		"quorum.two_node (u8) = 0",
		"logging.to_stderr (str) = yes",
	} {
		k := want[:len(want)-len(want[indexParen(want):])]
		assert.Equal(t, want, m[k], k)
	}
	_, hasVotes := m["nodelist.node.0.quorum_votes"]
	assert.False(t, hasVotes, "quorum_votes only where configured, as in corosync")
	_, hasKey := m["totem.keyfile"]
	assert.False(t, hasKey, "no keyfile without crypto")
}

func indexParen(s string) int {
	for i := range s {
		if s[i] == ' ' {
			return i
		}
	}
	return len(s)
}
