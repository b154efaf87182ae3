package quorum_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/clients/quorum"
	"ringmaster/ipc"
	"ringmaster/totem"
	"ringmaster/totem/exec"
	"ringmaster/votequorum"
	"ringmaster/votequorum/calc"
)

// The watch stream ends when the connection does. (The service's behaviour
// through this client is tested in votequorum's service tests.)
func TestWatchEndsWithConnection(t *testing.T) {
	svc := votequorum.New(votequorum.Config{Options: calc.Options{Nodes: []calc.NodeVotes{{ID: 1, Votes: 1}}}, Local: 1})
	lb := exec.NewLoopback(1, 64)
	e := exec.New(1, lb, nil)
	require.NoError(t, e.Register(svc))
	require.NoError(t, e.Start())
	go lb.Run(e)
	defer lb.Close()
	dir, err := os.MkdirTemp("", "qc")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	srv, err := ipc.Listen(filepath.Join(dir, "s.sock"), e, ipc.Options{})
	require.NoError(t, err)
	go func() { _ = srv.Serve() }()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := quorum.Dial(ctx, srv.Path())
	require.NoError(t, err)
	defer c.Close()
	w, err := c.Watch(ctx)
	require.NoError(t, err)
	st := <-w.C()
	assert.Equal(t, totem.NodeID(1), totem.NodeID(st.NodeID))
	require.NoError(t, c.RequireQuorate(ctx), "a one-node cluster is quorate")
	srv.Close()
	for range w.C() {
	}
	_, err = c.Status(ctx)
	assert.Error(t, err)
}
