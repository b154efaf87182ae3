package vsockfence

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// Dialer opens a connection to the responder (vsock in production, a Unix
// socket or net.Pipe in tests).
type Dialer func(ctx context.Context) (net.Conn, error)

// Client is the guest side.
type Client struct {
	Key       []byte
	Requester string // this node's name, logged by the host
	Dial      Dialer
	Now       func() time.Time // default time.Now
}

// ErrDenied and ErrFailed are the host's refusals and failures.
var (
	ErrDenied      = errors.New("vsockfence: host denied the request")
	ErrHostFailed  = errors.New("vsockfence: host failed the action")
	ErrUnsupported = errors.New("vsockfence: host cannot do this action")
	ErrBadResponse = errors.New("vsockfence: response does not match the request")
)

// Do sends one request and returns the host's verified response. ctx's
// deadline bounds the whole exchange.
func (c *Client) Do(ctx context.Context, action Action, vm string) (Response, error) {
	if action != ActionMonitor && !ValidVMName(vm) {
		return Response{}, fmt.Errorf("%w: invalid vm name %q", ErrMalformed, vm)
	}
	nonce, err := NewNonce()
	if err != nil {
		return Response{}, err
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	body, err := EncodeRequest(c.Key, Request{Action: action, Nonce: nonce, TimeMS: now().UnixMilli(), Requester: c.Requester, VM: vm})
	if err != nil {
		return Response{}, err
	}
	conn, err := c.Dial(ctx)
	if err != nil {
		return Response{}, fmt.Errorf("vsockfence: dial: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if err := WriteFrame(conn, body); err != nil {
		return Response{}, fmt.Errorf("vsockfence: send: %w", err)
	}
	rb, err := ReadFrame(conn)
	if err != nil {
		if ctx.Err() != nil {
			return Response{}, context.Cause(ctx)
		}
		return Response{}, fmt.Errorf("vsockfence: receive: %w", err)
	}
	resp, err := DecodeResponse(c.Key, rb)
	if err != nil {
		return Response{}, err
	}
	if resp.Nonce != nonce {
		return Response{}, ErrBadResponse
	}
	return resp, nil
}

// Err maps a response to an error (nil for StatusOK and StatusOff).
func (r Response) Err() error {
	switch r.Status {
	case StatusOK, StatusOff:
		return nil
	case StatusDenied:
		return fmt.Errorf("%w: %s", ErrDenied, r.Message)
	case StatusUnsupported:
		return fmt.Errorf("%w: %s", ErrUnsupported, r.Message)
	}
	return fmt.Errorf("%w: %s: %s", ErrHostFailed, r.Status, r.Message)
}
