package ipc

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// partialWriter stands in for a non-blocking write to a socket whose
// buffer takes only part of what is offered: it copies at most half of b
// (at least one byte) to out, or nothing when full is set.
type partialWriter struct {
	out  bytes.Buffer
	full bool
}

func (w *partialWriter) try(b []byte) int {
	if w.full {
		return 0
	}
	n := max(1, len(b)/2)
	w.out.Write(b[:n])
	return n
}

// readFrames reads n frames from r, failing after a deadline.
func readFrames(t *testing.T, r net.Conn, prefix []byte, n int) (msgs []uint16, payloads [][]byte) {
	t.Helper()
	hdr := make([]byte, HeaderSize)
	src := &prefixConn{Conn: r, prefix: prefix}
	for range n {
		_ = r.SetReadDeadline(time.Now().Add(5 * time.Second))
		h, p, err := ReadFrame(src, hdr)
		require.NoError(t, err)
		msgs = append(msgs, h.Msg)
		payloads = append(payloads, p)
	}
	return msgs, payloads
}

// prefixConn reads prefix first, then the connection.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// TestUncorkPartialWrite: what uncork writes itself and what the writer
// writes after it (the socket took only part, or nothing) form one intact
// stream: every frame whole, in order, urgent frames only between frames.
func TestUncorkPartialWrite(t *testing.T) {
	for _, full := range []bool{false, true} {
		p := &pool{max: 64 << 20}
		q := newBlockQueue(p, 0)
		a, b := net.Pipe()
		done := make(chan error, 1)
		go func() { done <- q.writeTo(a) }()
		w := &partialWriter{full: full}
		q.try = w.try
		var want []uint16
		for round := range 3 {
			q.cork()
			for i := range 4 {
				msg := uint16(round*10 + i)
				require.Equal(t, pushed, q.push(Header{Kind: KindEvent, Msg: msg}, bytes.Repeat([]byte{byte(msg)}, 100+i*300), false))
				want = append(want, msg)
			}
			if round == 1 {
				require.Equal(t, pushed, q.push(Header{Kind: KindReply, Msg: 999}, []byte("urgent"), true))
			}
			q.uncork()
		}
		// The stream is what try wrote, then what the writer wrote.
		got, payloads := readFrames(t, b, w.out.Bytes(), len(want)+1)
		var ordinary []uint16
		for i, m := range got {
			if m == 999 {
				require.Equal(t, "urgent", string(payloads[i]))
				continue
			}
			require.Equal(t, bytes.Repeat([]byte{byte(m)}, len(payloads[i])), payloads[i], "frame %d intact", m)
			ordinary = append(ordinary, m)
		}
		require.Equal(t, want, ordinary, "frames in order (full=%v)", full)
		q.close()
		require.NoError(t, <-done)
		require.Zero(t, p.used.Load(), "every block back in the pool")
	}
}

// TestClientFlushPartialWrite: the client's direct write taking only part
// of a request leaves the rest to the writer, ahead of later requests.
func TestClientFlushPartialWrite(t *testing.T) {
	for _, full := range []bool{false, true} {
		q := newOutQueue(0)
		w := &partialWriter{full: full}
		q.try = w.try
		a, b := net.Pipe()
		done := make(chan error, 1)
		var want []uint16
		for i := range 6 {
			msg := uint16(i)
			ok, _ := q.push(Header{Kind: KindRequest, Msg: msg}, bytes.Repeat([]byte{byte(i)}, 50+i*200), false)
			require.True(t, ok)
			want = append(want, msg)
			if i%2 == 0 {
				q.flush()
			}
			if i == 2 {
				go func() { done <- writeLoop(a, q) }()
			}
		}
		q.flush()
		got, payloads := readFrames(t, b, w.out.Bytes(), len(want))
		require.Equal(t, want, got, "requests in order (full=%v)", full)
		for i, pl := range payloads {
			require.Equal(t, bytes.Repeat([]byte{byte(i)}, 50+i*200), pl)
		}
		q.close()
		require.NoError(t, <-done)
	}
}

// TestPushWritesOnQuietConnection: a lone frame pushed on a quiet
// connection is written by push itself; one pushed right after a write
// waits for the writer (batching), and the stream stays whole and in
// order either way.
func TestPushWritesOnQuietConnection(t *testing.T) {
	p := &pool{max: 64 << 20}
	q := newBlockQueue(p, 0)
	w := &partialWriter{}
	q.try = func(b []byte) int { w.out.Write(b); return len(b) } // the socket takes all
	require.Equal(t, pushed, q.push(Header{Kind: KindEvent, Msg: 1}, []byte("first"), false))
	require.Greater(t, w.out.Len(), 0, "a lone frame on a quiet connection is written by push")
	direct := w.out.Len()
	require.Equal(t, pushed, q.push(Header{Kind: KindEvent, Msg: 2}, []byte("second"), false))
	require.Equal(t, direct, w.out.Len(), "a frame right after a write is left to the writer")
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- q.writeTo(a) }()
	msgs, payloads := readFrames(t, b, w.out.Bytes(), 2)
	require.Equal(t, []uint16{1, 2}, msgs)
	require.Equal(t, "second", string(payloads[1]))
	q.close()
	require.NoError(t, <-done)
}

// TestUncorkJoinsReplyAndEvents: a request's reply (urgent lane) and the
// events it caused leave in one write, reply first, so the client reads
// both after a single wake-up.
func TestUncorkJoinsReplyAndEvents(t *testing.T) {
	p := &pool{max: 64 << 20}
	q := newBlockQueue(p, 0)
	var writes [][]byte
	q.try = func(b []byte) int { writes = append(writes, bytes.Clone(b)); return len(b) }
	q.cork()
	require.Equal(t, pushed, q.push(Header{Kind: KindEvent, Msg: 1}, []byte("delivery"), false))
	require.Equal(t, pushed, q.push(Header{Kind: KindReply, Msg: 2}, []byte("reply"), true))
	q.uncork()
	require.Len(t, writes, 1, "one write for reply and event")
	r, hdr := bytes.NewReader(writes[0]), make([]byte, HeaderSize)
	for _, want := range []struct {
		msg     uint16
		payload string
	}{{2, "reply"}, {1, "delivery"}} {
		h, pl, err := ReadFrame(r, hdr)
		require.NoError(t, err)
		require.Equal(t, want.msg, h.Msg, "reply first")
		require.Equal(t, want.payload, string(pl))
	}
	require.Zero(t, r.Len())
	q.close()
	require.Zero(t, p.used.Load(), "every block back in the pool")
}

// TestJoinedWritePartialReply: when the socket takes only part of the
// reply of a joined write, the writer sends the reply's rest before any
// byte of the event behind it (it used to send the event first, cutting
// the stream).
func TestJoinedWritePartialReply(t *testing.T) {
	reply := HeaderSize + len("reply")
	for _, took := range []int{0, 1, HeaderSize, HeaderSize + 2, reply, reply + HeaderSize + 1} {
		p := &pool{max: 64 << 20}
		q := newBlockQueue(p, 0)
		var out bytes.Buffer
		q.try = func(b []byte) int { n := min(took, len(b)); out.Write(b[:n]); return n }
		q.cork()
		require.Equal(t, pushed, q.push(Header{Kind: KindEvent, Msg: 1}, []byte("delivery"), false))
		require.Equal(t, pushed, q.push(Header{Kind: KindReply, Msg: 2}, []byte("reply"), true))
		q.uncork()
		// A reply pushed after the joined write.
		require.Equal(t, pushed, q.push(Header{Kind: KindReply, Msg: 3}, []byte("later"), true))
		// The writer starts after the joined write, as it finds things
		// when it was busy elsewhere.
		a, b := net.Pipe()
		done := make(chan error, 1)
		go func() { done <- q.writeTo(a) }()
		// Urgent frames go at the next frame boundary: before the
		// event unless the socket took part of it.
		want := []uint16{2, 3, 1}
		if took > reply {
			want = []uint16{2, 1, 3}
		}
		msgs, payloads := readFrames(t, b, out.Bytes(), 3)
		require.Equal(t, want, msgs, "frames whole, urgent ones only between frames (socket took %d)", took)
		for i, m := range msgs {
			require.Equal(t, map[uint16]string{1: "delivery", 2: "reply", 3: "later"}[m], string(payloads[i]))
		}
		q.close()
		require.NoError(t, <-done)
	}
}
