package daemon

import (
	"testing"

	"github.com/stretchr/testify/require"

	"ringmaster/config"
)

// TestLink0TransportFollowsInterface: on a single-link ring a
// [[totem.interface]] with linknumber 0 sets the group, TTL and port that
// ringd uses, as ringd --check reports them (config.LinkMcast); ringd used
// totem.mcast_addr and could fail at start-up on a file --check accepted.
func TestLink0TransportFollowsInterface(t *testing.T) {
	src := `[totem]
cluster_name = "demo"
transport = "udp"
mcast_addr = "ff15::1"
crypto_cipher = "none"
[[totem.interface]]
linknumber = 0
mcast_addr = "239.192.8.1"
port = 5500
ttl = 4
[[node]]
nodeid = 1
ring0_addr = "10.0.0.1"
[[node]]
nodeid = 2
ring0_addr = "10.0.0.2"
`
	cfg, err := config.Parse("x.toml", []byte(src))
	require.NoError(t, err)
	g, ttl, err := link0Transport(cfg)
	require.NoError(t, err)
	require.Equal(t, "239.192.8.1:5500", g.String())
	require.Equal(t, 4, ttl)
	ap, err := cfg.NodeAddr(&cfg.Nodes[1])
	require.NoError(t, err)
	require.Equal(t, "10.0.0.2:5500", ap.String(), "link 0's port")

	// Without the interface: totem.mcast_addr, in its IPv6 form for an
	// IPv6 link 0 when it is the IPv4 default.
	cfg, err = config.Parse("y.toml", []byte(`[totem]
cluster_name = "demo"
transport = "udp"
crypto_cipher = "none"
[[node]]
nodeid = 1
ring0_addr = "fd00::1"
`))
	require.NoError(t, err)
	g, _, err = link0Transport(cfg)
	require.NoError(t, err)
	require.Equal(t, "[ff18::efc0:701]:5405", g.String())
}
