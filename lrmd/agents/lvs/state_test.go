package lvs

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWriteStateDurable: a rewrite replaces the file whole, leaves no
// temporary file, and ReadStates ignores one a crash left behind.
func TestWriteStateDurable(t *testing.T) {
	run := t.TempDir()
	k := Key{Proto: "tcp", VIP: netip.MustParseAddr("10.0.0.1"), Port: 80}
	require.NoError(t, WriteState(run, k, State{Service: "a", Scheduler: "rr"}))
	require.NoError(t, WriteState(run, k, State{Service: "a", Scheduler: "wlc"}))
	ents, err := os.ReadDir(stateDir(run))
	require.NoError(t, err)
	require.Len(t, ents, 1)
	assert.Equal(t, k.ID()+".json", ents[0].Name())

	require.NoError(t, os.WriteFile(statePath(run, k)+".tmp123", []byte(`{"service":"partial`), 0o600))
	sts, err := ReadStates(run)
	require.NoError(t, err)
	require.Len(t, sts, 1)
	assert.Equal(t, "wlc", sts[0].Scheduler)

	require.Error(t, WriteState(filepath.Join(run, "lvs", k.ID()+".json"), k, State{}), "errors are returned")
}
