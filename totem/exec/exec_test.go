package exec

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/internal/testutil"
	"ringmaster/ipc"
	"ringmaster/totem"
)

// recorder is a service that records what the executive tells it.
type recorder struct {
	id   ServiceID
	host Host
	mu   sync.Mutex
	log  []string
}

func (r *recorder) ID() ServiceID           { return r.id }
func (r *recorder) Name() string            { return "recorder" }
func (r *recorder) Init(h Host) error       { r.host = h; return nil }
func (r *recorder) add(s string)            { r.mu.Lock(); r.log = append(r.log, s); r.mu.Unlock() }
func (r *recorder) Deliver(m totem.Message) { r.add("deliver " + string(m.Payload)) }
func (r *recorder) ConfChange(c totem.ConfChange) {
	r.add("conf " + c.Kind.String())
}
func (r *recorder) SyncStart(c totem.ConfChange) {
	r.add("sync-start")
	r.host.SendReliable(1, totem.Agreed, []byte("state"))
}
func (r *recorder) SyncDone() { r.add("sync-done") }
func (r *recorder) Request(c Client, h ipc.Header, p []byte) {
	if err := r.host.Send(2, totem.Agreed, p); err != nil {
		_ = c.ReplyError(h, err)
		return
	}
	_ = c.Reply(h, []byte("queued"))
}
func (r *recorder) Disconnected(Client) { r.add("disconnected") }

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.log...)
}

func TestSyncBarrierAndOrder(t *testing.T) {
	lb := NewLoopback(1, 2)
	e := New(1, lb, nil)
	rec := &recorder{id: 10}
	require.NoError(t, e.Register(rec))
	require.Error(t, e.Register(&recorder{id: 10}), "duplicate id")
	require.Error(t, e.Register(&recorder{id: ServiceExec}), "the executive's own id")
	require.NoError(t, e.Start())
	go lb.Run(e)
	defer lb.Close()

	testutil.WaitFor(t, 5*time.Second, "sync to complete", e.Synced)
	assert.Equal(t, []string{"conf regular", "sync-start", "deliver state", "sync-done"}, rec.snapshot())

	// Client requests route to the service; its sends come back in order.
	srv, err := ipc.Listen(filepath.Join(t.TempDir(), "s.sock"), e, ipc.Options{})
	require.NoError(t, err)
	go func() { _ = srv.Serve() }()
	defer srv.Close()
	c, err := ipc.Dial(context.Background(), srv.Path())
	require.NoError(t, err)
	for _, s := range []string{"a", "b", "c"} {
		for {
			_, err := c.Call(context.Background(), 10, 1, []byte(s))
			if err == nil {
				break
			}
			require.ErrorIs(t, err, totem.ErrTryAgain) // loopback queue holds 2
		}
	}
	_, err = c.Call(context.Background(), 99, 1, nil)
	assert.ErrorIs(t, err, ipc.ErrUnknown)
	// The ring delivers asynchronously: close only after the last
	// delivery, so the disconnect is recorded after it.
	testutil.WaitFor(t, 5*time.Second, "deliveries", func() bool { return len(rec.snapshot()) == 7 })
	c.Close()
	testutil.WaitFor(t, 5*time.Second, "disconnect", func() bool { return len(rec.snapshot()) == 8 })
	assert.Equal(t, []string{"deliver a", "deliver b", "deliver c", "disconnected"}, rec.snapshot()[4:])
}

// A barrier of an older ring, or from a node outside the configuration,
// does not complete the sync; a new configuration restarts it.
func TestSyncIgnoresStaleBarriers(t *testing.T) {
	ring := &captureRing{}
	e := New(1, ring, nil)
	rec := &recorder{id: 10}
	require.NoError(t, e.Register(rec))
	require.NoError(t, e.Start())
	c1 := totem.ConfChange{Kind: totem.Regular, Ring: totem.RingID{Rep: 1, Seq: 8}, Members: []totem.NodeID{1, 2}}
	e.ConfChange(c1)
	assert.False(t, e.Synced())
	barrier := ring.last(ServiceExec)
	e.Deliver(totem.Message{Sender: 1, Service: 0, ID: msgSyncBarrier, Payload: barrier})
	e.Deliver(totem.Message{Sender: 3, Service: 0, ID: msgSyncBarrier, Payload: barrier})
	assert.False(t, e.Synced(), "node 3 is not a member")

	c2 := totem.ConfChange{Kind: totem.Regular, Ring: totem.RingID{Rep: 1, Seq: 12}, Members: []totem.NodeID{1, 2}}
	e.ConfChange(c2)
	e.Deliver(totem.Message{Sender: 2, Service: 0, ID: msgSyncBarrier, Payload: barrier})
	assert.False(t, e.Synced(), "barrier of ring 8 does not count in ring 12")
	b2 := ring.last(ServiceExec)
	e.Deliver(totem.Message{Sender: 1, Service: 0, ID: msgSyncBarrier, Payload: b2})
	e.Deliver(totem.Message{Sender: 2, Service: 0, ID: msgSyncBarrier, Payload: b2})
	assert.True(t, e.Synced())
	assert.Equal(t, "sync-done", rec.snapshot()[len(rec.snapshot())-1])
	// Unknown service: dropped, nothing delivered, no panic.
	e.Deliver(totem.Message{Sender: 2, Service: 200, ID: 1})
}

// captureRing records sends and accepts everything.
type captureRing struct {
	mu   sync.Mutex
	sent []totem.Message
}

func (c *captureRing) Send(service, id uint16, g totem.Guarantee, p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, totem.Message{Service: service, ID: id, Payload: p})
	return nil
}

func (c *captureRing) Status() totem.Status { return totem.Status{} }

func (c *captureRing) last(svc ServiceID) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.sent) - 1; i >= 0; i-- {
		if ServiceID(c.sent[i].Service) == svc {
			return c.sent[i].Payload
		}
	}
	return nil
}

// oldHandler answers clients with a signature that is not ClientHandler's.
type oldHandler struct{ recorder }

func (*oldHandler) Request(c *ipc.Conn, h ipc.Header, p []byte) {}

func TestRegisterRefusesAMismatchedClientHandler(t *testing.T) {
	e := New(1, NewLoopback(1, 2), nil)
	err := e.Register(&oldHandler{recorder{id: 11}})
	require.ErrorContains(t, err, "does not implement exec.ClientHandler")
	require.NoError(t, e.Register(&recorder{id: 12}))
}

// A service's Request can be driven with a fake connection: no socket.
func TestClientHandlerWithAFakeClient(t *testing.T) {
	e := New(1, NewLoopback(1, 2), nil)
	rec := &recorder{id: 10}
	require.NoError(t, e.Register(rec))
	require.NoError(t, e.Start())
	c := &fakeClient{}
	e.Do(func() { rec.Request(c, ipc.Header{Kind: ipc.KindRequest, Service: 10, Msg: 1, ReqID: 7}, []byte("x")) })
	require.Equal(t, []string{"reply 10/1 #7 queued"}, c.out)
}

// fakeClient records replies (exectest.Client is the full fake; it cannot
// be imported here without a cycle).
type fakeClient struct{ out []string }

func (f *fakeClient) ConnID() uint64     { return 1 }
func (f *fakeClient) PeerCred() ipc.Cred { return ipc.Cred{} }
func (f *fakeClient) Reply(h ipc.Header, p []byte) error {
	f.out = append(f.out, fmt.Sprintf("reply %d/%d #%d %s", h.Service, h.Msg, h.ReqID, p))
	return nil
}
func (f *fakeClient) ReplyError(h ipc.Header, err error) error {
	f.out = append(f.out, fmt.Sprintf("error %d/%d #%d %v", h.Service, h.Msg, h.ReqID, err))
	return nil
}
func (f *fakeClient) ReplyUrgent(h ipc.Header, p []byte) error       { return f.Reply(h, p) }
func (f *fakeClient) ReplyErrorUrgent(h ipc.Header, err error) error { return f.ReplyError(h, err) }
func (f *fakeClient) Event(service, msg uint16, p []byte) error      { return nil }
func (f *fakeClient) Backlog() int                                   { return 0 }
func (f *fakeClient) Congested() bool                                { return false }
