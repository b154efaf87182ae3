package votequorum_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/clients/quorum"
	"ringmaster/internal/testutil"
	"ringmaster/ipc"
	"ringmaster/totem"
	"ringmaster/totem/exec"
	"ringmaster/totem/exec/exectest"
	"ringmaster/votequorum"
	"ringmaster/votequorum/calc"
	"ringmaster/votequorum/wire"
)

// shortDir is a temporary directory with a path short enough for Unix
// sockets (t.TempDir can exceed the 107-byte limit).
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vq")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func nodes(n int) []calc.NodeVotes {
	var out []calc.NodeVotes
	for i := 1; i <= n; i++ {
		out = append(out, calc.NodeVotes{ID: totem.NodeID(i), Votes: 1})
	}
	return out
}

// loopbackNode runs one executive with the votequorum service on a
// loopback ring and serves it on a real Unix socket.
func loopbackNode(t *testing.T, opt calc.Options) (*votequorum.Service, string) {
	t.Helper()
	dir := shortDir(t)
	svc := votequorum.New(votequorum.Config{Options: opt, Local: 1, Names: map[totem.NodeID]string{1: "n1", 2: "n2", 3: "n3"}, StateDir: dir})
	lb := exec.NewLoopback(1, 64)
	e := exec.New(1, lb, nil)
	require.NoError(t, e.Register(svc))
	require.NoError(t, e.Start())
	go lb.Run(e)
	t.Cleanup(lb.Close)
	srv, err := ipc.Listen(filepath.Join(dir, "s.sock"), e, ipc.Options{})
	require.NoError(t, err)
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() { srv.Close() })
	return svc, srv.Path()
}

// nextStatus reads the watch until a status satisfies cond.
func nextStatus(t *testing.T, w *quorum.Watch, cond func(*quorum.Status) bool) quorum.Status {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case st, ok := <-w.C():
			require.True(t, ok, "watch ended")
			if cond(&st) {
				return st
			}
		case <-timeout:
			t.Fatal("timed out waiting for a quorum event")
		}
	}
}

// One node of a 3-node cluster, on a loopback ring: inquorate; the client
// library reads the status, watches it and changes it through the ring.
func TestServiceLoopback(t *testing.T) {
	svc, sock := loopbackNode(t, calc.Options{Nodes: nodes(3)})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := quorum.Dial(ctx, sock)
	require.NoError(t, err)
	defer c.Close()

	var st *quorum.Status
	testutil.WaitFor(t, 10*time.Second, "the first sync", func() bool {
		st, err = c.Status(ctx)
		require.NoError(t, err)
		return st.Ring.Seq == 4
	})
	assert.False(t, st.Quorate)
	assert.Equal(t, uint32(3), st.ExpectedVotes)
	assert.Equal(t, uint32(1), st.TotalVotes)
	assert.Equal(t, uint32(2), st.Quorum)
	assert.Equal(t, []wire.Member{{NodeID: 1, Votes: 1, Name: "n1", Local: true}}, st.Members)
	assert.False(t, svc.Quorate())
	assert.ErrorIs(t, c.RequireQuorate(ctx), quorum.ErrNotQuorate)

	w, err := c.Watch(ctx)
	require.NoError(t, err)
	first := nextStatus(t, w, func(*quorum.Status) bool { return true })
	assert.False(t, first.Quorate)
	_, err = c.Watch(ctx)
	assert.ErrorIs(t, err, quorum.ErrWatching)

	// Refused: quorum 3 with 1 vote present.
	_, err = c.SetExpected(ctx, 5)
	assert.ErrorIs(t, err, quorum.ErrInvalid)
	_, err = c.SetVotes(ctx, 7, 1)
	assert.ErrorIs(t, err, quorum.ErrNotFound)

	// The operator makes the lone node quorate; the reply comes once
	// applied, and the watch sees it.
	st, err = c.SetExpected(ctx, 1)
	require.NoError(t, err)
	assert.True(t, st.Quorate)
	assert.Equal(t, uint32(1), st.ExpectedVotes)
	assert.True(t, svc.Quorate())
	nextStatus(t, w, func(s *quorum.Status) bool { return s.Quorate })
	assert.NoError(t, c.RequireQuorate(ctx))

	st, err = c.SetVotes(ctx, 0, 3)
	require.NoError(t, err)
	assert.Equal(t, uint32(3), st.TotalVotes)
	assert.Equal(t, uint32(3), st.ExpectedVotes, "expected votes follow the votes present")
	nextStatus(t, w, func(s *quorum.Status) bool { return s.TotalVotes == 3 })

	st, err = c.CancelWaitForAll(ctx)
	require.NoError(t, err)
	assert.True(t, st.Quorate)
	require.NoError(t, w.Stop(ctx))

	// The persisted state is in state_dir.
	dir := filepath.Dir(sock)
	p, err := votequorum.LoadState(dir)
	require.NoError(t, err)
	assert.Equal(t, uint32(3), p.Lineage.Expected)
}

// wait_for_all: node 1 holds 2 of 3 votes, enough for quorum but not
// "all"; it waits until the operator cancels the wait.
func TestServiceWaitForAllCancel(t *testing.T) {
	_, sock := loopbackNode(t, calc.Options{Nodes: []calc.NodeVotes{{ID: 1, Votes: 2}, {ID: 2, Votes: 1}}, WaitForAll: true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := quorum.Dial(ctx, sock)
	require.NoError(t, err)
	defer c.Close()
	var st *quorum.Status
	testutil.WaitFor(t, 10*time.Second, "the first sync", func() bool {
		st, err = c.Status(ctx)
		require.NoError(t, err)
		return st.Ring.Seq == 4
	})
	assert.True(t, st.WaitForAllStatus)
	assert.False(t, st.Quorate)
	assert.Contains(t, st.Flags, wire.FlagWaitForAll)
	st, err = c.CancelWaitForAll(ctx)
	require.NoError(t, err)
	assert.False(t, st.WaitForAllStatus)
	assert.True(t, st.Quorate)
}

type cluster struct {
	*exectest.Cluster
	socks map[totem.NodeID]string
	svcs  map[totem.NodeID]*votequorum.Service
}

// newCluster runs n executives with votequorum on exectest's sequencer,
// each served on a socket, each with its own state_dir.
func newCluster(t *testing.T, n int, opt calc.Options) *cluster {
	t.Helper()
	dir := shortDir(t)
	cl := &cluster{socks: map[totem.NodeID]string{}, svcs: map[totem.NodeID]*votequorum.Service{}}
	c, err := exectest.New(exectest.Options{Nodes: n, Seed: 7, Services: func(id totem.NodeID) []exec.Service {
		state := filepath.Join(dir, "state", string(rune('0'+id)))
		require.NoError(t, os.MkdirAll(state, 0o700))
		svc := votequorum.New(votequorum.Config{Options: opt, Local: id, StateDir: state})
		cl.svcs[id] = svc
		return []exec.Service{svc}
	}})
	require.NoError(t, err)
	cl.Cluster = c
	t.Cleanup(c.Close)
	stop := c.Run()
	t.Cleanup(stop)
	for i := 1; i <= n; i++ {
		id := totem.NodeID(i)
		cl.socks[id] = filepath.Join(dir, string(rune('0'+i))+".sock")
		_, err := c.Node(id).Listen(cl.socks[id], ipc.Options{})
		require.NoError(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.WaitSynced(ctx))
	return cl
}

func (cl *cluster) status(t *testing.T, id totem.NodeID) *quorum.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := quorum.Dial(ctx, cl.socks[id])
	require.NoError(t, err)
	defer c.Close()
	st, err := c.Status(ctx)
	require.NoError(t, err)
	return st
}

// Three nodes on one ordered stream: all agree; the survivor of two
// crashes is not quorate; a split leaves exactly the majority quorate.
func TestServiceThreeNodes(t *testing.T) {
	cl := newCluster(t, 3, calc.Options{Nodes: nodes(3)})
	for id := totem.NodeID(1); id <= 3; id++ {
		st := cl.status(t, id)
		assert.True(t, st.Quorate, "node %d", id)
		assert.Equal(t, uint32(3), st.ExpectedVotes)
		assert.Equal(t, uint32(3), st.TotalVotes)
		assert.Equal(t, uint32(2), st.Quorum)
		assert.Len(t, st.Members, 3)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c1, err := quorum.Dial(ctx, cl.socks[1])
	require.NoError(t, err)
	defer c1.Close()
	w, err := c1.Watch(ctx)
	require.NoError(t, err)

	require.NoError(t, cl.Partition([]totem.NodeID{1}, []totem.NodeID{2, 3}))
	nextStatus(t, w, func(s *quorum.Status) bool { return len(s.Members) == 1 && !s.Syncing })
	require.NoError(t, cl.WaitSynced(ctx))
	assert.False(t, cl.svcs[1].Quorate())
	assert.True(t, cl.svcs[2].Quorate())
	assert.True(t, cl.svcs[3].Quorate())

	cl.Heal()
	nextStatus(t, w, func(s *quorum.Status) bool { return s.Quorate && len(s.Members) == 3 })
	cl.Crash(2)
	cl.Crash(3)
	st := nextStatus(t, w, func(s *quorum.Status) bool { return len(s.Members) == 1 })
	assert.False(t, st.Quorate)
	assert.Equal(t, uint32(1), st.TotalVotes)
	assert.Equal(t, uint32(3), st.ExpectedVotes)

	// A restarted node comes back with its persisted lineage and the
	// partition of two is quorate again.
	_, err = cl.Restart(2)
	require.NoError(t, err)
	_, err = cl.Node(2).Listen(cl.socks[2]+"b", ipc.Options{})
	require.NoError(t, err)
	cl.Heal()
	st = nextStatus(t, w, func(s *quorum.Status) bool { return len(s.Members) == 2 })
	assert.True(t, st.Quorate)
}

// two_node: the survivor of a crash stays quorate.
func TestServiceTwoNode(t *testing.T) {
	cl := newCluster(t, 2, calc.Options{Nodes: nodes(2), TwoNode: true, WaitForAll: true})
	st := cl.status(t, 1)
	require.True(t, st.Quorate)
	assert.Equal(t, uint32(1), st.Quorum)
	assert.Contains(t, st.Flags, wire.FlagTwoNode)
	cl.Crash(2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, cl.WaitSynced(ctx))
	st = cl.status(t, 1)
	assert.True(t, st.Quorate)
	assert.Len(t, st.Members, 1)
}

// last_man_standing runs its window on the driver's clock and lowers
// expected votes on every member at the same point of the stream.
func TestServiceLastManStanding(t *testing.T) {
	cl := newCluster(t, 4, calc.Options{Nodes: nodes(4), LastManStanding: true, LastManStandingWindow: 50 * time.Millisecond})
	cl.Crash(4)
	testutil.WaitFor(t, 10*time.Second, "expected votes to follow the 3 survivors", func() bool {
		for id := totem.NodeID(1); id <= 3; id++ {
			st := cl.status(t, id)
			if st.ExpectedVotes != 3 || st.Quorum != 2 || !st.Quorate {
				return false
			}
		}
		return true
	})
}

// A status asked while a membership change is being synchronised is
// answered once the sync is done, with the new quorum.
func TestServiceStatusWaitsForSync(t *testing.T) {
	cl := newCluster(t, 3, calc.Options{Nodes: nodes(3)})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := quorum.Dial(ctx, cl.socks[1])
	require.NoError(t, err)
	defer c.Close()
	cl.Freeze()
	cl.Crash(2)
	cl.Crash(3)
	res := make(chan *quorum.Status, 1)
	go func() {
		st, err := c.Status(ctx)
		assert.NoError(t, err)
		res <- st
	}()
	// Wait until the service has the question, then check it is held:
	// no answer sent (one sent could still be on its way to res).
	var answered uint64
	testutil.WaitFor(t, 10*time.Second, "the request to reach the service", func() bool {
		n := uint64(0)
		answered = 0
		cl.Node(1).Exec.Do(func() {
			for _, st := range cl.svcs[1].ClientStats() {
				n += st.Requests
				answered += st.Responses + st.Errors
			}
		})
		return n == 1
	})
	if answered != 0 {
		t.Fatal("status answered during the sync")
	}
	select {
	case <-res:
		t.Fatal("status answered during the sync")
	default:
	}
	cl.Thaw()
	st := <-res
	assert.False(t, st.Syncing)
	assert.Len(t, st.Members, 1)
	assert.False(t, st.Quorate)
}
