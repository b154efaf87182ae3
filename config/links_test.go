package config

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const twoLinks = `[totem]
cluster_name = "demo"
transport = "udp"
mcast_addr = "239.192.7.1"
token = 1000
crypto_cipher = "none"
link_mode = "active"
knet_pong_count = 3

[[totem.interface]]
linknumber = 1
link_priority = 5
port = 6000

[[node]]
nodeid = 1
ring0_addr = "10.0.0.1"
ring1_addr = "10.1.0.1"

[[node]]
nodeid = 2
ring0_addr = "10.0.0.2"
ring1_addr = "10.1.0.2:6100"
`

func TestLinks(t *testing.T) {
	c, err := Parse("links.toml", []byte(twoLinks))
	require.NoError(t, err)
	assert.Equal(t, []int{0, 1}, c.Links())
	assert.Equal(t, 5, c.LinkPriority(1))
	assert.Equal(t, DefaultLinkPriority, c.LinkPriority(0))
	ap, err := c.NodeLinkAddr(&c.Nodes[0], 1)
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddrPort("10.1.0.1:6000"), ap, "the interface's port")
	ap, err = c.NodeLinkAddr(&c.Nodes[1], 1)
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddrPort("10.1.0.2:6100"), ap, "the address's own port")
	g, err := c.LinkMcast(1)
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddrPort("239.192.7.2:6000"), g, "derived group: one per link")
	g, err = c.LinkMcast(0)
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddrPort("239.192.7.1:5405"), g)
	assert.Equal(t, "active", c.Totem.LinkMode)

	one, err := Parse("one.toml", []byte(good))
	require.NoError(t, err)
	assert.Equal(t, []int{0}, one.Links())
	assert.Equal(t, "passive", one.Totem.LinkMode)
}

// Every link error names the file, the line and the key.
func TestLinkErrors(t *testing.T) {
	for _, tc := range []struct {
		name, edit, want string
	}{
		{"missing on a node", `ring1_addr = "10.1.0.2:6100"` + "\n", `links.toml:20: node[1].ring1_addr: must be set: node[0] has ring1_addr`},
		{"extra on a node", `ring1_addr = "10.1.0.2:6100"`, `links.toml:24: node[1].ring2_addr: link 2 is not configured on node[0]`},
		{"same address twice", `ring1_addr = "10.1.0.2:6100"`, `links.toml:23: node[1].ring1_addr: 10.1.0.1:6000 is also the address of node[0] on link 1`},
		{"bad mode", `link_mode = "active"`, `links.toml:7: totem.link_mode: must be "passive" or "active", got "rr"`},
		{"interface without link", `linknumber = 1`, `links.toml:11: totem.interface[0].linknumber: link 4 has no address`},
		{"priority", `link_priority = 5`, `links.toml:12: totem.interface[0].link_priority: must be 0-255, got 300`},
		{"ipv6 link", `ring1_addr = "10.1.0.2:6100"`, `links.toml:23: node[1].ring1_addr: must be an IPv4 address`},
		{"same group", `port = 6000`, `totem.interface[0].mcast_addr: link 1 uses group 239.192.7.1:5405 like link 0`},
		{"ping", `knet_pong_count = 3`, `links.toml:8: totem.knet_ping_interval: must be below knet_ping_timeout (100 ms), got 100`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s string
			switch tc.name {
			case "missing on a node":
				s = strings.Replace(twoLinks, tc.edit, "", 1)
			case "extra on a node":
				s = strings.Replace(twoLinks, tc.edit, tc.edit+"\nring2_addr = \"10.2.0.2\"", 1)
			case "same address twice":
				s = strings.Replace(twoLinks, tc.edit, "ring1_addr = \"10.1.0.1\"", 1)
			case "bad mode":
				s = strings.Replace(twoLinks, tc.edit, `link_mode = "rr"`, 1)
			case "interface without link":
				s = strings.Replace(twoLinks, tc.edit, "linknumber = 4", 1)
			case "priority":
				s = strings.Replace(twoLinks, tc.edit, "link_priority = 300", 1)
			case "ipv6 link":
				s = strings.Replace(twoLinks, tc.edit, `ring1_addr = "[fd00::2]:6100"`, 1)
			case "same group":
				s = strings.Replace(twoLinks, tc.edit, "mcast_addr = \"239.192.7.1\"", 1)
			case "ping":
				s = strings.Replace(twoLinks, tc.edit, "knet_ping_interval = 100\nknet_ping_timeout = 100", 1)
			}
			_, err := Parse("links.toml", []byte(s))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
