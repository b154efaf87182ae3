package ipc

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/internal/testutil"
)

// slowConn connects a raw client that registers with echo (message 4)
// and then never reads; it returns the server side of it.
func slowConn(t *testing.T, s *Server, h *echo) (*Conn, net.Conn) {
	t.Helper()
	nc, err := net.Dial("unix", s.Path())
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	h.mu.Lock()
	n := len(h.conns)
	h.mu.Unlock()
	_, err = nc.Write(AppendFrame(AppendFrame(nil, Header{Kind: KindRequest, Msg: MsgHello, ReqID: 1}, nil),
		Header{Kind: KindRequest, Service: 5, Msg: 4, ReqID: 2}, nil))
	require.NoError(t, err)
	testutil.WaitFor(t, 5*time.Second, "slow client registered", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.conns) == n+1
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conns[n], nc
}

// TestGlobalBoundEvictsLargest: when the output queued for all clients
// reaches MaxQueued, the client with the largest backlog is disconnected
// and the others keep their events; the queued memory never passes the
// bound.
func TestGlobalBoundEvictsLargest(t *testing.T) {
	h := &echo{}
	const bound = 4 << 20
	s := startServer(t, h, Options{MaxQueued: bound})
	big, _ := slowConn(t, s, h)
	small, _ := slowConn(t, s, h)
	ev := make([]byte, 32<<10)
	// Fill until big's events stop being written: the socket buffer
	// is full and the rest stays queued.
	for i := 0; i < 96; i++ {
		require.NoError(t, big.Event(5, 9, ev))
	}
	for i := 0; i < 8; i++ {
		require.NoError(t, small.Event(5, 9, ev))
	}
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		err = small.Event(5, 9, ev)
		assert.LessOrEqual(t, s.QueuedBytes(), int64(bound))
		big.out.mu.Lock()
		evicted := big.out.closed
		big.out.mu.Unlock()
		if evicted {
			break
		}
	}
	require.NoError(t, err, "the small client keeps its events")
	select {
	case <-big.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the client with the largest backlog was not disconnected")
	}
	select {
	case <-small.Done():
		t.Fatal("the smaller client was disconnected")
	default:
	}
}

// TestMaxConns: connections past MaxConns are refused with TRY_AGAIN and
// a reason; a slot freed is taken again.
func TestMaxConns(t *testing.T) {
	s := startServer(t, &echo{}, Options{MaxConns: 2})
	a := dial(t, s)
	dial(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := Dial(ctx, s.Path())
	require.ErrorIs(t, err, ErrTryAgain)
	assert.ErrorContains(t, err, "at most 2 connections")
	a.Close()
	testutil.WaitFor(t, 5*time.Second, "a freed slot is taken again", func() bool {
		c, err := Dial(ctx, s.Path())
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// TestFrameGrowsAsBytesArrive: a frame announcing MaxPayload of which a
// little arrives costs about what arrived, not what was announced.
func TestFrameGrowsAsBytesArrive(t *testing.T) {
	in := AppendHeader(nil, Header{Kind: KindRequest, Length: MaxPayload})
	in = append(in, make([]byte, 100)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < 10; i++ {
		_, _, err := ReadFrame(bytes.NewReader(in), make([]byte, HeaderSize))
		require.ErrorIs(t, err, ErrTruncated)
	}
	runtime.ReadMemStats(&after)
	per := (after.TotalAlloc - before.TotalAlloc) / 10
	assert.Less(t, per, uint64(2*growFrom), "allocated %d bytes per truncated frame", per)
}

// TestBlockQueueFrames: frames of every size (across block boundaries,
// larger than a block) come out whole and in order, with urgent frames
// only at frame boundaries; the pool gets every block back.
func TestBlockQueueFrames(t *testing.T) {
	p := &pool{max: 64 << 20}
	q := newBlockQueue(p, 0)
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- q.writeTo(a) }()
	sizes := []int{0, 1, 100, blockSize - HeaderSize, blockSize, blockSize + 1, 3*blockSize + 7, 5, 70000}
	var want [][]byte
	for i, n := range sizes {
		pl := make([]byte, n)
		for j := range pl {
			pl[j] = byte(i + j)
		}
		require.Equal(t, pushed, q.push(Header{Kind: KindEvent, Msg: uint16(i)}, pl, false))
		want = append(want, pl)
		if i%3 == 1 {
			require.Equal(t, pushed, q.push(Header{Kind: KindReply, Msg: 1000}, []byte("urgent"), true))
		}
	}
	hdr := make([]byte, HeaderSize)
	next, urgents := 0, 0
	for next < len(want) || urgents < 3 {
		_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
		h, pl, err := ReadFrame(b, hdr)
		require.NoError(t, err)
		if h.Msg == 1000 {
			urgents++
			assert.Equal(t, "urgent", string(pl))
			continue
		}
		require.Equal(t, uint16(next), h.Msg, "frames in order")
		require.True(t, bytes.Equal(want[next], pl), "frame %d intact", next)
		next++
	}
	q.close()
	b.Close()
	require.NoError(t, <-done)
	assert.Zero(t, p.used.Load(), "every block returned")
}

// TestRefusedPeerCostsNothing: a refused peer (here over the connection
// limit, the same path as an unlisted uid: admit, refuse) gets its reason
// at accept, without sending anything, and is closed.
func TestRefusedPeerCostsNothing(t *testing.T) {
	s := startServer(t, &echo{}, Options{MaxConns: 1})
	dial(t, s)
	nc, err := net.Dial("unix", s.Path())
	require.NoError(t, err)
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, p, err := ReadFrame(nc, make([]byte, HeaderSize))
	require.NoError(t, err)
	assert.Equal(t, KindError, h.Kind)
	assert.Equal(t, CodeTryAgain, Code(binary.BigEndian.Uint16(p)))
	_, err = nc.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF)
}
