package exectest

import (
	"fmt"
	"sync"

	"ringmaster/ipc"
	"ringmaster/totem/exec"
)

// Client is a fake local client connection (exec.Client) for services'
// unit tests: it records every reply and event a service gives it, in
// order, instead of writing them to a socket. Use a pointer (services key
// maps by the connection). Safe for concurrent use.
//
//	c := &exectest.Client{ID: 1, Cred: ipc.Cred{PID: 42}}
//	node.Exec.Do(func() { svc.Request(c, h, payload) })
//	out := c.Take()
type Client struct {
	ID   uint64
	Cred ipc.Cred

	mu        sync.Mutex
	out       []Output
	congested bool
	closed    bool
}

// Output is one frame a service sent to a Client.
type Output struct {
	Header  ipc.Header // Kind is KindReply, KindError or KindEvent
	Payload []byte     // a copy (nil for an error)
	Err     error      // the error of ReplyError / ReplyErrorUrgent
	Urgent  bool       // sent with ReplyUrgent / ReplyErrorUrgent
}

// String is a one-line summary, for test failures.
func (o Output) String() string {
	kind := map[ipc.Kind]string{ipc.KindReply: "reply", ipc.KindError: "error", ipc.KindEvent: "event"}[o.Header.Kind]
	if o.Urgent {
		kind += "!"
	}
	if o.Err != nil {
		return fmt.Sprintf("%s %d/%d: %v", kind, o.Header.Service, o.Header.Msg, o.Err)
	}
	return fmt.Sprintf("%s %d/%d: %d bytes", kind, o.Header.Service, o.Header.Msg, len(o.Payload))
}

var _ exec.Client = (*Client)(nil)

// ConnID implements exec.Client.
func (c *Client) ConnID() uint64 { return c.ID }

// PeerCred implements exec.Client.
func (c *Client) PeerCred() ipc.Cred { return c.Cred }

func (c *Client) record(h ipc.Header, p []byte, err error, urgent bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ipc.ErrClosed
	}
	var cp []byte
	if err == nil {
		cp = append([]byte{}, p...)
	}
	c.out = append(c.out, Output{Header: h, Payload: cp, Err: err, Urgent: urgent})
	return nil
}

func answer(k ipc.Kind, h ipc.Header) ipc.Header {
	return ipc.Header{Kind: k, Service: h.Service, Msg: h.Msg, ReqID: h.ReqID}
}

// Reply implements exec.Client.
func (c *Client) Reply(h ipc.Header, p []byte) error {
	return c.record(answer(ipc.KindReply, h), p, nil, false)
}

// ReplyError implements exec.Client.
func (c *Client) ReplyError(h ipc.Header, err error) error {
	return c.record(answer(ipc.KindError, h), nil, err, false)
}

// ReplyUrgent implements exec.Client.
func (c *Client) ReplyUrgent(h ipc.Header, p []byte) error {
	return c.record(answer(ipc.KindReply, h), p, nil, true)
}

// ReplyErrorUrgent implements exec.Client.
func (c *Client) ReplyErrorUrgent(h ipc.Header, err error) error {
	return c.record(answer(ipc.KindError, h), nil, err, true)
}

// Event implements exec.Client.
func (c *Client) Event(service, msg uint16, p []byte) error {
	return c.record(ipc.Header{Kind: ipc.KindEvent, Service: service, Msg: msg}, p, nil, false)
}

// Backlog implements exec.Client: the bytes recorded and not yet taken.
func (c *Client) Backlog() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, o := range c.out {
		n += ipc.HeaderSize + len(o.Payload)
	}
	return n
}

// Congested implements exec.Client; SetCongested sets what it reports.
func (c *Client) Congested() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.congested
}

// SetCongested sets what Congested reports.
func (c *Client) SetCongested(v bool) {
	c.mu.Lock()
	c.congested = v
	c.mu.Unlock()
}

// Close makes every later send fail with ipc.ErrClosed, as a connection
// that is gone does. (The executive's Disconnected call is the test's to
// make.)
func (c *Client) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}

// Take returns what was sent since the last Take, in order.
func (c *Client) Take() []Output {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.out
	c.out = nil
	return out
}
