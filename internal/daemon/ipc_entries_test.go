package daemon

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/config"
	"ringmaster/ipc"
)

// TestIPCEntries: cmap shows the IPC bounds, and the connection limit in
// effect under runtime.config (derived from RLIMIT_NOFILE when the file
// says 0).
func TestIPCEntries(t *testing.T) {
	for _, tc := range []struct {
		ipc  string
		want []string
	}{
		{"", []string{"ipc.max_queued_bytes (u64) = 268435456", "ipc.max_connections (u32) = 0",
			"runtime.config.ipc.max_connections (u32) = " + strconv.Itoa(ipc.DefaultMaxConns())}},
		{"max_queued_bytes = 8388608\nmax_connections = 50\n", []string{"ipc.max_queued_bytes (u64) = 8388608",
			"ipc.max_connections (u32) = 50", "runtime.config.ipc.max_connections (u32) = 50"}},
	} {
		cfg, err := config.Parse("c.toml", []byte("[totem]\ncrypto_cipher = \"none\"\n[[node]]\nnodeid = 1\nring0_addr = \"127.0.0.1\"\n[ipc]\n"+tc.ipc))
		require.NoError(t, err)
		m := map[string]string{}
		for _, e := range ConfigEntries(cfg, 1) {
			m[e.Key] = e.String()
		}
		for _, w := range tc.want {
			assert.Equal(t, w, m[w[:indexParen(w)]], w)
		}
	}
}
