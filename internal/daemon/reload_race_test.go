package daemon

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"ringmaster/config"
)

// TestReloadKeepsClusterCommit: a cluster-wide reload that commits while
// a SIGHUP reload of this node is reading the file keeps what it applied
// (here the token); the SIGHUP's own changes (logging) go on top. The
// SIGHUP used to install a configuration built from the one it had read
// before, reverting the commit in what ringd reports while the ring ran
// the committed values.
func TestReloadKeepsClusterCommit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "corosync.toml")
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	port := pc.LocalAddr().(*net.UDPAddr).Port
	require.NoError(t, pc.Close())
	write := func(debug bool) {
		src := fmt.Sprintf(`[totem]
cluster_name = "r"
transport = "udpu"
crypto_cipher = "none"
token = 1000
port = %d
[[node]]
nodeid = 1
ring0_addr = "127.0.0.1"
[ipc]
socket = %q
[system]
state_dir = %q
[logging]
debug = %v
`, port, filepath.Join(dir, "sock"), filepath.Join(dir, "state"), debug)
		require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
	}
	write(false)
	d, err := New(Options{ConfigPath: path, Node: "1"})
	require.NoError(t, err)
	if c, ok := d.ring.(interface{ Close() error }); ok {
		t.Cleanup(func() { _ = c.Close() })
	}
	write(true)
	d.opt.OnReloadLogging = func(config.Logging) error {
		// A cluster-wide commit lands now (token 1000 → 2000).
		d.exec.Do(func() {
			cur := d.Config()
			next := *cur
			next.Totem.Token = 2000
			d.installConfig(cur, &next, nil)
		})
		return nil
	}
	require.NoError(t, d.Reload())
	got := d.Config()
	require.Equal(t, 2000, got.Totem.Token, "the cluster-wide commit's token stays")
	require.True(t, got.Logging.Debug, "the SIGHUP's logging change applies")
}
