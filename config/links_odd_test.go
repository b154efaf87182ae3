package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Heartbeat settings that would let one link's failure cost a membership
// change, or keep links from ever coming up, are refused with FILE:LINE;
// so is an address that two nodes claim on different links.
func TestLinkErrorsOdd(t *testing.T) {
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"ping timeout not below the token", `knet_pong_count = 3`, "knet_pong_count = 3\nknet_ping_timeout = 1000",
			`links.toml:9: totem.knet_ping_timeout: must be below the token (1000 ms)`},
		{"ping timeout overflows", `knet_pong_count = 3`, "knet_pong_count = 3\nknet_ping_timeout = 10000000000000",
			`links.toml:9: totem.knet_ping_timeout: must be below the token (1000 ms)`},
		{"detection slower than the token", `knet_pong_count = 3`, "knet_pong_count = 3\nknet_ping_timeout = 900",
			`links.toml:9: totem.knet_ping_timeout: plus knet_ping_interval (225 ms) must stay below the token (1000 ms)`},
		{"interval above the derived timeout", `knet_pong_count = 3`, "knet_pong_count = 3\nknet_ping_interval = 400",
			`links.toml:9: totem.knet_ping_interval: must be below the ping timeout (250 ms, derived from the token), got 400`},
		{"another node's address on another link", `ring1_addr = "10.1.0.2:6100"`, `ring1_addr = "10.0.0.1:5405"`,
			`links.toml:23: node[1].ring1_addr: 10.0.0.1:5405 is also the address of node[0] on link 0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := strings.Replace(twoLinks, tc.old, tc.new, 1)
			require.NotEqual(t, twoLinks, s)
			_, err := Parse("links.toml", []byte(s))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	// Within bounds: accepted.
	_, err := Parse("links.toml", []byte(strings.Replace(twoLinks, `knet_pong_count = 3`, "knet_pong_count = 3\nknet_ping_interval = 100\nknet_ping_timeout = 500", 1)))
	require.NoError(t, err)
}
