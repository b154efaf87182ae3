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
