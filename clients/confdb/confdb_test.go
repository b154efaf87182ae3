package confdb_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	cdbc "ringmaster/clients/confdb"
	"ringmaster/confdb"
	"ringmaster/confdb/wire"
	"ringmaster/config"
	"ringmaster/internal/daemon"
	"ringmaster/internal/testutil"
	"ringmaster/ipc"
	"ringmaster/totem"
	"ringmaster/totem/exec"
)

const threeNodes = `
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
[[node]]
nodeid = 3
ring0_addr = "127.0.0.3"
`

// node runs one executive with confdb on a loopback ring, served on a real
// Unix socket.
func node(t *testing.T) (*confdb.Service, string) {
	t.Helper()
	cfg, err := config.Parse("c.toml", []byte(threeNodes))
	require.NoError(t, err)
	lb := exec.NewLoopback(1, 64)
	svc := confdb.New(daemon.ConfdbConfig(cfg, 1, confdb.Sources{
		Ring: func() totem.Counters { return totem.Counters{MessagesIn: 42, TokenLosses: 1} },
	}))
	e := exec.New(1, lb, nil)
	require.NoError(t, e.Register(svc))
	require.NoError(t, e.Start())
	go lb.Run(e)
	t.Cleanup(lb.Close)
	dir, err := os.MkdirTemp("", "cdb")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	srv, err := ipc.Listen(filepath.Join(dir, "s.sock"), e, ipc.Options{})
	require.NoError(t, err)
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() { srv.Close() })
	return svc, srv.Path()
}

func next(t *testing.T, tr *cdbc.Tracker) cdbc.Event {
	t.Helper()
	select {
	case ev, ok := <-tr.C():
		require.True(t, ok, "tracker closed")
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a tracked change")
	}
	return cdbc.Event{}
}

func TestClient(t *testing.T) {
	svc, sock := node(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := cdbc.Dial(ctx, sock)
	require.NoError(t, err)
	defer c.Close()

	e, err := c.Get(ctx, "runtime.config.totem.token")
	require.NoError(t, err)
	assert.Equal(t, "runtime.config.totem.token (u32) = 1650", e.String())

	// Writes of ringd's keys are refused, naming the key.
	err = c.Set(ctx, "runtime.config.totem.token", wire.U32(1))
	assert.ErrorIs(t, err, cdbc.ErrReadOnly)
	assert.ErrorIs(t, err, ipc.ErrAccess)
	assert.Contains(t, err.Error(), "runtime.config.totem.token")
	assert.ErrorIs(t, c.Set(ctx, "totem.token", wire.String("fast")), cdbc.ErrInvalid)
	_, err = c.Get(ctx, "app.missing")
	assert.ErrorIs(t, err, cdbc.ErrNotFound)
	assert.ErrorIs(t, c.Delete(ctx, "app.missing"), cdbc.ErrNotFound)

	// Tracking a prefix from another connection sees the changes in order.
	c2, err := cdbc.Dial(ctx, sock)
	require.NoError(t, err)
	defer c2.Close()
	tr, err := c2.Track(ctx, "app.")
	require.NoError(t, err)
	key, err := c2.TrackKey(ctx, "app.b", wire.EventDelete)
	require.NoError(t, err)
	require.NoError(t, c.Set(ctx, "app.a", wire.U64(1)))
	require.NoError(t, c.Set(ctx, "app.a", wire.U64(2)))
	require.NoError(t, c.Set(ctx, "app.b", wire.Binary([]byte{0xca, 0xfe})))
	require.NoError(t, c.Set(ctx, "other.c", wire.I8(-1)))
	require.NoError(t, c.Delete(ctx, "app.b"))
	want := []string{"add app.a =1", "modify app.a 1=2", "add app.b =cafe", "delete app.b cafe="}
	for _, w := range want {
		ev := next(t, tr)
		assert.Equal(t, w, ev.Kind.String()+" "+ev.Key+" "+ev.Old.String()+"="+ev.New.String())
	}
	ev := next(t, key)
	assert.Equal(t, wire.EventDelete, ev.Kind)
	assert.Equal(t, wire.Binary([]byte{0xca, 0xfe}), ev.Old)

	// After Stop no more events for that tracker: ringd dropped it (the
	// client drops a stopped tracker's events too, so its channel
	// staying quiet says nothing about ringd).
	require.NoError(t, tr.Stop(ctx))
	assert.Equal(t, 1, svc.Store().TrackCount(), "the key tracker alone is left")
	require.NoError(t, c.Set(ctx, "app.b", wire.U8(1)))
	require.NoError(t, c.Delete(ctx, "app.b"))
	ev = next(t, key)
	assert.Equal(t, "app.b", ev.Key, "the key tracker still works")
	select {
	case ev := <-tr.C():
		t.Fatalf("event after Stop: %+v", ev)
	default:
	}

	es, err := c.List(ctx, "app.")
	require.NoError(t, err)
	assert.Equal(t, []wire.Entry{{Key: "app.a", Value: wire.U64(2)}}, es)
	es, err = c.List(ctx, "runtime.members.1.")
	require.NoError(t, err)
	assert.Len(t, es, 4)

	// Live statistics, and the trigger that clears them.
	e, err = c.Get(ctx, "stats.srp.messages_in")
	require.NoError(t, err)
	assert.Equal(t, wire.U64(42), e.Value)
	es, err = c.List(ctx, "stats.ipcs.")
	require.NoError(t, err)
	assert.NotEmpty(t, es)
	require.NoError(t, c.Set(ctx, "stats.clear.all", wire.U8(1)))
	e, err = c.Get(ctx, "stats.srp.messages_in")
	require.NoError(t, err)
	assert.Equal(t, wire.U64(0), e.Value)
	assert.ErrorIs(t, c.Set(ctx, "stats.srp.messages_in", wire.U64(0)), cdbc.ErrReadOnly)
}

// A client disconnecting drops its trackers and counters.
func TestTrackerGoneWithClient(t *testing.T) {
	svc, sock := node(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := cdbc.Dial(ctx, sock)
	require.NoError(t, err)
	_, err = c.Track(ctx, "")
	require.NoError(t, err)
	assert.Equal(t, 1, svc.Store().TrackCount())
	c.Close()
	testutil.WaitFor(t, 10*time.Second, "the client's trackers to go after it disconnected", func() bool {
		return svc.Store().TrackCount() == 0 && len(svc.ClientStats()) == 0
	})
}
