package ipc

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadFrameDirect: frames of every size read back whole and in order
// whether or not they bypass the buffer.
func TestReadFrameDirect(t *testing.T) {
	sizes := []int{0, 10, directRead, directRead + 1, 300 << 10, 5, 1 << 20, 70 << 10, 3}
	var stream []byte
	for i, n := range sizes {
		p := bytes.Repeat([]byte{byte(i + 1)}, n)
		stream = AppendFrame(stream, Header{Kind: KindEvent, Msg: uint16(i)}, p)
	}
	for _, bufSize := range []int{16, 4096, 64 << 10, 256 << 10} {
		// A reader that returns short reads, like a socket.
		raw := &chunky{r: bytes.NewReader(stream), max: 50000}
		br := bufio.NewReaderSize(raw, bufSize)
		hdr := make([]byte, HeaderSize)
		for i, n := range sizes {
			h, p, err := readFrameDirect(br, raw, hdr)
			require.NoError(t, err, "buffer %d frame %d", bufSize, i)
			require.Equal(t, uint16(i), h.Msg)
			require.Equal(t, bytes.Repeat([]byte{byte(i + 1)}, n), p, "buffer %d frame %d", bufSize, i)
		}
		_, _, err := readFrameDirect(br, raw, hdr)
		require.ErrorIs(t, err, io.EOF)
	}
	// A stream cut inside a big payload is a truncated frame.
	cut := AppendFrame(nil, Header{Kind: KindEvent}, make([]byte, 200<<10))[:150<<10]
	raw := &chunky{r: bytes.NewReader(cut), max: 7000}
	_, _, err := readFrameDirect(bufio.NewReaderSize(raw, 4096), raw, make([]byte, HeaderSize))
	require.ErrorIs(t, err, ErrTruncated)
}

type chunky struct {
	r   io.Reader
	max int
}

func (c *chunky) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.max)]) }

// TestUrgentLane: an urgent frame goes out before the backlog queued
// ahead of it; ordinary frames keep their order and are written whole.
func TestUrgentLane(t *testing.T) {
	q := newOutQueue(0)
	big := make([]byte, 40<<10)
	for i := range 20 {
		q.push(Header{Kind: KindEvent, Msg: uint16(i)}, big, false)
	}
	q.push(Header{Kind: KindReply, ReqID: 7}, []byte("ack"), true)
	q.push(Header{Kind: KindEvent, Msg: 20}, nil, false)
	q.close()
	a, b := net.Pipe()
	go func() { _ = writeLoop(a, q); a.Close() }()
	r := bufio.NewReader(b)
	hdr := make([]byte, HeaderSize)
	h, p, err := ReadFrame(r, hdr)
	require.NoError(t, err)
	require.Equal(t, KindReply, h.Kind, "the urgent reply comes first")
	require.Equal(t, "ack", string(p))
	for i := range 21 {
		h, _, err := ReadFrame(r, hdr)
		require.NoError(t, err)
		require.Equal(t, uint16(i), h.Msg)
	}
}

// TestUrgentLaneMidBacklog: an urgent frame queued while a backlog is
// being written goes out at the next frame boundary, ahead of the rest.
// (It cannot overtake what the kernel already holds: a reader that stops
// altogether still stalls it once the socket buffer is full.)
func TestUrgentLaneMidBacklog(t *testing.T) {
	q := newOutQueue(0)
	big := make([]byte, 40<<10) // one frame per write chunk
	for i := range 20 {
		q.push(Header{Kind: KindEvent, Msg: uint16(i)}, big, false)
	}
	a, b := net.Pipe() // unbuffered: the writer blocks until read
	go func() { _ = writeLoop(a, q); a.Close() }()
	hdr := make([]byte, HeaderSize)
	h, _, err := ReadFrame(b, hdr)
	require.NoError(t, err)
	require.Equal(t, uint16(0), h.Msg)
	q.push(Header{Kind: KindReply, ReqID: 7}, []byte("ack"), true)
	q.close()
	var order []string
	for {
		h, _, err := ReadFrame(b, hdr)
		if err != nil {
			break
		}
		if h.Kind == KindReply {
			order = append(order, "reply")
		} else {
			order = append(order, fmt.Sprint(h.Msg))
		}
	}
	require.Len(t, order, 20)
	i := slices.Index(order, "reply")
	require.True(t, i >= 0 && i <= 1, "the reply went out at position %d: %v", i, order)
	require.Equal(t, "19", order[19])
}

// TestGoAppend: a payload built in place arrives like any other.
func TestGoAppend(t *testing.T) {
	s := startServer(t, &echo{}, Options{})
	c := dial(t, s)
	big := bytes.Repeat([]byte("x"), 300<<10)
	r := <-c.GoAppend(5, 1, func(b []byte) []byte { return append(append(b, "head:"...), big...) })
	require.NoError(t, r.Err)
	require.Equal(t, append([]byte("head:"), big...), r.Payload)
	p, err := c.Call(context.Background(), 5, 1, []byte("after"))
	require.NoError(t, err)
	require.Equal(t, "after", string(p))
}
