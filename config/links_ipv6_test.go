package config

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mixedLinks has link 0 on IPv4 and link 1 on IPv6 (transport udp).
const mixedLinks = `[totem]
cluster_name = "demo"
transport = "udp"
mcast_addr = "239.192.7.1"
token = 1000
crypto_cipher = "none"

[[node]]
nodeid = 1
ring0_addr = "10.0.0.1"
ring1_addr = "fd00:1::1"

[[node]]
nodeid = 2
ring0_addr = "10.0.0.2"
ring1_addr = "[fd00:1::2]:6100"
`

// A link's addresses may be IPv6; links may differ in family; an IPv6
// link's default group is the IPv4 group's IPv6 form (ff18::/96) plus the
// link number.
func TestLinksIPv6(t *testing.T) {
	c, err := Parse("mixed.toml", []byte(mixedLinks))
	require.NoError(t, err)
	assert.False(t, c.LinkIs6(0))
	assert.True(t, c.LinkIs6(1))
	ap, err := c.NodeLinkAddr(&c.Nodes[0], 1)
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddrPort("[fd00:1::1]:5405"), ap)
	ap, err = c.NodeLinkAddr(&c.Nodes[1], 1)
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddrPort("[fd00:1::2]:6100"), ap, "the address's own port, in brackets")
	g, err := c.LinkMcast(0)
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddrPort("239.192.7.1:5405"), g)
	g, err = c.LinkMcast(1)
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddrPort("[ff18::efc0:702]:5405"), g, "ff18:: + 239.192.7.1's bits, + link 1")

	// Only IPv6, udp: link 0's group is the default's IPv6 form.
	six := strings.NewReplacer(`"10.0.0.1"`, `"fd00:0::1"`, `"10.0.0.2"`, `"fd00:0::2"`).Replace(mixedLinks)
	c, err = Parse("six.toml", []byte(six))
	require.NoError(t, err)
	g, err = c.LinkMcast(0)
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddrPort("[ff18::efc0:701]:5405"), g)
	ap, err = c.NodeAddr(&c.Nodes[1])
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddrPort("[fd00::2]:5405"), ap)

	// An IPv6 totem.mcast_addr is link 0's group; link 1 adds 1.
	c, err = Parse("six.toml", []byte(strings.Replace(six, `"239.192.7.1"`, `"ff15::4:1"`, 1)))
	require.NoError(t, err)
	g, err = c.LinkMcast(1)
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddrPort("[ff15::4:2]:5405"), g)

	// udpu, one IPv6 link.
	one := "[totem]\ncluster_name = \"x\"\ntransport = \"udpu\"\ncrypto_cipher = \"none\"\n" +
		"[[node]]\nnodeid = 1\nring0_addr = \"::1\"\n[[node]]\nnodeid = 2\nring0_addr = \"[::1]:5407\"\n"
	_, err = Parse("one.toml", []byte(one))
	require.NoError(t, err)
}

// IPv6 mistakes are refused with FILE:LINE and the key.
func TestLinksIPv6Errors(t *testing.T) {
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"mixed families on link 1", `ring1_addr = "[fd00:1::2]:6100"`, `ring1_addr = "10.1.0.2"`,
			`mixed.toml:16: node[1].ring1_addr: must be an IPv6 address like node[0].ring1_addr (every node's address on one link has the same family), got "10.1.0.2"`},
		{"mixed families on link 0", `ring0_addr = "10.0.0.2"`, `ring0_addr = "fd00::2"`,
			`mixed.toml:15: node[1].ring0_addr: must be an IPv4 address like node[0].ring0_addr`},
		{"IPv4 group on an IPv6 link", `crypto_cipher = "none"`, "crypto_cipher = \"none\"\n\n[[totem.interface]]\nlinknumber = 1\nmcast_addr = \"239.192.8.1\"",
			`mixed.toml:10: totem.interface[0].mcast_addr: must be an IPv6 multicast address (ff00::/8): the link's addresses are IPv6, got "239.192.8.1"`},
		{"IPv6 group on an IPv4 link", `crypto_cipher = "none"`, "crypto_cipher = \"none\"\n\n[[totem.interface]]\nlinknumber = 0\nmcast_addr = \"ff15::1\"",
			`mixed.toml:10: totem.interface[0].mcast_addr: must be an IPv4 multicast address (224.0.0.0/4), got "ff15::1"`},
		{"IPv6 totem.mcast_addr, IPv4 link 0", `mcast_addr = "239.192.7.1"`, `mcast_addr = "ff15::1"`,
			`mixed.toml:4: totem.mcast_addr: link 0: totem.mcast_addr "ff15::1" is IPv6 and link 0 is IPv4`},
		{"link-scope group", `crypto_cipher = "none"`, "crypto_cipher = \"none\"\n\n[[totem.interface]]\nlinknumber = 1\nmcast_addr = \"ff02::1:2\"",
			`mixed.toml:10: totem.interface[0].mcast_addr: must have a scope beyond the link`},
		{"link-local address", `ring1_addr = "fd00:1::1"`, `ring1_addr = "fe80::1"`,
			`mixed.toml:11: node[0].ring1_addr: link-local IPv6 addresses (fe80::/10, zones) are not supported`},
		{"zone", `ring1_addr = "fd00:1::1"`, `ring1_addr = "fe80::1%eth0"`,
			`mixed.toml:11: node[0].ring1_addr: link-local IPv6 addresses`},
		{"IPv4-mapped", `ring1_addr = "fd00:1::1"`, `ring1_addr = "::ffff:10.1.0.1"`,
			`mixed.toml:11: node[0].ring1_addr: an IPv4-mapped IPv6 address: write it as IPv4 (10.1.0.1)`},
		{"multicast as address", `ring1_addr = "fd00:1::1"`, `ring1_addr = "ff15::1"`,
			`mixed.toml:11: node[0].ring1_addr: must be a unicast address`},
		{"same IPv6 address twice", `ring1_addr = "[fd00:1::2]:6100"`, `ring1_addr = "[fd00:1::1]:5405"`,
			`mixed.toml:16: node[1].ring1_addr: [fd00:1::1]:5405 is also the address of node[0] on link 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := strings.Replace(mixedLinks, tc.old, tc.new, 1)
			require.NotEqual(t, mixedLinks, s)
			_, err := Parse("mixed.toml", []byte(s))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
